// The dashboard and the alerts against the real thing: `wsgate serve` in process under a short bounded load
// (WebSockets held and cycled, refused handshakes, a dead backend, plain HTTP, a rejected configuration change),
// scraped every second by a real Prometheus (Debian's package) that also loads the alert rules. Every dashboard
// query is run through Prometheus' HTTP API as Grafana would send it; the alerts the load provokes must be pending
// or firing, and the others quiet.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { closedPort, converge, roundTrip, startWsBackend, type Client, type WsBackend } from '../helpers/l7-peers.ts';
import {
  backendService,
  createConfigDir,
  endpointSlice,
  handshakeStatus,
  openWithHost,
  service,
  startServe,
  tlsSecret,
  webSocketRoute,
  type ConfigDir,
  type ServeHarness,
} from '../helpers/serve-harness.ts';
import { query, startPrometheus, type Prometheus } from './prometheus.ts';
import {
  dashboardQueries,
  exposedNames,
  metricNames,
  readDashboard,
  readRules,
  ROOT,
  routeRegex,
  RULES_PATH,
  substitute,
  variableMetrics,
} from './promql.ts';

/** How long the load runs; every query window below covers it. */
const LOAD_MS = 8_000;
const WINDOW = '1m';
/** Held open on `chat`, whose limit is CHAT_LIMIT: 100% of the limit. */
const CHAT_LIMIT = 4;

/** Metrics only `wsgate controller` increments: in `serve`, queries on them answer nothing, without error. */
const CONTROLLER_ONLY = new Set(['wsgate_controller_watch_errors_total', 'wsgate_controller_events_total']);

let ca: TestCA;
let echo: WsBackend;
let dir: ConfigDir;
let h: ServeHarness | undefined;
let prom: Prometheus;
const held: Client[] = [];

function plainGet(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { Host: host } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.end();
  });
}

/** The bounded load: what every panel needs to show something, and what the provoked alerts need. */
async function load(s: ServeHarness): Promise<void> {
  for (let i = 0; i < CHAT_LIMIT; i++) held.push(await openWithHost(`${s.wsUrl}/ws`, 'chat.test'));
  assert.equal(await handshakeStatus(`${s.wsUrl}/ws`, 'chat.test'), 429, 'the connection over the limit is refused');
  const end = Date.now() + LOAD_MS;
  let round = 0;
  while (Date.now() < end) {
    const c = await openWithHost(`${s.wsUrl}/`, 'feed.test');
    for (let i = 0; i < 5; i++) await roundTrip(c, `message ${round}.${i}`);
    c.ws.close(1000);
    await c.closed;
    for (const k of held) await roundTrip(k, `held ${round}`);
    assert.equal(await handshakeStatus(`${s.wsUrl}/`, 'nowhere.test'), 404);
    for (let i = 0; i < 10; i++) assert.equal(await handshakeStatus(`${s.wsUrl}/`, 'dead.test'), 502);
    await plainGet(s.httpPort, 'feed.test');
    if (round === 3) dir.writeText('90-broken.yaml', 'kind: WebSocketRoute\napiVersion: wsgate.io/v1alpha1\nmetadata: {}\n');
    round++;
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  ca = createTestCA();
  echo = await startWsBackend();
  const dead = await closedPort();
  dir = createConfigDir();
  dir.write('10-config.yaml', [
    ...backendService('echo', echo.port),
    service('dead'),
    endpointSlice('dead', dead),
    tlsSecret('chat-tls', ca.issue(['chat.test'], { days: 10 })),
    webSocketRoute('chat', {
      hostnames: ['chat.test'],
      tlsSecret: 'chat-tls',
      rules: [{ path: '/ws', backends: [{ service: 'echo' }] }],
      policy: { maxConnections: CHAT_LIMIT },
    }),
    webSocketRoute('feed', { hostnames: ['feed.test'], rules: [{ path: '/', backends: [{ service: 'echo' }] }] }),
    webSocketRoute('dead', { hostnames: ['dead.test'], rules: [{ path: '/', backends: [{ service: 'dead' }] }] }),
  ]);
  h = await startServe(dir.path, { defaultMetrics: true });
  await h.awaitTable((hosts) => hosts.includes('dead.test'), 'the configuration live');
  prom = await startPrometheus({ targets: [`127.0.0.1:${h.adminPort}`], ruleFiles: [join(ROOT, RULES_PATH)] });
  // Scraped a few times before the load, so that counters are seen at their starting values.
  await converge(async () => (await query(prom, 'up{job="wsgate"}'))[0]?.value[1] === '1', 'wsgate scraped', 3, 15_000);
  await load(h);
  // Two more scrapes after the load: the last values are in.
  await new Promise((r) => setTimeout(r, 2_500));
});

after(async () => {
  for (const c of held) c.ws.terminate();
  await h?.close();
  await prom?.close();
  await echo?.close();
  dir?.dispose();
  ca?.dispose();
});

const dashboard = readDashboard();
const rules = readRules().groups.flatMap((g) => g.rules);

describe('the dashboard and alerts against wsgate scraped by a real Prometheus', { timeout: 90_000 }, () => {
  test('every metric a dashboard query or an alert uses is one wsgate exposes on /metrics', async () => {
    const exposed = exposedNames(await (await fetch(`${h!.adminUrl}/metrics`)).text());
    const used = new Map<string, string>();
    for (const q of dashboardQueries(dashboard)) for (const n of metricNames(q.expr)) used.set(n, `panel "${q.panel}"`);
    for (const n of variableMetrics(dashboard)) used.set(n, 'a template variable');
    for (const r of rules) for (const n of metricNames(r.expr)) used.set(n, `alert ${r.alert}`);
    assert.ok(used.size > 20, `found ${used.size} metric names: is the extraction working?`);
    const unknown = [...used].filter(([n]) => !exposed.has(n)).map(([n, where]) => `${n} (${where})`);
    assert.deepEqual(unknown, [], 'metrics wsgate does not export');
  });

  test('every dashboard query returns data for all routes, with a finite value', async () => {
    const failures: string[] = [];
    for (const q of dashboardQueries(dashboard)) {
      const expr = substitute(q.expr, { route: '.*', window: WINDOW });
      const result = await query(prom, expr);
      const controllerOnly = metricNames(q.expr).every((n) => CONTROLLER_ONLY.has(n));
      if (controllerOnly) continue;
      const isControllerSync = metricNames(q.expr).every((n) => n.startsWith('wsgate_controller_sync_seconds'));
      if (result.length === 0) failures.push(`"${q.panel}" ${q.refId}: no data: ${expr}`);
      else if (!isControllerSync && !result.some((s) => Number.isFinite(Number(s.value[1])))) {
        failures.push(`"${q.panel}" ${q.refId}: no finite value: ${expr} → ${JSON.stringify(result)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('the route variable lists the routes, and every query runs with one route or several chosen', async () => {
    for (const metric of variableMetrics(dashboard)) {
      const routes = await prom.api<string[]>('label/route/values', { 'match[]': metric });
      assert.ok(routes.includes('default/chat') && routes.includes('default/feed'), `route values: ${routes.join(', ')}`);
    }
    const one = routeRegex(['default/chat']);
    const two = routeRegex(['default/chat', 'default/feed']);
    for (const q of dashboardQueries(dashboard)) {
      await query(prom, substitute(q.expr, { route: one, window: WINDOW }));
      await query(prom, substitute(q.expr, { route: two, window: WINDOW }));
    }
    const active = dashboardQueries(dashboard).find((q) => q.panel === 'Open connections')!;
    const [chat] = await query(prom, substitute(active.expr, { route: one, window: WINDOW }));
    assert.equal(chat?.value[1], String(CHAT_LIMIT), 'open connections on default/chat');
  });

  test('the alert rules load into Prometheus and evaluate without error', async () => {
    const data = await prom.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>('rules');
    const loaded = data.groups.flatMap((g) => g.rules);
    assert.deepEqual(loaded.map((r) => r.name).sort(), rules.map((r) => r.alert).sort());
    await converge(
      async () => {
        const d = await prom.api<{ groups: Array<{ rules: Array<{ health: string }> }> }>('rules');
        return d.groups.flatMap((g) => g.rules).every((r) => r.health === 'ok');
      },
      'every rule evaluated with health ok',
      3,
      10_000,
    );
  });

  test('the alerts the load provoked are pending or firing, and only those', async () => {
    const expected = [
      'WsgateCertificateExpiringSoon secret=default/chat-tls',
      'WsgateConfigReloadFailing',
      'WsgateConnectionsNearLimit route=default/chat',
      'WsgateUpstreamConnectErrors route=default/dead',
    ];
    let active: string[] = [];
    await converge(
      async () => {
        const { alerts } = await prom.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('alerts');
        active = alerts
          .filter((a) => a.state === 'pending' || a.state === 'firing')
          .map((a) => [a.labels.alertname, ...(['secret', 'route'].filter((k) => a.labels[k]).map((k) => `${k}=${a.labels[k]}`))].join(' '))
          .sort();
        return JSON.stringify(active) === JSON.stringify(expected);
      },
      'the provoked alerts active',
      3,
      10_000,
    ).catch(() => assert.deepEqual(active, expected));
  });

  test('WsgateNoReadyInstance goes pending once the only wsgate stops', async () => {
    await h!.close();
    h = undefined;
    await converge(
      async () => {
        const { alerts } = await prom.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('alerts');
        return alerts.some((a) => a.labels.alertname === 'WsgateNoReadyInstance');
      },
      'WsgateNoReadyInstance pending',
      2,
      15_000,
    );
  });
});
