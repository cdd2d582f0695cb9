// The primary's aggregated counters never go down, even by one unit in the last place (a worker's death moves its
// values into another sum, and floating-point addition is not associative).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MonotonicCounters } from '../../src/cluster/monotonic.ts';

const exposition = (gcSum: number, requests: number, active: number): string =>
  [
    '# HELP wsgate_nodejs_gc_duration_seconds GC',
    '# TYPE wsgate_nodejs_gc_duration_seconds histogram',
    `wsgate_nodejs_gc_duration_seconds_sum{kind="major"} ${gcSum}`,
    '# TYPE wsgate_http_requests_total counter',
    `wsgate_http_requests_total{route="a",code="200"} ${requests}`,
    '# TYPE wsgate_connections_active gauge',
    `wsgate_connections_active{route="a",layer="l7"} ${active}`,
    '',
  ].join('\n');

test('never exports a counter or histogram sample below what it exported before, and leaves gauges alone', () => {
  const m = new MonotonicCounters();
  m.apply(exposition(0.0469047819999978, 40, 5));
  const next = m.apply(exposition(0.04690478199999779, 39, 2));
  assert.match(next, /_sum\{kind="major"\} 0\.0469047819999978$/m);
  assert.match(next, /wsgate_http_requests_total\{route="a",code="200"\} 40$/m);
  assert.match(next, /wsgate_connections_active\{route="a",layer="l7"\} 2$/m);
  assert.match(m.apply(exposition(0.05, 41, 2)), /wsgate_http_requests_total\{route="a",code="200"\} 41$/m);
});

test('forgets series that are no longer exported', () => {
  const m = new MonotonicCounters();
  m.apply(exposition(1, 10, 0));
  m.retain('# TYPE wsgate_http_requests_total counter\n');
  assert.match(m.apply(exposition(1, 3, 0)), /wsgate_http_requests_total\{route="a",code="200"\} 3$/m);
});
