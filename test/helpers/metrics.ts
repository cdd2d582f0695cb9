// Reading a metric in tests: the sum of the samples whose labels include the given ones (0 when none).
import type { Metrics } from '../../src/metrics/metrics.ts';

export async function metricSum(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  let sum = 0;
  for (const v of m?.values ?? []) {
    if (Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val)) sum += v.value;
  }
  return sum;
}
