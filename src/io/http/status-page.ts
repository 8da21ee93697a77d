/**
 * The live status page, `GET /` and `GET /ui`: one HTML document with its style and script
 * inline, no external resource, so it works offline and needs no build step. The script polls
 * `GET /v1/status` of the node that served it every second and redraws; when that node stops
 * answering it says so at the top and greys the last data it had. The content-security-policy
 * allows exactly this page's own inline style and script (by their SHA-256) and requests to its
 * own origin, nothing else.
 *
 * With `--auth on` the page itself is served without a token (a browser sends none with a page
 * load, and the HTML holds no data), while `/v1/status` needs the node's admin token. On a 401 the
 * script shows a form for that token (a password input), keeps it in this tab's sessionStorage
 * and sends it as `Authorization: Bearer` with every poll; a refused token brings the form back
 * with the node's answer, and "forget token" drops it.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import type { Reply } from './routes.js';

const STYLE = `
:root { --fg: #1d232b; --muted: #67707c; --line: #dde1e6; --bg: #f7f8fa; --up: #1f8a4c; --down: #c62f2f; --warn: #a86500; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 17px; margin: 0; }
h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
#fresh { color: var(--muted); margin-left: auto; font-variant-numeric: tabular-nums; }
#banner { display: none; padding: 10px 20px; background: var(--down); color: #fff; font-weight: 600; }
body.stale #banner { display: block; }
body.stale main { opacity: .45; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 16px 20px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; }
.pill { display: inline-block; min-width: 46px; text-align: center; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; }
.pill.up { background: var(--up); }
.pill.down { background: var(--down); }
.lag { color: var(--warn); font-weight: 600; }
tr[data-up="false"] td { color: var(--muted); }
.none { color: var(--down); font-weight: 600; }
.muted { color: var(--muted); }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
ul.kv { list-style: none; margin: 0; padding: 0; }
ul.kv li { padding: 3px 0; }
#auth { display: none; max-width: 640px; margin: 16px 20px; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
body.auth #auth { display: block; }
body.auth main { display: none; }
#auth input { font: inherit; padding: 4px 8px; width: 340px; max-width: 100%; }
#auth-error:empty { display: none; }
button { font: inherit; }
`;

const SCRIPT = `
'use strict';
const REFRESH_MS = 1000;
const TIMEOUT_MS = 1500;
const SHARD_ROWS_MAX = 256;
const TOKEN_KEY = 'iroh-raft.admin-token';
let lastGood = 0;
let failingSince = 0;
let pollTimer = 0;
let busy = false;
let again = false;
let tokenHere = '';

const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c);
  return tr;
}
const num = (v) => el('td', v === null || v === undefined ? '-' : v, 'num');
const fixed = (v, digits) => (typeof v === 'number' ? v.toFixed(digits) : null);
function pill(up) {
  const td = el('td');
  td.appendChild(el('span', up ? 'up' : 'down', 'pill ' + (up ? 'up' : 'down')));
  return td;
}
function clock(t) {
  return new Date(t).toLocaleTimeString();
}

function drawNodes(s) {
  const body = $('nodes');
  body.replaceChildren();
  for (const n of s.nodes) {
    const tr = row([
      el('td', n.node + (n.self ? ' (this node)' : '')),
      pill(n.up),
      el('td', n.workersDown.length === 0 ? (n.workers > 0 ? 'all ' + n.workers + ' running' : '-') : 'down: ' + n.workersDown.join(', '), n.workersDown.length ? 'none' : ''),
      num(fixed(n.requestsPerSec, 1)),
      num(fixed(n.p99Ms, 2)),
      num(n.self ? 'this node' : (n.heardMsAgo / 1000).toFixed(1) + ' s ago'),
      el('td', n.httpUrl || '-', 'mono url'),
      el('td', n.id.slice(0, 12) + '…', 'mono muted'),
    ]);
    tr.dataset.node = String(n.node);
    tr.dataset.up = String(n.up);
    body.appendChild(tr);
  }
  $('nodes-up').textContent = s.nodes.filter((n) => n.up).length + ' of ' + s.nodes.length + ' up';
}

function drawShards(s) {
  const body = $('shards');
  body.replaceChildren();
  const leaders = new Map();
  let leaderless = 0;
  for (const sh of s.shards) {
    if (sh.leader === 0) leaderless++;
    else leaders.set(sh.leader, (leaders.get(sh.leader) || 0) + 1);
  }
  const byLeader = [...leaders.entries()].sort((a, b) => a[0] - b[0]).map(([n, c]) => 'node ' + n + ': ' + c);
  $('shards-summary').textContent =
    s.shards.length + ' shards hosted here; leaders ' + (byLeader.join(', ') || 'none') + (leaderless ? '; without a leader: ' + leaderless : '') +
    (s.workersDown.length ? '; workers down here: ' + s.workersDown.join(', ') : '');
  for (const sh of s.shards.slice(0, SHARD_ROWS_MAX)) {
    const lag = sh.commit - sh.applied;
    const tr = row([
      el('td', sh.shard),
      el('td', sh.leader === 0 ? 'none' : 'node ' + sh.leader, sh.leader === 0 ? 'none' : ''),
      el('td', sh.role),
      num(sh.term),
      num(sh.commit),
      num(sh.applied),
      el('td', lag, 'num' + (lag > 0 ? ' lag' : '')),
    ]);
    tr.dataset.shard = String(sh.shard);
    tr.dataset.leader = String(sh.leader);
    body.appendChild(tr);
  }
  $('shards-more').textContent = s.shards.length > SHARD_ROWS_MAX ? 'first ' + SHARD_ROWS_MAX + ' of ' + s.shards.length + ' shards shown' : '';
}

function drawActivity(s) {
  const snap = s.snapshots;
  $('snapshots').textContent = snap ? (snap.sending + snap.receiving === 0 ? 'none in progress' : 'sending ' + snap.sending + ', receiving ' + snap.receiving) : 'not reported';
  const moves = s.moves;
  $('moves').textContent = moves && moves.active && moves.active.length ? moves.active.length + ' in progress' : 'no moves';
}

function draw(s) {
  $('self').textContent = 'node ' + s.node;
  document.title = 'iroh-raft · node ' + s.node;
  drawNodes(s);
  drawShards(s);
  drawActivity(s);
}

function showFreshness() {
  if (failingSince) {
    document.body.classList.add('stale');
    $('banner').textContent = 'This node is not answering since ' + clock(failingSince) + (lastGood ? '; showing its data from ' + clock(lastGood) : '') + '. Retrying every second.';
    $('fresh').textContent = 'not answering';
  } else {
    document.body.classList.remove('stale');
    $('fresh').textContent = lastGood ? 'updated ' + clock(lastGood) : 'loading…';
  }
  document.body.dataset.state = failingSince ? 'unreachable' : lastGood ? 'live' : 'loading';
}

// sessionStorage: the token lives as long as this tab, never in a cookie or on disk by this page.
function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch (e) {
    return tokenHere;
  }
}
function setToken(t) {
  tokenHere = t;
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) {
    // storage is off: the token lasts as long as this page
  }
}

async function errorOf(r) {
  try {
    const e = (await r.json()).error;
    return r.status + ' ' + e.code + ': ' + e.message;
  } catch (e) {
    return 'HTTP ' + r.status;
  }
}

// The node wants the admin token (401), or a tenant's token was given (403): no data, the form.
function askForToken(message) {
  $('nodes').replaceChildren();
  $('shards').replaceChildren();
  $('auth-error').textContent = message;
  $('forget').hidden = true;
  $('fresh').textContent = 'admin token needed';
  document.body.classList.remove('stale');
  document.body.classList.add('auth');
  document.body.dataset.state = 'auth';
  $('token').focus();
}

async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  clearTimeout(pollTimer);
  let waiting = false;
  const sent = getToken();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const r = await fetch('/v1/status', { cache: 'no-store', signal: ctl.signal, headers: sent ? { authorization: 'Bearer ' + sent } : {} });
    if (sent !== getToken()) {
      again = true; // the token changed while this poll was out: ask again with the new one
      return;
    }
    if (r.status === 401 || r.status === 403) {
      const why = await errorOf(r);
      setToken('');
      waiting = true;
      failingSince = 0;
      askForToken(sent ? 'This node refused that token (' + why + '). Enter its admin token.' : '');
      return;
    }
    if (!r.ok) throw new Error('status ' + r.status);
    const s = await r.json();
    document.body.classList.remove('auth');
    $('forget').hidden = !sent;
    draw(s);
    lastGood = Date.now();
    failingSince = 0;
  } catch (e) {
    if (!failingSince) failingSince = Date.now();
  } finally {
    clearTimeout(timer);
    busy = false;
    if (!waiting) showFreshness();
    // While the form is up nothing polls: a request without the token would only be refused.
    if (again) {
      again = false;
      pollTimer = setTimeout(refresh, 0);
    } else if (!waiting) pollTimer = setTimeout(refresh, REFRESH_MS);
  }
}

$('auth').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const t = $('token').value.trim();
  $('token').value = '';
  if (!/^[!-~]+$/.test(t)) {
    $('auth-error').textContent = 'A token is one word of printable characters: the content of admin.token.';
    return;
  }
  setToken(t);
  $('auth-error').textContent = '';
  $('fresh').textContent = 'checking the token…';
  refresh();
});
$('forget').addEventListener('click', () => {
  setToken('');
  refresh();
});
refresh();
`;

const BODY = `<header><h1>iroh-raft · <span id="self">…</span></h1><span id="nodes-up" class="muted"></span><span id="fresh">loading…</span><button id="forget" type="button" hidden>forget token</button></header>
<div id="banner" role="alert"></div>
<form id="auth"><h2>Admin token</h2>
<p>This node runs with auth on: its status needs its admin token, the content of <span class="mono">admin.token</span> in its data directory. The token stays in this browser tab (sessionStorage) and goes only to this node.</p>
<p id="auth-error" class="none" role="alert"></p>
<p><label for="token">Admin token</label> <input id="token" type="password" autocomplete="off" spellcheck="false"> <button type="submit">Show status</button></p>
</form>
<main>
<section class="wide"><h2>Members</h2><table><thead><tr><th>node</th><th>state</th><th>workers</th><th class="num">requests/s</th><th class="num">p99 ms</th><th class="num">last heard</th><th>HTTP</th><th>id</th></tr></thead><tbody id="nodes"></tbody></table>
<p class="muted">Up or down as this node's liveness sees them; requests/s and p99 are each node's client API over its last 5 s, as it last reported.</p></section>
<section class="wide"><h2>Activity</h2><ul class="kv"><li>Snapshots: <span id="snapshots">…</span></li><li>Moves: <span id="moves">…</span></li></ul></section>
<section class="wide"><h2>Shards</h2><p id="shards-summary" class="muted"></p><table><thead><tr><th>shard</th><th>leader</th><th>role here</th><th class="num">term</th><th class="num">commit</th><th class="num">applied</th><th class="num">lag</th></tr></thead><tbody id="shards"></tbody></table><p id="shards-more" class="muted"></p></section>
</main>`;

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** Only this page's own style and script, and fetches to its own origin. */
const CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HTML = Buffer.from(
  `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>iroh-raft status</title><link rel="icon" href="data:,"><style>${STYLE}</style></head>
<body data-state="loading">${BODY}<script>${SCRIPT}</script></body></html>
`,
  'utf8',
);

/** The page with its security headers. The same bytes every time. */
export function statusPageReply(): Reply {
  return {
    status: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    },
    body: HTML,
  };
}
