/**
 * The facts every result file records next to its figures: the versions of what ran and the
 * machine it ran on.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ROOT } from './settings.js';

function packageVersion(name: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

export function versions(): Record<string, string | undefined> {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  // Read-only (no index refresh): were the sources that dist was built from edited since the commit?
  const dirty = spawnSync('git', ['--no-optional-locks', 'status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return {
    node: process.version,
    irohRaft: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    commit: git.status === 0 ? git.stdout.trim() : undefined,
    srcEditedSinceCommit: dirty.status === 0 ? (dirty.stdout.trim() === '' ? 'no' : 'yes') : undefined,
    iroh: packageVersion('@number0/iroh'),
    lmdb: packageVersion('lmdb'),
    autocannon: packageVersion('autocannon'),
  };
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    platform: `${os.platform()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg(),
    date: new Date().toISOString(),
  };
}

/** Versions and machine, as a result file holds them; `machine.date` is when the run started. */
export function facts(): { versions: ReturnType<typeof versions>; machine: ReturnType<typeof machine> } {
  return { versions: versions(), machine: machine() };
}
