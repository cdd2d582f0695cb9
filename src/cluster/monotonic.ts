// Counters aggregated across workers must never go down. They are sums of floating-point numbers, and when a
// worker dies its values move from its own snapshot into the retired sum (retired-metrics.ts): the same total added
// in another order can come out one unit in the last place lower, and Prometheus reads any decrease as a counter
// reset (rate() spikes). So the primary remembers the highest value it exported for each counter and histogram
// sample, and never exports less.
export class MonotonicCounters {
  readonly #highest = new Map<string, number>();

  /** The exposition text with every counter and histogram sample at least as high as it was last time. */
  apply(text: string): string {
    const monotonic = new Set<string>();
    const out: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ');
        if (name !== undefined && (type === 'counter' || type === 'histogram')) monotonic.add(name);
        out.push(line);
        continue;
      }
      if (line === '' || line.startsWith('#')) {
        out.push(line);
        continue;
      }
      const space = line.lastIndexOf(' ');
      const series = line.slice(0, space);
      const brace = series.indexOf('{');
      const name = brace < 0 ? series : series.slice(0, brace);
      const family = name.replace(/_(bucket|sum|count)$/, '');
      if (!monotonic.has(name) && !monotonic.has(family)) {
        out.push(line);
        continue;
      }
      const value = Number(line.slice(space + 1));
      const before = this.#highest.get(series);
      if (before !== undefined && value < before) {
        out.push(`${series} ${before}`);
        continue;
      }
      this.#highest.set(series, value);
      out.push(line);
    }
    return out.join('\n');
  }

  /** Forgets the samples of series no longer exported (a deleted route's), so the map does not grow forever. */
  retain(text: string): void {
    const present = new Set<string>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      present.add(line.slice(0, line.lastIndexOf(' ')));
    }
    for (const k of this.#highest.keys()) if (!present.has(k)) this.#highest.delete(k);
  }
}
