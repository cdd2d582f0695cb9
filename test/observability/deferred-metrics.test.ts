// Deferred series (src/metrics/deferred.ts) against a real prom-client registry: what the data path adds is in the
// next read of the metric, once; a series touched with 0 exists at 0; a gauge goes down; a gone route's series stay
// gone after its counts were read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { metricSum } from '../helpers/metrics.ts';

describe('deferred metric series', () => {
  test('a read sees every count added before it, and each count once', async () => {
    const m = createMetrics('test', { defaultMetrics: false });
    const up = m.deferred.tunnelBytes.series({ route: 'default/a', direction: 'upstream' });
    up.inc(100);
    up.inc(23);
    assert.equal(await metricSum(m, 'wsgate_tunnel_bytes_total', { route: 'default/a', direction: 'upstream' }), 123);
    assert.equal(await metricSum(m, 'wsgate_tunnel_bytes_total', { route: 'default/a' }), 123, 'read again: not added twice');
    up.inc(7);
    // The scrape's own path (the registry's text format) applies them as well.
    assert.match(await m.registry.metrics(), /wsgate_tunnel_bytes_total\{route="default\/a",direction="upstream"\} 130/);
  });

  test('the same labels give the same series; counts made directly on the metric add up with deferred ones', async () => {
    const m = createMetrics('test', { defaultMetrics: false });
    const labels = { route: 'default/a', layer: 'l7', outcome: 'completed' };
    m.deferred.connectionsTotal.series(labels).inc();
    m.deferred.connectionsTotal.series({ ...labels }).inc();
    m.connectionsTotal.inc(labels);
    assert.equal(await metricSum(m, 'wsgate_connections_total', labels), 3);
  });

  test('inc(0) makes the series exist at 0; an untouched series does not exist', async () => {
    const m = createMetrics('test', { defaultMetrics: false });
    m.deferred.wsCloses.series({ route: 'default/a', initiator: 'client', code: '1000' }).inc(0);
    m.deferred.wsCloses.series({ route: 'default/a', initiator: 'backend', code: '1000' });
    const values = (await m.registry.getSingleMetric('wsgate_ws_closes_total')!.get()).values;
    assert.deepEqual(
      values.map((v) => [v.labels['initiator'], v.value]),
      [['client', 0]],
    );
  });

  test('a gauge goes up and down between reads', async () => {
    const m = createMetrics('test', { defaultMetrics: false });
    const active = m.deferred.connectionsActive.series({ route: 'default/a', layer: 'l7' });
    active.inc();
    active.inc();
    active.inc();
    assert.equal(await metricSum(m, 'wsgate_connections_active', { route: 'default/a' }), 3);
    active.dec();
    active.dec();
    assert.equal(await metricSum(m, 'wsgate_connections_active', { route: 'default/a' }), 1);
  });
});
