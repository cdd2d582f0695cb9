// Counters and gauges on the data path without prom-client on it. prom-client hashes a series' label object on
// every inc(), even through a child from labels(): a string built from every label, a result object, a megamorphic
// lookup per label. A WebSocket session makes a dozen such calls (opened, bytes both ways, messages and frames both
// ways, how it closed), which came to about 3 KB of garbage per session, the most of any one source (measured with
// V8's sampling heap profiler, docs/benchmarks.md). A deferred series is a number the data path adds to; the sum is
// added to the prom-client series when something reads the metric (a scrape, a test, the workers' aggregation: the
// metric's collect hook runs before every read). A read sees every count made before it, once.
import type { Counter, Gauge } from 'prom-client';

/** One series: what the data path adds, waiting for the next read of its metric. */
export class DeferredSeries {
  /** Added since the last read (a gauge's may be negative). */
  pending = 0;
  /** Something was added (even 0: the series then exists at 0, as prom-client's inc(0) makes it). */
  touched = false;
  readonly labels: Readonly<Record<string, string>>;

  constructor(labels: Readonly<Record<string, string>>) {
    this.labels = labels;
  }

  inc(n = 1): void {
    this.pending += n;
    this.touched = true;
  }

  /** Gauges only. */
  dec(n = 1): void {
    this.pending -= n;
    this.touched = true;
  }
}

/** The deferred series of one prom-client counter or gauge, applied to it whenever it is read. */
export class Deferred<L extends string> {
  readonly #metric: Counter<L> | Gauge<L>;
  readonly #series = new Map<string, DeferredSeries>();

  constructor(metric: Counter<L> | Gauge<L>) {
    this.#metric = metric;
    // prom-client runs a metric's `collect` at the start of every get(): the registry's scrape, getSingleMetric().
    (metric as { collect?: () => void }).collect = () => this.apply();
  }

  /** The series with these labels (made once per label set: call it when a route's series are resolved). */
  series(labels: Readonly<Record<L, string>>): DeferredSeries {
    const key = JSON.stringify(labels);
    let s = this.#series.get(key);
    if (s === undefined) {
      s = new DeferredSeries(labels);
      this.#series.set(key, s);
    }
    return s;
  }

  /** Adds what every series counted since the last read to the prom-client metric. */
  apply(): void {
    for (const s of this.#series.values()) {
      if (!s.touched) continue;
      const n = s.pending;
      s.pending = 0;
      s.touched = false;
      this.#metric.inc(s.labels as Partial<Record<L, string>>, n);
    }
  }

  /** Forgets the series of routes that left (their prom-client series are removed by the caller). */
  forget(gone: (route: string) => boolean): void {
    for (const [key, s] of this.#series) if (gone(s.labels['route'] ?? '')) this.#series.delete(key);
  }
}
