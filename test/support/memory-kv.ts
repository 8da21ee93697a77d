/**
 * The KV semantics in memory, behind the KvService contract: versions, compare-and-set and
 * compare-and-delete, sorted prefix scans, and switches to make it fail, throw or stall. For
 * tests of the HTTP layer over real sockets.
 */
import { Buffer } from 'node:buffer';
import type { Consistency, KvService, Result } from '../../src/api/index.js';

interface Entry {
  value: Uint8Array;
  version: number;
  createIndex: number;
  modIndex: number;
}

export type Call = { op: 'put' | 'delete' | 'get' | 'scan' | 'status' | 'metrics'; req: unknown };

/** The KV semantics in memory: one sorted-on-demand map per tenant, keys as latin1 strings (byte order). */
export class MemoryKv implements KvService {
  private readonly tenants = new Map<string, Map<string, Entry>>();
  private index = 0;
  /** Every call but health(), in order. */
  readonly calls: Call[] = [];
  /** When set, every call but health() answers this failure. */
  failWith: { code: string; message: string } | undefined;
  /** When set, every call but health() throws it. */
  throwWith: Error | undefined;
  /** When set, every call but health() waits for it first. */
  gate: Promise<void> | undefined;
  healthy = true;
  statusValue: unknown = { node: 1, shards: 4 };

  private table(tenant: string): Map<string, Entry> {
    let t = this.tenants.get(tenant);
    if (t === undefined) this.tenants.set(tenant, (t = new Map<string, Entry>()));
    return t;
  }

  /** Common entry: records the call, then stalls, throws or fails when told to. */
  private async enter(op: Call['op'], req: unknown, tenant?: string): Promise<{ ok: false; code: string; message: string } | undefined> {
    this.calls.push({ op, req });
    if (this.gate !== undefined) await this.gate;
    if (this.throwWith !== undefined) throw this.throwWith;
    if (this.failWith !== undefined) return { ok: false, ...this.failWith };
    if (tenant !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) return { ok: false, code: 'InvalidTenant', message: `bad tenant '${tenant}'` };
    return undefined;
  }

  async put(r: { tenant: string; key: Uint8Array; value: Uint8Array; expectedVersion?: number }): Promise<Result<{ version: number; swapped: boolean }>> {
    const fail = await this.enter('put', r, r.tenant);
    if (fail) return fail;
    const t = this.table(r.tenant);
    const k = Buffer.from(r.key).toString('latin1');
    const cur = t.get(k);
    if (r.expectedVersion !== undefined && r.expectedVersion !== (cur?.version ?? 0))
      return { ok: true, value: { version: cur?.version ?? 0, swapped: false } };
    const index = ++this.index;
    const e: Entry = { value: r.value.slice(), version: (cur?.version ?? 0) + 1, createIndex: cur?.createIndex ?? index, modIndex: index };
    t.set(k, e);
    return { ok: true, value: { version: e.version, swapped: true } };
  }

  async delete(r: { tenant: string; key: Uint8Array; expectedVersion?: number }): Promise<Result<{ deleted: boolean; version?: number }>> {
    const fail = await this.enter('delete', r, r.tenant);
    if (fail) return fail;
    const t = this.table(r.tenant);
    const k = Buffer.from(r.key).toString('latin1');
    const current = t.get(k)?.version ?? 0;
    if (r.expectedVersion !== undefined && r.expectedVersion !== current) return { ok: true, value: { deleted: false, version: current } };
    this.index++;
    return { ok: true, value: { deleted: t.delete(k) } };
  }

  async get(r: {
    tenant: string;
    key: Uint8Array;
    consistency: Consistency;
  }): Promise<Result<{ found: false } | { found: true; value: Uint8Array; version: number; createIndex: number; modIndex: number }>> {
    const fail = await this.enter('get', r, r.tenant);
    if (fail) return fail;
    const e = this.table(r.tenant).get(Buffer.from(r.key).toString('latin1'));
    return { ok: true, value: e === undefined ? { found: false } : { found: true, ...e } };
  }

  async scan(r: {
    tenant: string;
    prefix: Uint8Array;
    limit: number;
    startAfter?: Uint8Array;
    consistency: Consistency;
  }): Promise<Result<{ items: { key: Uint8Array; value: Uint8Array; version: number }[]; more: boolean }>> {
    const fail = await this.enter('scan', r, r.tenant);
    if (fail) return fail;
    const prefix = Buffer.from(r.prefix).toString('latin1');
    const after = r.startAfter === undefined ? undefined : Buffer.from(r.startAfter).toString('latin1');
    const keys = [...this.table(r.tenant).keys()].filter((k) => k.startsWith(prefix) && (after === undefined || k > after)).sort();
    const items = keys.slice(0, r.limit).map((k) => {
      const e = this.table(r.tenant).get(k) as Entry;
      return { key: new Uint8Array(Buffer.from(k, 'latin1')), value: e.value, version: e.version };
    });
    return { ok: true, value: { items, more: keys.length > r.limit } };
  }

  async status(): Promise<unknown> {
    const fail = await this.enter('status', undefined);
    if (fail) throw new Error(fail.code);
    return this.statusValue;
  }

  placement(): { node: number; shards: number; replicas: number; hash: string; leaders: (number | null)[] } {
    return { node: 1, shards: 4, replicas: 1, hash: 'h', leaders: [1, 1, null, 1] };
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    const fail = await this.enter('metrics', undefined);
    if (fail) throw new Error(fail.code);
    return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: '# TYPE kv_requests counter\nkv_requests 7\n' };
  }

  health(): { ok: boolean; detail: unknown } {
    if (this.throwWith !== undefined) throw this.throwWith;
    return { ok: this.healthy, detail: { shards: 4, withLeader: this.healthy ? 4 : 3 } };
  }

  /** The whole state as text (tenants, keys, versions, values): equal texts, equal states. */
  fingerprint(): string {
    const rows: string[] = [];
    for (const [tenant, t] of [...this.tenants].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const [k, e] of [...t].sort(([a], [b]) => (a < b ? -1 : 1)))
        rows.push(`${tenant}|${Buffer.from(k, 'latin1').toString('hex')}|${e.version}|${Buffer.from(e.value).toString('hex')}`);
    }
    return rows.join('\n');
  }

  /** Makes calls wait until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    return () => {
      this.gate = undefined;
      release();
    };
  }
}
