/** The pure parts of `iroh-raft dev`: commands typed on its stdin, and the quoting of printed command lines. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEV_NODES_MAX, addRefusal, parseDevCommand, shellQuote } from '../../../src/main/dev.js';

describe('parseDevCommand', () => {
  it('reads restart in its long and short form, with spaces and case ignored', () => {
    expect(parseDevCommand('restart 2', 3)).toEqual({ kind: 'restart', node: 2 });
    expect(parseDevCommand('  R   3  ', 3)).toEqual({ kind: 'restart', node: 3 });
    expect(parseDevCommand('r 1', 1)).toEqual({ kind: 'restart', node: 1 });
  });

  it('reads add in its long and short form, whatever the number of nodes', () => {
    expect(parseDevCommand('add', 1)).toEqual({ kind: 'add' });
    expect(parseDevCommand(' A ', 9)).toEqual({ kind: 'add' });
  });

  it('reads status and help', () => {
    expect(parseDevCommand('status', 3)).toEqual({ kind: 'status' });
    expect(parseDevCommand('s', 3)).toEqual({ kind: 'status' });
    expect(parseDevCommand('help', 3)).toEqual({ kind: 'help' });
    expect(parseDevCommand('?', 3)).toEqual({ kind: 'help' });
  });

  it('ignores an empty line', () => {
    expect(parseDevCommand('', 3)).toEqual({ kind: 'empty' });
    expect(parseDevCommand(' \t ', 3)).toEqual({ kind: 'empty' });
  });

  it('refuses a node number outside 1..nodes, naming the range', () => {
    for (const bad of ['0', '4', '-1', '1.5', 'two', '0x2', '99999999999']) {
      const c = parseDevCommand(`restart ${bad}`, 3);
      expect(c.kind, bad).toBe('invalid');
      expect(c.kind === 'invalid' && c.message, bad).toContain('1-3');
    }
  });

  it('refuses restart without exactly one argument, and arguments to status or help', () => {
    expect(parseDevCommand('restart', 3).kind).toBe('invalid');
    expect(parseDevCommand('r 1 2', 3).kind).toBe('invalid');
    expect(parseDevCommand('status 1', 3).kind).toBe('invalid');
    expect(parseDevCommand('add 4', 3).kind).toBe('invalid');
    expect(parseDevCommand('help me', 3).kind).toBe('invalid');
  });

  it('names an unknown command and lists the known ones', () => {
    const c = parseDevCommand('kill 2', 3);
    expect(c.kind).toBe('invalid');
    expect(c.kind === 'invalid' && c.message).toMatch(/unknown command "kill".*restart <n>/);
  });
});

describe('addRefusal', () => {
  it('lets add start a node while one runs and the ports have room', () => {
    expect(addRefusal(2, 1)).toBeUndefined();
    expect(addRefusal(DEV_NODES_MAX, 1)).toBeUndefined();
  });

  it('refuses a node beyond the port scheme, naming the limit', () => {
    expect(DEV_NODES_MAX).toBe(9);
    expect(addRefusal(10, 2)).toBe('no room for node 10: dev runs at most 9 nodes (ports base-port+0..8 and +100..108)');
  });

  it('refuses when no running node could admit the new one', () => {
    expect(addRefusal(3, 0)).toBe('no node is running to admit node 3; "restart <n>" one first');
  });
});

describe('shellQuote', () => {
  it('leaves plain words alone', () => {
    expect(shellQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(shellQuote('--peers')).toBe('--peers');
    expect(shellQuote('irohraft1ab_c-D,irohraft1x')).toBe('irohraft1ab_c-D,irohraft1x');
  });

  it('quotes anything else so that sh reads back the same argument', () => {
    for (const arg of ["it's", 'a b', '$HOME', '`x`', 'a"b', '', '*', 'ä ö', "''"]) {
      const r = spawnSync('sh', ['-c', `printf %s ${shellQuote(arg)}`], { encoding: 'utf8' });
      expect(r.stdout, arg).toBe(arg);
    }
  });
});
