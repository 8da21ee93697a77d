/**
 * What the node should hold, as the auth-on HTTP fuzz (http-fuzz-auth.test.ts) believes: each
 * tenant's keys (value and version), the tenants (quota, generation, current token), the tokens
 * that stopped working, and the role bindings. Only answers in 2xx change it, so comparing it with
 * the node proves that no refused request changed anything.
 */
import { Buffer, isUtf8 } from 'node:buffer';

/** One key as its tenant should see it. */
export interface Entry {
  readonly value: Buffer;
  readonly version: number;
}

export interface TenantRecord {
  readonly quota: Readonly<Record<string, number>>;
  readonly generation: number;
  readonly token: string;
  /** Whether the tenant's usage was within its quota when the record was made: only then must it stay within. */
  readonly boundHeld: boolean;
}

/** Who a request is, by its token: the admin, a tenant, or nobody (no, malformed, or dead token). */
export type Principal = { readonly kind: 'admin' } | { readonly kind: 'tenant'; readonly tenant: string } | { readonly kind: 'invalid' };

/** A key or value as the node writes it in JSON: the text when it is UTF-8, else `{base64}`. */
export function bytesToJson(b: Buffer): string | { base64: string } {
  return isUtf8(b) ? b.toString('utf8') : { base64: b.toString('base64') };
}

export class Model {
  /** tenant -> key (hex) -> entry: changed by 2xx writes only (a tenant's keys outlive its record). */
  readonly data = new Map<string, Map<string, Entry>>();
  /** Live tenants: created (201) and not deleted (200). */
  readonly tenants = new Map<string, TenantRecord>();
  /** Tenant -> its tokens that stopped working (rotated, or the tenant deleted), oldest first. */
  readonly stale = new Map<string, string[]>();
  /** Endpoint id -> role, as `GET /v1/roles` should list them. */
  readonly roles = new Map<string, string>();

  constructor(readonly adminToken: string) {}

  /** The keys of `tenant` (created empty on first use). */
  keys(tenant: string): Map<string, Entry> {
    let m = this.data.get(tenant);
    if (m === undefined) {
      m = new Map();
      this.data.set(tenant, m);
    }
    return m;
  }

  get(tenant: string, key: Uint8Array): Entry | undefined {
    return this.data.get(tenant)?.get(Buffer.from(key).toString('hex'));
  }

  put(tenant: string, key: Uint8Array, value: Uint8Array, version: number): void {
    this.keys(tenant).set(Buffer.from(key).toString('hex'), { value: Buffer.from(value), version });
  }

  delete(tenant: string, key: Uint8Array): void {
    this.data.get(tenant)?.delete(Buffer.from(key).toString('hex'));
  }

  /** The principal a token stands for now. */
  principalOf(token: string): Principal {
    if (token === this.adminToken) return { kind: 'admin' };
    for (const [tenant, rec] of this.tenants) if (rec.token === token) return { kind: 'tenant', tenant };
    return { kind: 'invalid' };
  }

  /** Keys (bytes + JSON form) and values of `tenant` as a scan returns them: prefix, strictly after `after`, in byte order, at most `limit`. */
  page(tenant: string, prefix: Uint8Array, after: Uint8Array | undefined, limit: number): { items: unknown[]; more: boolean; next?: unknown } {
    const p = Buffer.from(prefix);
    const all = [...(this.data.get(tenant) ?? new Map<string, Entry>())]
      .map(([hex, e]) => ({ key: Buffer.from(hex, 'hex'), e }))
      .filter(({ key }) => key.subarray(0, p.length).equals(p) && key.length >= p.length)
      .filter(({ key }) => after === undefined || Buffer.compare(key, Buffer.from(after)) > 0)
      .sort((a, b) => Buffer.compare(a.key, b.key));
    const items = all.slice(0, limit).map(({ key, e }) => ({ key: bytesToJson(key), value: bytesToJson(e.value), version: e.version }));
    const more = all.length > limit;
    const last = items.at(-1);
    return more && last !== undefined ? { items, more, next: last.key } : { items, more };
  }

  /** Keys and key + value bytes of `tenant`, as its quota counts them. */
  usage(tenant: string): { keys: number; bytes: number } {
    let bytes = 0;
    const m = this.data.get(tenant) ?? new Map<string, Entry>();
    for (const [hex, e] of m) bytes += hex.length / 2 + e.value.length;
    return { keys: m.size, bytes };
  }

  /** Whether `tenant`'s usage is within `quota`. */
  within(tenant: string, quota: Readonly<Record<string, number>>): boolean {
    const u = this.usage(tenant);
    return (quota.keysMax === undefined || u.keys <= quota.keysMax) && (quota.bytesMax === undefined || u.bytes <= quota.bytesMax);
  }

  /** A tenant made (201): its record and token. */
  created(name: string, quota: Record<string, number>, generation: number, token: string): void {
    this.tenants.set(name, { quota, generation, token, boundHeld: this.within(name, quota) });
  }

  /** A tenant's token replaced (rotate) or dropped (delete): the old one goes to `stale`. */
  retire(name: string, next: { token: string; generation: number } | undefined): void {
    const rec = this.tenants.get(name);
    if (rec === undefined) return;
    this.stale.set(name, [...(this.stale.get(name) ?? []), rec.token]);
    if (next === undefined) this.tenants.delete(name);
    else this.tenants.set(name, { ...rec, ...next });
  }

  /** Every tenant the node should hold keys for, or knows: live ones and any with keys. */
  tenantNames(): string[] {
    return [...new Set([...this.tenants.keys(), ...[...this.data].filter(([, m]) => m.size > 0).map(([t]) => t)])].sort();
  }
}
