/**
 * The `Host` allow-list. A browser lets any web page send requests to 127.0.0.1; with DNS
 * rebinding (a name of the attacker's that first resolves to its own server, then to 127.0.0.1)
 * the page can also read the answers, because the browser takes them for the attacker's origin.
 * The request still names the attacker's host in `Host`, so a node that answers only the names it
 * is reached by refuses it. A node bound to a loopback address answers only the loopback names by
 * default; one bound elsewhere answers any host unless given a list (it is meant to be reached
 * by names the node cannot know).
 */

/** The names a loopback-bound node answers by default. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/**
 * Which hosts a server answers: any (`null`), or a set of exact names and `*.suffix` wildcards,
 * all in lowercase without a trailing dot.
 */
export interface HostRule {
  readonly exact: ReadonlySet<string>;
  /** `.example.com` for the entry `*.example.com`: matches any name that ends with it. */
  readonly suffixes: readonly string[];
}

/** A name as the allow-list compares it: lowercase, no trailing dot, IPv6 without brackets. */
function canonical(name: string): string {
  let n = name.trim().toLowerCase();
  if (n.startsWith('[') && n.endsWith(']')) n = n.slice(1, -1);
  if (n.endsWith('.')) n = n.slice(0, -1);
  return n;
}

const ENTRY = /^(\*\.)?[a-z0-9_.:-]+$/;

/**
 * The rule for `entries` (`*` alone = any host, `null`), or for the listening `host` when no
 * list is given: the loopback names for a loopback address, any host otherwise. Throws RangeError
 * naming a malformed entry.
 */
export function hostRule(entries: readonly string[] | undefined, listenHost: string): HostRule | null {
  if (entries === undefined) return isLoopback(listenHost) ? hostRule(LOOPBACK_HOSTS, listenHost) : null;
  if (entries.length === 0) throw new RangeError('allowedHosts is empty (use * to answer any host)');
  if (entries.some((e) => e.trim() === '*')) return null;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const raw of entries) {
    const e = canonical(raw);
    if (!ENTRY.test(e) || e.includes('..')) throw new RangeError(`allowedHosts: ${JSON.stringify(raw)} is not a host name, an IP address or *.name`);
    if (e.startsWith('*.')) suffixes.push(e.slice(1));
    else exact.add(e);
  }
  return { exact, suffixes };
}

/** Whether `host` is a loopback name or address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = canonical(host);
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * The host name of a `Host` header value (`name`, `name:port`, `[v6]:port`), or undefined when
 * it is missing or malformed.
 */
export function hostOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const v = header.trim();
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(v);
  return m ? canonical(m[1]!) : undefined;
}

/** Whether a request with this `Host` header value is answered under `rule` (null = any host). */
export function hostAllowed(rule: HostRule | null, header: string | undefined): boolean {
  if (rule === null) return true;
  const h = hostOf(header);
  if (h === undefined) return false;
  return rule.exact.has(h) || rule.suffixes.some((s) => h.endsWith(s) && h.length > s.length);
}
