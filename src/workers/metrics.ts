/**
 * How this project turns its plain counts into Prometheus series, on the main thread and in the
 * workers alike. Counts live in plain objects (the host's, the router's, the transport's) and are
 * read when /metrics is scraped; these helpers give each read the right Prometheus type.
 *
 * Worker registries reach the main thread as prom-client JSON and are merged with
 * `AggregatorRegistry.aggregate`, which adds up series that have the same name and labels (its
 * default aggregator, `sum`, kept for every type): histograms without a worker label are parts
 * of a node-wide distribution, so their buckets, sums and counts add up; series with a `worker`
 * label (the workers' counters and gauges) never meet another worker's, so `sum` leaves them as
 * they are. The main thread's registry is not aggregated: it is merged beside the workers' as it
 * is (src/main/node.ts).
 */
import { Counter, Gauge } from 'prom-client';
import { assert } from '../shards/raft/index.js';
import type { Registry } from 'prom-client';

/** Label values of one series; every label must have a bounded set of values. */
export type Labels = Readonly<Record<string, string>>;

/**
 * A counter whose value is read from a monotonic count at scrape time. It sets the series to the
 * count just read (reset, then increment by it), so the value is exactly the count: a count that
 * starts again from zero (a restarted worker) shows as a counter reset, which Prometheus' rate()
 * handles. `name` must end in `_total`.
 */
export function counterFrom(registry: Registry, name: string, help: string, read: () => number, labels: Labels = {}): void {
  assert(name.endsWith('_total'), `counter ${name} must end in _total`);
  new Counter({
    name,
    help,
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      this.reset();
      this.inc(labels, read());
    },
  });
}

/** A gauge set to `read()` at scrape time. */
export function gaugeFrom(registry: Registry, name: string, help: string, read: () => number, labels: Labels = {}): void {
  assert(!name.endsWith('_total'), `gauge ${name} must not end in _total`);
  new Gauge({
    name,
    help,
    labelNames: Object.keys(labels),
    registers: [registry],
    collect() {
      this.set(labels, read());
    },
  });
}

/**
 * Latency buckets for a KV store, in seconds: 0.5 ms to 10 s, about two per factor of 2.5, so a
 * local read (sub-millisecond), a durable write (milliseconds) and a timeout (seconds) each land
 * in a bucket of their own.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
