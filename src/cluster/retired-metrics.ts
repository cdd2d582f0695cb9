// A counter never goes down, even when the worker that counted dies. The primary keeps each live worker's last
// metrics snapshot (refreshed on a timer and on every scrape); when a worker exits, the counters and histograms of its
// last snapshot are added here, and every later scrape adds this in, as if the dead worker still reported them.
// Its gauges go with it: they described connections that died with the process.
//
// What a dead worker counted after its last snapshot is lost, never subtracted: at most one refresh period.
import type { WorkerMetrics } from './messages.ts';

type Metric = WorkerMetrics[number];
type Value = Metric['values'][number];

interface Retired {
  readonly help: string;
  readonly name: string;
  readonly type: Metric['type'];
  readonly aggregator: Metric['aggregator'];
  readonly values: Map<string, Value>;
}

export class RetiredMetrics {
  readonly #metrics = new Map<string, Retired>();

  /** Adds a dead worker's last snapshot: its counters and histograms (summed metrics only). */
  add(snapshot: WorkerMetrics): void {
    for (const m of snapshot) {
      // Histograms and counters are summed across workers; gauges, and anything aggregated otherwise, are not kept.
      // prom-client's typings say a numeric enum; at run time `type` is the exposition's word.
      const type = m.type as unknown as string;
      if ((type !== 'counter' && type !== 'histogram') || m.aggregator !== 'sum') continue;
      let r = this.#metrics.get(m.name);
      if (r === undefined) {
        r = { help: m.help, name: m.name, type: m.type, aggregator: m.aggregator, values: new Map() };
        this.#metrics.set(m.name, r);
      }
      for (const v of m.values) {
        const key = seriesKey(v);
        const had = r.values.get(key);
        r.values.set(key, { ...v, value: (had?.value ?? 0) + v.value });
      }
    }
  }

  /** The sums, in the shape of one more worker's snapshot (for AggregatorRegistry.aggregate). */
  snapshot(): WorkerMetrics {
    const out: WorkerMetrics = [];
    for (const r of this.#metrics.values()) out.push({ ...r, values: [...r.values.values()] } as Metric);
    return out;
  }

  get empty(): boolean {
    return this.#metrics.size === 0;
  }
}

function seriesKey(v: Value): string {
  const labels = Object.entries(v.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${(v as { metricName?: string }).metricName ?? ''}\0${JSON.stringify(labels)}`;
}
