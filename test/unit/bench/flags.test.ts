/**
 * The bench's flag checks: every bad combination exits 2 with a message naming the flag, before
 * anything is started (no cluster, no load).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../..', import.meta.url).pathname;

function bench(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'bench/cluster.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'close', not 'exit': the process can exit before its stderr has been read to the end.
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

const cases: [string[], RegExp][] = [
  [['--against', 'postgres=http://127.0.0.1:5432'], /--against must be etcd=/],
  [['--against', 'etcd=ftp://127.0.0.1:2379'], /--against etcd: 'ftp:\/\/127.0.0.1:2379' is not http:\/\/host:port/],
  [['--against', 'etcd=http://127.0.0.1:2379,http://127.0.0.1:2379'], /--against etcd lists a URL twice/],
  [['--against', 'etcd=http://127.0.0.1:2379', '--nodes', '1', '--consistency', 'lease'], /--consistency lease has no etcd counterpart/],
  [['--against', 'etcd=http://127.0.0.1:2379', '--nodes', '1', '--sweep', 'shards=1,2'], /--sweep cannot be combined with --against/],
  [['--against', 'etcd=http://127.0.0.1:2379', '--nodes', '1', '--rounds', '0'], /--rounds must be between 1 and 20/],
  [['--against', 'etcd=http://127.0.0.1:2379', '--nodes', '3'], /--against etcd lists 1 URL\(s\) and iroh-raft has 3 node\(s\)/],
  [['--against', 'etcd=http://127.0.0.1:2379', '--nodes', '1', '--ceiling'], /--ceiling cannot be combined with --against/],
  [['--idle', '--profile'], /--profile has no effect with --idle/],
  [['--node-flags=--max-semi-space-size=32 rm'], /--node-flags: 'rm' is not a --flag/],
  [['--rounds', '2'], /--rounds needs --against or --ceiling/],
  [['--ceiling', '--rounds', '0'], /--rounds must be between 1 and 20/],
  [['--ceiling', '--rounds', '3', '--sweep', 'shards=1,2'], /cannot be combined with --sweep/],
  [['--against', 'etcd=http://127.0.0.1:2379', '--nodes', '1', '--mix', 'cas'], /--mix cas has no counterpart in the etcd comparison/],
  [['--mix', 'cas:50'], /--mix must be put, get, cas or mixed:R\/W/],
  [['--profile', '--target', 'http://127.0.0.1:7070'], /--profile needs a local cluster/],
  [['--sweep', 'colour=1,2'], /--sweep: unknown key 'colour'/],
  [['--connections', 'many'], /--connections must be a whole number/],
  [['--idle', '--mix', 'get'], /--mix has no effect with --idle/],
  [['--client', '--direct'], /--client and --direct are two leader-aware loads/],
  [['--client', '--ceiling'], /--client speaks to iroh-raft nodes only/],
  [['--client', '--mix', 'cas'], /--client drives put, get and mixed mixes/],
  [['--idle', '--client'], /--client has no effect with --idle/],
  [['--client', '--warmup', '5'], /--warmup drives autocannon: it has no effect with --client/],
  [['--idle', '--warmup', '5'], /--warmup has no effect with --idle/],
  [['--warmup', '601'], /--warmup must be between 0 and 600/],
  [['--warmup', 'soon'], /--warmup must be a whole number/],
];

describe('bench flags', () => {
  it.concurrent.each(cases)('%j is refused with exit 2', async (args, message) => {
    const r = await bench(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/usage: npm run bench/);
  });

  it('etcd=local without an etcd binary is refused before anything starts', async () => {
    const r = await bench(['--against', 'etcd=local'], { ETCD_BIN: '/nonexistent/etcd' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no etcd binary \('\/nonexistent\/etcd --version' failed\)/);
  });
});
