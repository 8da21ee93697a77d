/**
 * Catch-up of a replica that missed everything: a cluster of real node processes (3 by default)
 * takes --mib of writes (values of mixed sizes up to 1 MiB, random bytes, so deflate cannot
 * shrink the snapshots) while one node is down, with compaction set so that the log alone cannot
 * bring it back; then the node starts again and catches up by snapshot streams. Reports how long
 * the writes and the catch-up took (MB/s), the returning node's peak RSS during the catch-up
 * (sampled every 100 ms from /proc: VmRSS, and RssAnon without the LMDB pages it maps), the
 * snapshot metrics, and checks that every key reads back
 * from that node with `consistency=stale` byte for byte. Optionally (--kill-sender) the node that
 * sends a snapshot is killed once during the catch-up, and the transfer must start over elsewhere.
 *
 *   npx tsx bench/catchup.ts [--nodes 3] [--shards 16] [--mib 256] [--inflight 8] [--kill-sender] [--json]
 *
 * Needs dist/ (npm run build). Exit code 1 when a key does not read back or the catch-up stalls.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TestCluster, eventually, sleep } from '../test/integration/cluster.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} needs a positive number`);
    process.exit(2);
  }
  return v;
};
const nodes = flag('nodes', 3);
const shards = flag('shards', 16);
const mib = flag('mib', 256);
const inflight = flag('inflight', 8);
const killSender = args.includes('--kill-sender');
const json = args.includes('--json');

const SIZES = [1 << 20, 512 << 10, 128 << 10, 16 << 10, 1024];
const c = new TestCluster({ nodes, shards, workers: 1, tickMs: 50, extra: ['--compact-every-entries', '4', '--compact-keep-entries', '1'] });
const lagger = nodes;
const digests = new Map<string, string>();
const metric = (text: string, name: string): number =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name) && !l.startsWith('#'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
/** VmRSS and RssAnon (the process's own memory, without the LMDB files it maps) in MiB. */
const rssMiB = (pid: number): { rss: number; anon: number } => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon') };
};

try {
  await c.start();
  const up = Array.from({ length: nodes - 1 }, (_, i) => c.node(i + 1));
  await eventually(async () => (await fetch(`${up[0]!.url}/v1/kv/warm?tenant=t`, { method: 'PUT', body: 'x' })).ok, 60_000, 'a first write');
  await c.kill(lagger);

  // Writes: random values of mixed sizes, `inflight` at once, spread over the nodes that are up.
  const total = mib * (1 << 20);
  let written = 0;
  let next = 0;
  const t0 = performance.now();
  const lane = async (l: number): Promise<void> => {
    while (written < total) {
      const i = next++;
      const size = SIZES[i % SIZES.length]!;
      written += size;
      const value = randomBytes(size);
      const key = `k${i}`;
      const url = `${up[(i + l) % up.length]!.url}/v1/kv/${key}?tenant=t`;
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(url, { method: 'PUT', body: value }).catch(() => undefined);
        if (r?.ok) break;
        if (attempt > 20) throw new Error(`PUT ${key}: ${r?.status} ${await r?.text()}`);
        await sleep(200);
      }
      digests.set(key, createHash('sha256').update(value).digest('hex'));
    }
  };
  await Promise.all(Array.from({ length: inflight }, (_, l) => lane(l)));
  const writeS = (performance.now() - t0) / 1000;

  // Catch-up: start the lagger, sample its RSS, wait until every key reads back from it.
  await c.startNode(lagger);
  const t1 = performance.now();
  const pid = c.node(lagger).proc!.pid!;
  let peakRss = 0;
  let peakAnon = 0;
  const sampler = setInterval(() => {
    try {
      const m = rssMiB(pid);
      peakRss = Math.max(peakRss, m.rss);
      peakAnon = Math.max(peakAnon, m.anon);
    } catch {
      // The process is gone.
    }
  }, 100);
  let killed: number | undefined;
  if (killSender) {
    // Once a transfer runs, kill the node sending it; it restarts afterwards.
    await eventually(
      async () => {
        for (const n of up) {
          if (metric(await (await fetch(`${n.url}/metrics`)).text(), 'iroh_raft_snapshots_sending') > 0) {
            killed = n.index;
            await c.kill(n.index);
            return true;
          }
        }
        return false;
      },
      120_000,
      'a snapshot transfer in progress',
    );
  }
  const keys = [...digests.keys()];
  const missing = new Set(keys);
  await eventually(
    async () => {
      for (const key of [...missing]) {
        const r = await fetch(`${c.node(lagger).url}/v1/kv/${key}?tenant=t&consistency=stale`);
        if (!r.ok) return false;
        const got = createHash('sha256')
          .update(Buffer.from(await r.arrayBuffer()))
          .digest('hex');
        if (got !== digests.get(key)) return false;
        missing.delete(key);
      }
      return true;
    },
    30 * 60_000,
    'every key on the returning node',
  );
  const catchUpS = (performance.now() - t1) / 1000;
  clearInterval(sampler);
  const m = await (await fetch(`${c.node(lagger).url}/metrics`)).text();
  if (killed !== undefined) await c.startNode(killed);
  const result = {
    nodes,
    shards,
    mib,
    keys: keys.length,
    writeSeconds: +writeS.toFixed(1),
    writeMBps: +(total / 1e6 / writeS).toFixed(2),
    catchUpSeconds: +catchUpS.toFixed(1),
    catchUpMBps: +(total / 1e6 / catchUpS).toFixed(2),
    peakRssMiB: Math.round(peakRss),
    peakRssAnonMiB: Math.round(peakAnon),
    killedSender: killed ?? null,
    snapshotsReceived: metric(m, 'iroh_raft_snapshots_received_total'),
    snapshotReceiveFailures: metric(m, 'iroh_raft_snapshots_receive_failures_total'),
    snapshotBytesReceived: metric(m, 'iroh_raft_snapshots_received_bytes_total'),
    oversizeDrops: metric(m, 'iroh_raft_worker_oversize_drops_total'),
  };
  if (json) console.log(JSON.stringify(result));
  else console.table(result);
} catch (e) {
  console.error(e);
  for (const n of c.nodes) console.error(`--- node ${n.index}\n${n.output.split('\n').slice(-20).join('\n')}`);
  process.exitCode = 1;
} finally {
  await c.close();
}
