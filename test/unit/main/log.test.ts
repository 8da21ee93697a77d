/** Log lines for people (`--log-format pretty`), made by pino through the pretty destination; the flag's validation. */
import { pino } from 'pino';
import { beforeAll, describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/main/config.js';
import { parseDevFlags } from '../../../src/main/dev.js';
import { defaultLogFormat, prettyDestination, prettyLine, wantsColor } from '../../../src/main/log.js';

/** 2023-11-14T22:13:20.123Z */
const T = 1_700_000_000_123;
const ESC = '\u001b[';

/** A real pino logger at level trace whose lines, pretty, land in `lines`. */
function capture(color: boolean): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'trace', base: { pid: 4242 }, timestamp: () => `,"time":${T}` }, prettyDestination({ write: (s: string) => lines.push(s) }, color));
  return { log, lines };
}

beforeAll(() => {
  // Pretty lines show local time; pin the zone so the expected lines are exact.
  process.env.TZ = 'UTC';
});

describe('pretty log lines', () => {
  test('each level as a word, local time to the millisecond, fields as key=value, no pid', () => {
    const { log, lines } = capture(false);
    log.trace({ shard: 3 }, 'tick');
    log.debug({ shard: 3, lead: 2 }, 'shard leader changed');
    log.info({ node: 1, http: 'http://127.0.0.1:7070' }, 'http listening');
    log.warn({ worker: 0, reason: 'exit code 1' }, 'worker restarted');
    log.error({ ok: false, addrs: ['127.0.0.1:7071'] }, 'dial failed');
    log.fatal('cannot go on');
    expect(lines).toEqual([
      '22:13:20.123 TRACE tick  shard=3\n',
      '22:13:20.123 DEBUG shard leader changed  shard=3 lead=2\n',
      '22:13:20.123 INFO  http listening  node=1 http=http://127.0.0.1:7070\n',
      '22:13:20.123 WARN  worker restarted  worker=0 reason="exit code 1"\n',
      '22:13:20.123 ERROR dial failed  ok=false addrs=["127.0.0.1:7071"]\n',
      '22:13:20.123 FATAL cannot go on\n',
    ]);
  });

  test('an error: its type and message as err=, then its stack frames indented on lines of their own', () => {
    const { log, lines } = capture(false);
    const err = Object.assign(new TypeError('boom'), { code: 'EBOOM' });
    log.error({ err, shard: 7 }, 'request failed');
    expect(lines).toHaveLength(1);
    const [head, ...frames] = lines[0]!.trimEnd().split('\n');
    expect(head).toBe('22:13:20.123 ERROR request failed  err="TypeError: boom" code=EBOOM shard=7');
    expect(frames.length).toBeGreaterThan(0);
    for (const f of frames) expect(f).toMatch(/^ {4}at /);
    expect(frames[0]).toContain('log.test.ts');
  });

  test('colors only when asked: the level colored, the rest dimmed', () => {
    const plain = capture(false);
    plain.log.error('x');
    expect(plain.lines[0]).not.toContain(ESC);
    const colored = capture(true);
    colored.log.error({ k: 1 }, 'x');
    colored.log.info('y');
    expect(colored.lines[0]).toBe(`${ESC}2m22:13:20.123${ESC}0m ${ESC}31mERROR${ESC}0m x  ${ESC}2mk=${ESC}0m1\n`);
    expect(colored.lines[1]).toContain(`${ESC}32mINFO ${ESC}0m`);
  });

  test('what is not a JSON object passes through unchanged', () => {
    expect(prettyLine('not json', false)).toBe('not json\n');
    expect(prettyLine('[1,2]', false)).toBe('[1,2]\n');
  });

  test('defaults: pretty and colors on a terminal, JSON and none otherwise; NO_COLOR and FORCE_COLOR win', () => {
    expect(defaultLogFormat({ isTTY: true })).toBe('pretty');
    expect(defaultLogFormat({ isTTY: false })).toBe('json');
    expect(defaultLogFormat({})).toBe('json');
    expect(wantsColor({ isTTY: true }, {})).toBe(true);
    expect(wantsColor({ isTTY: false }, {})).toBe(false);
    expect(wantsColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColor({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    expect(wantsColor({ isTTY: false }, { FORCE_COLOR: '0' })).toBe(false);
    expect(wantsColor({ isTTY: false }, { FORCE_COLOR: '' })).toBe(false);
  });
});

describe('--log-format and IROH_RAFT_LOG_FORMAT', () => {
  test('json or pretty, by flag, environment or config; the flag wins', () => {
    expect(loadConfig(['--log-format', 'pretty'], {}).logFormat).toBe('pretty');
    expect(loadConfig(['--log-format=json'], { IROH_RAFT_LOG_FORMAT: 'pretty' }).logFormat).toBe('json');
    expect(loadConfig([], { IROH_RAFT_LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
  });

  test.each([
    [['--log-format', 'xml'], {}, 'InvalidConfig', /flag --log-format: expected one of json, pretty, got "xml"/],
    [['--log-format', 'PRETTY'], {}, 'InvalidConfig', /expected one of json, pretty/],
    [[], { IROH_RAFT_LOG_FORMAT: 'text' }, 'InvalidConfig', /environment IROH_RAFT_LOG_FORMAT/],
    [['--log-format'], {}, 'InvalidFlag', /--log-format needs a value/],
  ])('refuses %j %j with %s', (argv, env, code, message) => {
    let caught: unknown;
    try {
      loadConfig(argv, env);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(caught).toMatchObject({ code });
    expect((caught as Error).message).toMatch(message);
  });

  test('dev checks --log-format itself and passes it to its nodes', () => {
    expect(parseDevFlags(['--log-format', 'json']).rest).toEqual(['--log-format', 'json']);
    expect(() => parseDevFlags(['--log-format', 'yaml'])).toThrow(expect.objectContaining({ code: 'InvalidConfig' }));
  });
});
