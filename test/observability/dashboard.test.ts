// The Grafana dashboard's structure (Grafana itself is not available here: the model is checked against what
// Grafana needs to load it), and the generated files against their sources (scripts/dashboard/gen.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { drifted } from '../../scripts/dashboard/gen.ts';
import { SCHEMA_VERSION } from '../../scripts/dashboard/grafana.ts';
import { dashboardQueries, readDashboard } from './promql.ts';

const d = readDashboard();
const panels = d.panels.filter((p) => p.type !== 'row');

describe('the Grafana dashboard', () => {
  test('is a schemaVersion 39 dashboard with a stable uid', () => {
    assert.equal(d.schemaVersion, SCHEMA_VERSION);
    assert.equal(d.uid, 'wsgate');
    assert.equal(d.title, 'wsgate');
    assert.equal((d as unknown as { id: unknown }).id, null, 'no database id: Grafana assigns one on import');
  });

  test('has a data source variable and a multi-value route variable whose All is the regex .*', () => {
    const byName = new Map(d.templating.list.map((v) => [v.name, v]));
    assert.equal(byName.get('datasource')?.type, 'datasource');
    assert.equal(byName.get('datasource')?.query, 'prometheus');
    const route = byName.get('route');
    assert.equal(route?.type, 'query');
    assert.equal(route?.multi, true);
    assert.equal(route?.includeAll, true);
    assert.equal(route?.allValue, '.*');
    assert.deepEqual(route?.datasource, { type: 'prometheus', uid: '${datasource}' });
  });

  test('gives every panel a unique id, a title, a description, the data source variable and at least one query', () => {
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `duplicate panel ids: ${ids.join(',')}`);
    for (const p of panels) {
      assert.ok(p.title, `panel ${p.id} has a title`);
      assert.ok(typeof p.description === 'string' && p.description.length > 20, `"${p.title}" has a description`);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `"${p.title}" datasource`);
      const targets = p.targets as Array<{ refId: string; expr: string; datasource: unknown }>;
      assert.ok(targets.length > 0, `"${p.title}" has queries`);
      assert.equal(new Set(targets.map((t) => t.refId)).size, targets.length, `"${p.title}" refIds are unique`);
      for (const t of targets) assert.deepEqual(t.datasource, p.datasource);
    }
  });

  test('lays panels out on the 24-column grid without overlaps', () => {
    const cells = new Set<string>();
    for (const p of d.panels) {
      const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
      assert.ok(x >= 0 && w > 0 && x + w <= 24, `"${p.title}" fits in 24 columns`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          assert.ok(!cells.has(`${i},${j}`), `"${p.title}" overlaps another panel at ${i},${j}`);
          cells.add(`${i},${j}`);
        }
      }
    }
  });

  test('filters every panel on wsgate_connections, bytes, handshakes, errors and WebSocket frames by the route variable', () => {
    const routed = /wsgate_(connections_active|connections_total|tunnel_bytes_total|connection_duration|handshake|upstream_connect|http_requests|ws_)/;
    for (const q of dashboardQueries(d)) {
      if (routed.test(q.expr)) assert.match(q.expr, /route=~"\$route"/, `"${q.panel}" ${q.refId}: ${q.expr}`);
    }
  });

  test('covers what the issue asks for', () => {
    const all = dashboardQueries(d).map((q) => q.expr).join('\n');
    for (const needle of [
      'sum by (route, layer) (wsgate_connections_active',
      'sum by (outcome) (rate(wsgate_connections_total',
      'sum by (direction) (rate(wsgate_tunnel_bytes_total',
      'wsgate_connection_duration_seconds_bucket',
      'wsgate_handshake_duration_seconds_bucket',
      'sum by (reason) (rate(wsgate_handshake_rejections_total',
      'wsgate_upstream_connect_errors_total',
      'wsgate_config_reloads_total',
      'wsgate_config_last_reload_success_timestamp_seconds',
      'wsgate_controller_watch_errors_total',
      'wsgate_controller_events_total',
      'wsgate_leader',
      'wsgate_process_cpu_seconds_total',
      'wsgate_process_resident_memory_bytes',
      'wsgate_certificate_expiry_timestamp_seconds',
      // Issue 10: messages per second per route, close codes over time, dead-peer and limit closes.
      'sum by (route, direction) (rate(wsgate_ws_messages_total',
      'sum by (code, initiator) (rate(wsgate_ws_closes_total',
      'sum by (route, side) (increase(wsgate_ws_keepalive_timeouts_total',
      'sum by (route, limit) (increase(wsgate_ws_limit_closes_total',
      'wsgate_ws_frames_total',
      'wsgate_ws_throttled_seconds_total',
      'wsgate_ws_protocol_errors_total',
    ]) {
      assert.ok(all.includes(needle), `a query with ${needle}`);
    }
  });

  test('ends with a row for drains and rebalancing: closes by drain outcome, drain remaining, rebalance closes', () => {
    const rows = d.panels.filter((p) => p.type === 'row');
    const last = rows.at(-1)!;
    assert.equal(last.title, 'Drains and rebalancing');
    const mine = d.panels.filter((p) => p.type !== 'row' && (p.gridPos as { y: number }).y > (last.gridPos as { y: number }).y);
    const exprs = mine.flatMap((p) => (p.targets as Array<{ expr: string }>).map((t) => t.expr));
    assert.deepEqual(exprs, [
      'sum by (outcome) (rate(wsgate_connections_total{route=~"$route", outcome=~"shutdown|endpoint_draining|route_removed|rebalance"}[$__rate_interval]))',
      'sum by (instance) (wsgate_drain_remaining)',
      'sum by (route) (rate(wsgate_rebalance_closes_total{route=~"$route"}[$__rate_interval]))',
    ]);
  });

  test('the generated files match their sources (run node scripts/dashboard/gen.ts)', () => {
    assert.deepEqual(drifted(), []);
  });
});
