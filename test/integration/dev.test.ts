/**
 * `iroh-raft dev`: a local cluster of separate processes in one command. A node that is killed
 * leaves the others serving and can be brought back from dev's stdin or with the command line dev
 * prints; Ctrl-C stops them all.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, test } from 'vitest';
import type { ShardHash } from '../../src/wire/shard-hash.js';
import { CLI, clusterHash, devBasePort, eventually, statusWithMeta } from './cluster.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-dev-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('dev --nodes 2 prints each HTTP address, serves through every node, and stops every process on SIGINT', async () => {
  const base = await devBasePort();
  const dev = spawn(
    process.execPath,
    [CLI, 'dev', '--nodes', '2', '--shards', '2', '--base-port', String(base), '--data', root, '--tick-ms', '20', '--log-level', 'warn'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const urls: string[] = [];
  const nodeIds = new Set<number>();
  let listening = 0;
  const lines = createInterface({ input: dev.stdout });
  lines.on('line', (l) => {
    const m = /node \d+: (http:\/\/\S+)/.exec(l);
    if (m) urls.push(m[1]!);
    if (l.includes('listening: HTTP')) listening++;
  });
  await eventually(async () => Promise.resolve(listening === 2 && urls.length === 2), 60_000, 'both nodes listening');
  await eventually(async () => (await Promise.all(urls.map((u) => fetch(`${u}/healthz`)))).every((r) => r.status === 200), 30_000, 'leaders');
  expect((await fetch(`${urls[0]}/v1/kv/hello`, { method: 'PUT', body: 'dev' })).status).toBe(200);
  expect(await (await fetch(`${urls[1]}/v1/kv/hello`)).text()).toBe('dev');
  for (const u of urls) {
    const st = (await (await fetch(`${u}/v1/status`)).json()) as { node: number };
    nodeIds.add(st.node);
  }
  expect(nodeIds.size).toBe(2);
  const code = await new Promise<number | null>((resolve) => {
    dev.once('exit', (c) => resolve(c));
    dev.kill('SIGINT');
  });
  expect(code).toBe(0);
  // Both nodes are gone.
  for (const u of urls) await expect(fetch(`${u}/healthz`)).rejects.toThrow();
});

test('dev --nodes 3 with a node stopped: Ctrl-C stops the other two without waiting for the one gone', { timeout: 180_000 }, async () => {
  const base = await devBasePort();
  const dev = startDev(
    ['--nodes', '3', '--shards', '3', '--base-port', String(base), '--data', join(root, 'stop'), '--tick-ms', '20', '--log-level', 'warn'],
    'ignore',
  );
  const started = await Promise.all(
    [1, 2, 3].map((i) => dev.line(new RegExp(`^ {2}node ${i}: (http://\\S+) +data (\\S+) +pid (\\d+)$`), 0, `startup line of node ${i}`)),
  );
  const urls = started.map((m) => m[1]!);
  const pid3 = Number(started[2]![3]);
  await eventually(async () => (await Promise.all(urls.map(healthy))).every(Boolean), 90_000, 'every shard has a leader');
  expect(await put(urls[0]!, 'before-stop', 'v')).toBe(true);
  const mark = dev.lines.length;
  process.kill(pid3, 'SIGTERM');
  await dev.line(new RegExp(`^\\[dev\\] node 3 \\(pid ${pid3}\\) exited with code 0; 2 of 3 nodes running`), mark, 'the exit notice of node 3');
  // The other two go on serving, and dial node 3 again and again in vain.
  await eventually(async () => put(urls[1]!, 'after-stop', 'v'), 30_000, 'a write with node 3 gone');
  await new Promise((r) => setTimeout(r, 2_000));
  const t0 = performance.now();
  dev.proc.kill('SIGINT');
  expect(await dev.exited).toBe(0);
  // Before the transport bounded its close, this took ~4.3 s: the flush waited for a dial to node 3
  // until it timed out, then the endpoint's close waited ~3 s for node 3 to answer; now ~0.4 s.
  expect(performance.now() - t0).toBeLessThan(3_000);
});

/** A running `iroh-raft dev`, with every line it printed on stdout and stderr, in arrival order. */
interface Dev {
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  /** Waits for a line at or after `from` matching `re`, and returns its match. */
  line(re: RegExp, from: number, what: string, ms?: number): Promise<RegExpExecArray>;
}

function startDev(args: readonly string[], stdin: 'pipe' | 'ignore', env: NodeJS.ProcessEnv = process.env): Dev {
  const proc = spawn(process.execPath, [CLI, 'dev', ...args], { stdio: [stdin, 'pipe', 'pipe'], env });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  createInterface({ input: proc.stderr! }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    lines,
    exited,
    async line(re, from, what, ms = 90_000) {
      let m: RegExpExecArray | null = null;
      await eventually(
        async () =>
          Promise.resolve(
            (m =
              lines
                .slice(from)
                .map((l) => re.exec(l))
                .find((x) => x !== null) ?? null) !== null,
          ),
        ms,
        `${what}; dev printed:\n${lines.join('\n')}`,
      );
      return m!;
    },
  };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const put = async (url: string, key: string, value: string): Promise<boolean> =>
  (await fetch(`${url}/v1/kv/${key}`, { method: 'PUT', body: value })).status === 200;
/** This replica's own copy, not the leader's: proves a restarted node has caught up. */
const staleGet = async (url: string, key: string): Promise<string> => (await fetch(`${url}/v1/kv/${key}?consistency=stale`)).text();
const healthy = async (url: string): Promise<boolean> => (await fetch(`${url}/healthz`)).status === 200;

/** One key per shard of `shards`, so that a round of writes touches every shard. */
function keyPerShard(prefix: string, shards: number, hash: ShardHash): string[] {
  const keys = new Map<number, string>();
  for (let i = 0; keys.size < shards; i++) {
    const k = `${prefix}-${i}`;
    const s = hash.shardOf('default', new TextEncoder().encode(k), shards);
    if (!keys.has(s)) keys.set(s, k);
  }
  return [...keys.values()];
}

test(
  'dev --nodes 3 survives a SIGKILLed node, prints how it died and how to restart it, and restarts it from stdin or from the printed command line',
  { timeout: 400_000 },
  async () => {
    const base = await devBasePort();
    const data = join(root, 'three');
    const shards = 3;
    // A setting from the environment, which the nodes inherit: the printed command must carry it.
    const dev = startDev(
      ['--nodes', '3', '--shards', String(shards), '--base-port', String(base), '--data', data, '--tick-ms', '20', '--log-level', 'warn'],
      'pipe',
      {
        ...process.env,
        IROH_RAFT_QUIESCE_AFTER_TICKS: '25',
      },
    );
    const pids: number[] = [];
    let manual: ChildProcess | undefined;
    try {
      const started = await Promise.all(
        [1, 2, 3].map((i) => dev.line(new RegExp(`^ {2}node ${i}: (http://\\S+) +data (\\S+) +pid (\\d+)$`), 0, `startup line of node ${i}`)),
      );
      const urls = started.map((m) => m[1]!);
      const pid = started.map((m) => Number(m[3]));
      pids.push(...pid);
      expect(urls).toEqual([0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`));
      await eventually(async () => Promise.resolve(dev.lines.filter((l) => l.includes('listening: HTTP')).length === 3), 90_000, 'three nodes listening');
      await eventually(async () => (await Promise.all(urls.map(healthy))).every(Boolean), 90_000, 'every shard has a leader');
      expect(await put(urls[0]!, 'before', 'b')).toBe(true);
      const hash = await clusterHash(urls[0]!);

      // SIGKILL node 2, as a person trying a failover would.
      let mark = dev.lines.length;
      process.kill(pid[1]!, 'SIGKILL');
      await dev.line(
        new RegExp(`^\\[dev\\] node 2 \\(pid ${pid[1]}\\) was killed by SIGKILL; 2 of 3 nodes running \\(1, 3\\)$`),
        mark,
        'the exit notice of node 2',
      );
      await dev.line(/^\[dev\] bring node 2 back with its data: type "restart 2" \(or "r 2"\) and Enter here, or run in a shell:$/, mark, 'both ways back');
      const command2 = (await dev.line(/^ {2}(\S.* start --data \S+\/node-2 .*)$/, mark, 'the command line of node 2'))[1]!;
      expect(command2).toMatch(/^IROH_RAFT_QUIESCE_AFTER_TICKS=25 /);
      expect(command2).toContain(` --http 127.0.0.1:${base + 1} --listen 127.0.0.1:${base + 101} --shards 3 --workers 1 --peers irohraft1`);
      expect(command2).toContain('--tick-ms 20 --log-level warn');
      expect(dev.proc.exitCode).toBeNull();
      expect(dev.proc.signalCode).toBeNull();

      // The two survivors serve every shard (each has a replica on node 2; some had their leader there).
      const whileDown2 = keyPerShard('down2', shards, hash);
      for (const [i, k] of whileDown2.entries()) {
        const [via, readVia] = i % 2 === 0 ? [urls[0]!, urls[2]!] : [urls[2]!, urls[0]!];
        await eventually(async () => put(via, k, `v-${k}`), 60_000, `write ${k} with node 2 down`);
        expect(await (await fetch(`${readVia}/v1/kv/${k}`)).text()).toBe(`v-${k}`);
      }

      // Bad input on stdin: a clear message each, and nothing changes.
      mark = dev.lines.length;
      const stdin = dev.proc.stdin!;
      stdin.write('frobnicate\nrestart 7\nr two\nrestart\nrestart 1\n\nstatus\n');
      await dev.line(/^\[dev\] node 3: running, pid \d+;/, mark, 'the status reply');
      const replies = dev.lines.slice(mark).join('\n');
      expect(replies).toContain('[dev] unknown command "frobnicate"; "restart <n>" or "r <n>"');
      expect(replies).toContain('[dev] no node "7": the nodes are 1-3');
      expect(replies).toContain('[dev] no node "two": the nodes are 1-3');
      expect(replies).toContain('[dev] "restart" takes one node number, 1-3: restart <n>');
      expect(replies).toContain(`[dev] node 1 is running (pid ${pid[0]}); "restart" starts a node that has exited`);
      expect(replies).toContain(`[dev] node 1: running, pid ${pid[0]}; ${urls[0]}`);
      expect(replies).toContain(`[dev] node 2: down (it was killed by SIGKILL); ${urls[1]}`);
      expect(replies).not.toContain('starting again');
      expect(alive(pid[0]!)).toBe(true);
      await expect(fetch(`${urls[1]}/healthz`)).rejects.toThrow();

      // The in-process way back: "r 2" on stdin restarts node 2 with its data, and it catches up.
      mark = dev.lines.length;
      stdin.write('r 2\n');
      const pid2 = Number((await dev.line(/^\[dev\] node 2 starting again with its data: pid (\d+)$/, mark, 'the restart of node 2'))[1]);
      pids.push(pid2);
      expect(pid2).not.toBe(pid[1]);
      await dev.line(/^\[node 2\] iroh-raft node \d listening: HTTP/, mark, 'node 2 listening again');
      await eventually(async () => healthy(urls[1]!), 90_000, 'node 2 healthy again');
      for (const k of [...whileDown2, 'before'])
        await eventually(async () => (await staleGet(urls[1]!, k)) === (k === 'before' ? 'b' : `v-${k}`), 60_000, `node 2 has its own copy of ${k}`);

      // With stdin ended, dev keeps running the nodes (and only the command line can restart one).
      stdin.end();

      // The printed way back: SIGKILL node 3, then run its printed command line in a shell.
      mark = dev.lines.length;
      process.kill(pid[2]!, 'SIGKILL');
      await dev.line(
        new RegExp(`^\\[dev\\] node 3 \\(pid ${pid[2]}\\) was killed by SIGKILL; 2 of 3 nodes running \\(1, 2\\)$`),
        mark,
        'the exit notice of node 3',
      );
      const command3 = (await dev.line(/^ {2}(\S.* start --data \S+\/node-3 .*)$/, mark, 'the command line of node 3'))[1]!;
      const whileDown3 = keyPerShard('down3', shards, hash);
      for (const k of whileDown3) await eventually(async () => put(urls[1]!, k, `v-${k}`), 60_000, `write ${k} with node 3 down`);
      // Its own process group, so that the shell and the node it runs are stopped together.
      manual = spawn('sh', ['-c', command3], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, detached: true });
      let manualOutput = '';
      manual.stdout!.on('data', (d: Buffer) => (manualOutput += d.toString()));
      manual.stderr!.on('data', (d: Buffer) => (manualOutput += d.toString()));
      const manualExited = new Promise<void>((r) => manual!.once('exit', () => r()));
      await eventually(async () => Promise.resolve(manualOutput.includes('listening: HTTP')), 90_000, 'node 3 from the printed command listening');
      await eventually(async () => healthy(urls[2]!), 90_000, 'node 3 healthy again');
      for (const k of whileDown3)
        await eventually(async () => (await staleGet(urls[2]!, k)) === `v-${k}`, 60_000, `node 3 has its own copy of ${k}; it printed:\n${manualOutput}`);
      expect(dev.proc.exitCode).toBeNull();
      // That node is not dev's: stop it here.
      process.kill(-manual.pid!, 'SIGTERM');
      await manualExited;
      await eventually(
        async () =>
          fetch(`${urls[2]}/healthz`).then(
            () => false,
            () => true,
          ),
        30_000,
        'node 3 from the printed command stopped',
      );

      // Ctrl-C stops every node dev runs, exit 0, and nothing is left.
      const code = await new Promise<number | null>((resolve) => {
        dev.proc.once('exit', (c) => resolve(c));
        dev.proc.kill('SIGINT');
      });
      expect(code).toBe(0);
      for (const u of urls) await expect(fetch(`${u}/healthz`)).rejects.toThrow();
      for (const p of pids) expect(alive(p), `pid ${p}`).toBe(false);
    } finally {
      if (manual?.pid !== undefined && manual.exitCode === null && manual.signalCode === null) process.kill(-manual.pid, 'SIGKILL');
      if (dev.proc.exitCode === null && dev.proc.signalCode === null) dev.proc.kill('SIGKILL');
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  },
);

test('dev with every node exited waits for "restart" while stdin is open, and exits 1 once stdin ends', { timeout: 200_000 }, async () => {
  const base = await devBasePort();
  const dev = startDev(
    ['--nodes', '1', '--shards', '1', '--base-port', String(base), '--data', join(root, 'one'), '--tick-ms', '20', '--log-level', 'warn'],
    'pipe',
  );
  let pid = 0;
  try {
    pid = Number((await dev.line(/^ {2}node 1: \S+ +data \S+ +pid (\d+)$/, 0, 'the startup line'))[1]);
    await dev.line(/^\[node 1\] iroh-raft node \d listening: HTTP/, 0, 'node 1 listening');
    process.kill(pid, 'SIGKILL');
    await dev.line(/^\[dev\] every node has exited; "restart <n>" starts one again, Ctrl-C quits$/, 0, 'the all-exited notice');
    expect(dev.proc.exitCode).toBeNull();
    dev.proc.stdin!.end();
    expect(await dev.exited).toBe(1);
    expect(dev.lines.join('\n')).toContain('[dev] every node has exited and stdin has ended, so no restart command can come; stopping');
  } finally {
    if (dev.proc.exitCode === null && dev.proc.signalCode === null) dev.proc.kill('SIGKILL');
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  }
});

interface ShardView {
  shard: number;
  voters: number[];
  learners: number[];
}

test(
  'dev --nodes 1 grows to three by "add" on stdin: the added nodes join, every shard and the meta group get voters 1, 2, 3, and SIGINT stops all three',
  { timeout: 300_000 },
  async () => {
    const base = await devBasePort();
    const shards = 4;
    const dev = startDev(
      ['--nodes', '1', '--shards', String(shards), '--base-port', String(base), '--data', join(root, 'grow'), '--tick-ms', '50', '--log-level', 'warn'],
      'pipe',
    );
    const pids: number[] = [];
    try {
      pids.push(Number((await dev.line(/^ {2}node 1: \S+ +data \S+ +pid (\d+)$/, 0, 'the startup line of node 1'))[1]));
      await dev.line(new RegExp(`^Watch a join: "add" starts node 2 on http://127\\.0\\.0\\.1:${base + 1} with --join`), 0, 'the line about add');
      const url1 = `http://127.0.0.1:${base}`;
      await eventually(async () => healthy(url1).catch(() => false), 90_000, 'node 1 healthy').catch((e: unknown) => {
        throw new Error(`${String(e)}; dev printed:\n${dev.lines.join('\n')}`);
      });
      expect(await put(url1, 'grown', 'from-one')).toBe(true);

      // Two adds typed at once: dev starts them one after the other, each with --join.
      let mark = dev.lines.length;
      dev.proc.stdin!.write('add\nadd\n');
      const added = [];
      for (const i of [2, 3]) {
        await dev.line(new RegExp(`^\\[dev\\] node ${i} joins the cluster by the ticket of node \\d \\(--join\\):$`), mark, `the add notice of node ${i}`);
        const m = await dev.line(new RegExp(`^ {2}node ${i}: (http://\\S+) +data (\\S+) +pid (\\d+)$`), mark, `the address line of node ${i}`);
        expect(m[1]).toBe(`http://127.0.0.1:${base + i - 1}`);
        expect(m[2]).toMatch(new RegExp(`/grow/node-${i}$`));
        pids.push(Number(m[3]));
        added.push(m[1]!);
      }
      const url3 = added[1]!;

      // Node 1 sees every shard and the meta group (`metaGroup`, shard `shards`) replicated on all three, learners promoted.
      let last = '';
      await eventually(
        async () => {
          const st = await statusWithMeta<{ shards: ShardView[] }>(url1);
          last = JSON.stringify(st.shards.map((s) => [s.shard, s.voters, s.learners]));
          return st.shards.length === shards + 1 && st.shards.every((s) => JSON.stringify([...s.voters].sort()) === '[1,2,3]' && s.learners.length === 0);
        },
        120_000,
        'voters 1, 2, 3 everywhere',
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}; node 1 says ${last}; dev printed:\n${dev.lines.join('\n')}`);
      });
      // Node 3 holds the write made before it existed, in its own replica.
      await eventually(async () => (await staleGet(url3, 'grown')) === 'from-one', 30_000, 'the write on node 3');
      expect(await (await fetch(`${url3}/v1/kv/grown`)).text()).toBe('from-one');

      const members = spawnSync(process.execPath, [CLI, 'members', '--via', url1], { encoding: 'utf8' });
      expect(members.status, members.stderr).toBe(0);
      expect(members.stdout.split('\n').filter((l) => /^[123]\s+up\s/.test(l))).toHaveLength(3);

      // An added node is restarted like a founder: its data says it is a member, so it is not admitted again.
      mark = dev.lines.length;
      process.kill(pids[2]!, 'SIGKILL');
      await dev.line(
        new RegExp(`^\\[dev\\] node 3 \\(pid ${pids[2]}\\) was killed by SIGKILL; 2 of 3 nodes running \\(1, 2\\)$`),
        mark,
        'the exit notice of node 3',
      );
      expect((await dev.line(/^ {2}(\S.* start --data \S+\/node-3 .*)$/, mark, 'the command line of node 3'))[1]).toContain(' --join irohraft1');
      dev.proc.stdin!.write('r 3\n');
      pids.push(Number((await dev.line(/^\[dev\] node 3 starting again with its data: pid (\d+)$/, mark, 'the restart of node 3'))[1]));
      await dev.line(/^\[node 3\] iroh-raft node 3 listening: HTTP/, mark, 'node 3 listening again');
      await eventually(async () => (await staleGet(url3, 'grown').catch(() => '')) === 'from-one', 60_000, 'the write on node 3 after its restart');
      const again = spawnSync(process.execPath, [CLI, 'members', '--via', url1], { encoding: 'utf8' });
      expect(again.stdout.split('\n').filter((l) => /^\d+\s+\S+\s/.test(l))).toHaveLength(3);

      const code = await new Promise<number | null>((resolve) => {
        dev.proc.once('exit', (c) => resolve(c));
        dev.proc.kill('SIGINT');
      });
      expect(code).toBe(0);
      for (const u of [url1, ...added]) await expect(fetch(`${u}/healthz`)).rejects.toThrow();
      for (const p of pids) expect(alive(p), `pid ${p}`).toBe(false);
    } finally {
      if (dev.proc.exitCode === null && dev.proc.signalCode === null) dev.proc.kill('SIGKILL');
      for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
    }
  },
);
