/**
 * The live status page in a real browser: Debian's headless Chromium, driven by playwright-core,
 * opens node 1's page of an `iroh-raft dev --nodes 3` cluster (the command as users run it). The
 * page shows three members up and every shard's leader; when node 3's process is SIGKILLed the
 * page shows it down by itself, without a reload; when node 1 itself stops, the page says that
 * its node does not answer. A single node with `--auth on`: its page asks for the admin token,
 * refuses a wrong one with the node's answer, and with the token from `<data>/admin.token` shows the
 * node up and its shards; "forget token" asks again. Chromium missing is a failure that says how
 * to install it, never a skip.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, expect, test } from 'vitest';
import { CLI, TestCluster, devBasePort, eventually } from './cluster.js';

const root = mkdtempSync(join(tmpdir(), 'iroh-raft-page-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The Chromium binary: $CHROMIUM_PATH, else `chromium` on the PATH (Debian's package). */
function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('chromium is not installed: `apt-get install -y --no-install-recommends chromium` (.ci/run does it), or set CHROMIUM_PATH');
  }
}

const SHARDS = 4;

/** Console errors of `page` but the failed loads that the test causes on purpose (401s, a stopped node). */
function problemsOf(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return problems;
}

test('the status page of node 1 shows three members up and every leader, then node 3 down after its SIGKILL, without a reload', async () => {
  const executablePath = chromiumPath();
  const base = await devBasePort();
  const dev = spawn(
    process.execPath,
    [CLI, 'dev', '--nodes', '3', '--shards', String(SHARDS), '--base-port', String(base), '--data', root, '--log-level', 'warn'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((r) => dev.once('exit', (c) => r(c)));
  const printed: string[] = [];
  const nodes = new Map<number, { url: string; pid: number }>();
  for (const out of [dev.stdout, dev.stderr]) {
    createInterface({ input: out }).on('line', (l) => {
      printed.push(l);
      const m = /^ {2}node (\d+): (http:\/\/\S+) .* pid (\d+)$/.exec(l);
      if (m) nodes.set(Number(m[1]), { url: m[2]!, pid: Number(m[3]) });
    });
  }
  let browser: Browser | undefined;
  try {
    await eventually(async () => Promise.resolve(nodes.size === 3), 60_000, `dev printing three nodes; it printed:\n${printed.join('\n')}`);
    const [one, , three] = [1, 2, 3].map((n) => nodes.get(n)!);
    await eventually(async () => (await Promise.all([...nodes.values()].map((n) => fetch(`${n.url}/healthz`)))).every((r) => r.ok), 60_000, 'every shard led');
    // The page shows raft ids; dev numbers its nodes in start order.
    const raftIdOf3 = ((await (await fetch(`${three!.url}/v1/status`)).json()) as { node: number }).node;

    browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless=new'] });
    const page = await browser.newPage();
    const problems = problemsOf(page);
    const res = await page.goto(`${one!.url}/ui`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/default-src 'none'; script-src 'sha256-/);

    // Locators and polls only: a predicate run in the page is eval, which the page's CSP refuses.
    await expect.poll(() => page.locator('#nodes tr[data-up="true"]').count(), { timeout: 30_000 }).toBe(3);
    // Each peer's HTTP URL reached node 1 with its liveness records over Iroh.
    const urls = [...nodes.values()].map((n) => n.url).sort();
    await expect.poll(async () => (await page.locator('#nodes td.url').allTextContents()).sort(), { timeout: 30_000 }).toEqual(urls);
    const leaders = page.locator('#shards tr:not([data-leader="0"])');
    await expect.poll(() => leaders.count(), { timeout: 30_000 }).toBe(SHARDS);
    expect(await page.textContent('#moves')).toBe('no moves');
    // Evaluated over the DevTools protocol, outside the page's CSP; this project has no DOM types.
    await page.evaluate('window.loadedOnce = true');

    process.kill(three!.pid, 'SIGKILL');
    const node3 = page.locator(`#nodes tr[data-node="${raftIdOf3}"]`);
    await expect.poll(() => node3.getAttribute('data-up'), { timeout: 30_000 }).toBe('false');
    // The same document redrew itself: no reload happened.
    expect(await page.evaluate('window.loadedOnce')).toBe(true);
    expect(await page.locator('#nodes tr[data-up="true"]').count()).toBe(2);
    expect(await page.textContent('#nodes-up')).toBe('2 of 3 up');

    // Node 1 itself stops: the page says so instead of showing old data as live.
    dev.kill('SIGINT');
    await exited;
    await expect.poll(() => page.getAttribute('body', 'data-state'), { timeout: 15_000 }).toBe('unreachable');
    expect(await page.isVisible('#banner')).toBe(true);
    expect(await page.textContent('#banner')).toMatch(/^This node is not answering since /);
    expect(problems).toEqual([]);
  } finally {
    await browser?.close();
    dev.kill('SIGKILL');
    for (const n of nodes.values()) {
      try {
        process.kill(n.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

test('with --auth on the page asks for the admin token: a wrong one is refused with a message; the right one shows the node up and its shards; forget token asks again', async () => {
  const executablePath = chromiumPath();
  const secured = new TestCluster({ nodes: 1, shards: SHARDS, extra: ['--auth', 'on'] });
  let browser: Browser | undefined;
  try {
    await secured.start();
    const { url, data } = secured.node(1);
    const token = readFileSync(join(data, 'admin.token'), 'utf8').trim();
    await eventually(async () => (await fetch(`${url}/healthz`)).ok, 60_000, 'every shard led');

    browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless=new'] });
    const page = await browser.newPage();
    const problems = problemsOf(page);
    const state = (): Promise<string | null> => page.getAttribute('body', 'data-state');
    const stored = async (): Promise<unknown> => page.evaluate("sessionStorage.getItem('iroh-raft.admin-token')");
    // The page loads without a token; its first poll of /v1/status is refused, so it asks.
    const res = await page.goto(`${url}/ui`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/default-src 'none'; script-src 'sha256-[^;]+; style-src 'sha256-[^;]+; connect-src 'self'/);
    await expect.poll(state, { timeout: 15_000 }).toBe('auth');
    expect(await page.isVisible('#token')).toBe(true);
    expect(await page.getAttribute('#token', 'type')).toBe('password');
    expect(await page.isVisible('#auth-error')).toBe(false);
    expect(await page.isVisible('#forget')).toBe(false);
    expect(await page.locator('#nodes tr').count()).toBe(0);

    // A wrong token: the node's 401 shown, the token not kept, still no data.
    await page.fill('#token', `_admin.${'A'.repeat(43)}`);
    await page.click('#auth button[type="submit"]');
    await expect
      .poll(() => page.textContent('#auth-error'), { timeout: 15_000 })
      .toMatch(/^This node refused that token \(401 Unauthorized: .+\)\. Enter its admin token\.$/);
    expect(await page.isVisible('#auth-error')).toBe(true);
    expect(await state()).toBe('auth');
    expect(await stored()).toBeNull();
    expect(await page.locator('#nodes tr').count()).toBe(0);

    // The admin token of <data>/admin.token (Enter submits): the node up, every shard with its leader.
    await page.fill('#token', token);
    await page.press('#token', 'Enter');
    await expect.poll(state, { timeout: 15_000 }).toBe('live');
    await expect.poll(() => page.locator('#nodes tr[data-up="true"]').count(), { timeout: 15_000 }).toBe(1);
    await expect.poll(() => page.locator('#shards tr:not([data-leader="0"])').count(), { timeout: 30_000 }).toBe(SHARDS);
    expect(await page.textContent('#nodes-up')).toBe('1 of 1 up');
    expect(await page.isVisible('#auth')).toBe(false);
    expect(await page.isVisible('#forget')).toBe(true);
    expect(await stored()).toBe(token);
    // Later polls carry the token too: the page stays live and keeps updating.
    const fresh = await page.textContent('#fresh');
    await expect.poll(() => page.textContent('#fresh'), { timeout: 15_000 }).not.toBe(fresh);
    expect(await state()).toBe('live');
    // A reload in the same tab keeps it (sessionStorage): no form.
    await page.reload();
    await expect.poll(state, { timeout: 15_000 }).toBe('live');
    expect(await page.isVisible('#auth')).toBe(false);

    // Forget token: dropped, the data cleared, the form back.
    await page.click('#forget');
    await expect.poll(state, { timeout: 15_000 }).toBe('auth');
    expect(await stored()).toBeNull();
    expect(await page.isVisible('#token')).toBe(true);
    expect(await page.locator('#nodes tr').count()).toBe(0);
    expect(await page.isVisible('#auth-error')).toBe(false);
    expect(problems).toEqual([]);
  } finally {
    await browser?.close();
    await secured.close();
  }
});
