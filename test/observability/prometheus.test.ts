// The dashboard and the alerts against the real thing, scraped every second by a real Prometheus (Debian's package)
// that also loads the alert rules:
//  - `wsgate serve` in process under a short bounded load (a route rebalanced after a scale-out and then drained of
//    an endpoint, WebSockets held and cycled, refused handshakes, a dead backend, plain HTTP, a rejected
//    configuration change);
//  - `wsgate controller` in process against a real kube-apiserver (test/helpers/kube.ts), holding the leader Lease,
//    while the load changes the EndpointSlice of a Service its WebSocketRoute uses: events counted, syncs timed.
// Every dashboard query is run through Prometheus' HTTP API as Grafana would send it and must return data; the
// alerts the load provokes must be pending or firing, and the others quiet.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as kube from '../controller/harness.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  closedPort,
  converge,
  encodeFrame,
  handshake,
  httpHead,
  rawConnect,
  readUntil,
  roundTrip,
  startWsBackend,
  type Client,
  type WsBackend,
} from '../helpers/l7-peers.ts';
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
/** The `frames` route (issue 10): keepalive 1 s + 1 s, a message size limit and a message rate. */
const FRAMES_MAX_BYTES = 1024;
const FRAMES_RATE = 20;
/** The controller's objects, in `default`; named apart from serve's routes so that no route label is shared. */
const CTL = { namespace: 'default', service: 'ctl-echo', route: 'ctl-feed', host: 'ctl-feed.test', lease: 'wsgate-observability' };

let ca: TestCA;
let echo: WsBackend;
let dir: ConfigDir;
let h: ServeHarness | undefined;
let cp: ControlPlane | undefined;
let ctl: kube.TestController | undefined;
let prom: Prometheus;
const held: Client[] = [];
const rawSockets: Socket[] = [];
const quiet: Client[] = [];

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

/**
 * The controller's share of the load: the ready endpoint of its route's Service moves to another address, a
 * relevant EndpointSlice change (counted as an event) that the controller syncs. (Addresses outside 127.0.0.0/8,
 * which EndpointSlice validation rejects; nothing connects to them.)
 */
async function moveControllerEndpoint(a: kube.Apis, round: number): Promise<void> {
  const name = `${CTL.service}-1`;
  const slice = await a.discovery.readNamespacedEndpointSlice({ namespace: CTL.namespace, name });
  slice.endpoints = [{ addresses: [`10.0.0.${(round % 200) + 1}`], conditions: { ready: true } }];
  await a.discovery.replaceNamespacedEndpointSlice({ namespace: CTL.namespace, name, body: slice });
}

/** A raw client on `frames.test`: the handshake, then whatever the test writes (or nothing at all). */
async function rawFramesClient(s: ServeHarness): Promise<Socket> {
  const socket = await rawConnect(s.httpPort);
  socket.write(handshake({ host: 'frames.test' }));
  const { value: head } = await readUntil(socket, httpHead);
  assert.match(head, /^HTTP\/1\.1 101/);
  return socket;
}

/**
 * The WebSocket share of the load, on `frames` (issue 10): a quiet client wsgate pings (and ws answers), and twice
 * over (the close and protocol-error series are born at their first event, which rate() cannot see: the second
 * round, after a scrape, is what the panels show): a client that never answers (a dead peer, 1001), a message over
 * the size limit (1009), an unmasked frame (1002), a flood over the message rate (throttled, nothing lost, 1000).
 */
async function framesLoad(s: ServeHarness): Promise<void> {
  // Not in `held`: that one gets a message every round, this one must stay quiet to be pinged.
  quiet.push(await openWithHost(`${s.wsUrl}/`, 'frames.test'));
  const route = { route: 'default/frames' };
  for (let round = 1; round <= 2; round++) {
    const silent = await rawFramesClient(s);
    rawSockets.push(silent);
    const big = await openWithHost(`${s.wsUrl}/`, 'frames.test');
    big.ws.send(Buffer.alloc(2 * FRAMES_MAX_BYTES));
    assert.equal((await big.closed).code, 1009);
    const rude = await rawFramesClient(s);
    rude.write(encodeFrame(0x1, 'unmasked', false));
    await once(rude, 'close');
    const flood = await openWithHost(`${s.wsUrl}/`, 'frames.test');
    for (let i = 0; i < 2 * FRAMES_RATE; i++) flood.ws.send(`flood ${i}`);
    for (let i = 0; i < 2 * FRAMES_RATE; i++) assert.equal((await flood.messages.shift()).data.toString(), `flood ${i}`);
    flood.ws.close(1000);
    await flood.closed;
    await converge(
      async () => (await s.metric('wsgate_ws_keepalive_timeouts_total', { ...route, side: 'client' })) === round,
      `round ${round}: the silent client found dead`,
      1,
      10_000,
    );
    // Prometheus has seen this round's series before the next round adds to them.
    await converge(
      async () => (await query(prom, 'wsgate_ws_closes_total{route="default/frames", code="1001"}')).some((x) => Number(x.value[1]) >= round),
      `round ${round} scraped`,
      1,
      10_000,
    );
  }
  await converge(
    async () => (await s.metric('wsgate_ws_frames_total', { ...route, direction: 'upstream', kind: 'pong' })) > 0,
    "wsgate's pings answered",
    1,
    10_000,
  );
}

/** The bounded load: what every panel needs to show something, and what the provoked alerts need. */
async function load(s: ServeHarness, a: kube.Apis): Promise<void> {
  const frames = framesLoad(s);
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
    await moveControllerEndpoint(a, round);
    round++;
    await new Promise((r) => setTimeout(r, 200));
  }
  await frames;
}

/**
 * Issue 11's closes, for the drain panel, on a route `spread` of its own: six clients on one endpoint (each
 * reconnecting at once when closed, as real clients do), then a second endpoint is added and rebalancing moves three
 * over at one close per second (1012, outcome `rebalance`); then the first endpoint leaves the Service and its three
 * tunnels are drained over endpointDrainSeconds (1001, outcome `endpoint_draining`). One close per second, so that
 * the scrapes (every second) see the counters rise. Runs before load(), which leaves a broken file in the directory.
 */
const spreadBackends: WsBackend[] = [];
async function drainLoad(s: ServeHarness): Promise<void> {
  const [a, b] = [await startWsBackend(), await startWsBackend()];
  spreadBackends.push(a, b);
  const objects = (ports: number[]) => [
    service('spread'),
    ...ports.map((port, i) => endpointSlice('spread', port, { name: `spread-${i}` })),
    webSocketRoute('spread', {
      hostnames: ['spread.test'],
      rules: [{ path: '/', backends: [{ service: 'spread' }] }],
      policy: { rebalance: { enabled: true, tolerancePercent: 10, maxClosesPerSecond: 1 }, endpointDrainSeconds: 3 },
    }),
  ];
  dir.write('20-spread.yaml', objects([a.port]));
  await s.awaitTable((hosts) => hosts.includes('spread.test'), 'the spread route live');
  const codes: number[] = [];
  const live = new Set<Client>();
  let reconnecting = true;
  const open = async (): Promise<void> => {
    const c = await openWithHost(`${s.wsUrl}/`, 'spread.test');
    live.add(c);
    void c.closed.then(({ code }) => {
      live.delete(c);
      if (!reconnecting) return;
      codes.push(code);
      void open();
    });
  };
  for (let i = 0; i < 6; i++) await open();
  const on = (x: WsBackend): number => x.server.clients.size;
  dir.write('20-spread.yaml', objects([a.port, b.port]));
  await converge(() => on(a) === 3 && on(b) === 3 && live.size === 6, 'rebalanced to 3 and 3', 3, 20_000);
  dir.write('20-spread.yaml', objects([b.port]));
  await converge(() => on(a) === 0 && on(b) === 6 && live.size === 6, 'the first endpoint drained', 3, 20_000);
  assert.deepEqual(codes, [1012, 1012, 1012, 1001, 1001, 1001], 'three rebalance closes, then three drain closes');
  reconnecting = false;
  for (const c of live) c.ws.close(1000);
}

/** `wsgate serve` with its configuration directory live. */
async function startServeUnderTest(): Promise<ServeHarness> {
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
    webSocketRoute('frames', {
      hostnames: ['frames.test'],
      rules: [{ path: '/', backends: [{ service: 'echo' }] }],
      policy: { keepalive: { intervalSeconds: 1, timeoutSeconds: 1 }, maxMessageBytes: FRAMES_MAX_BYTES, maxMessagesPerSecond: FRAMES_RATE },
    }),
    webSocketRoute('dead', { hostnames: ['dead.test'], rules: [{ path: '/', backends: [{ service: 'dead' }] }] }),
  ]);
  const s = await startServe(dir.path, { defaultMetrics: true });
  await s.awaitTable((hosts) => hosts.includes('dead.test'), 'the configuration live');
  return s;
}

/** A real control plane holding a Service, its EndpointSlice and a WebSocketRoute. */
async function startControlPlaneUnderTest(): Promise<ControlPlane> {
  const c = await startControlPlane();
  const a = kube.apis(c.kubeConfig());
  await a.core.createNamespacedService({ namespace: CTL.namespace, body: kube.service(CTL.namespace, CTL.service) });
  await a.discovery.createNamespacedEndpointSlice({
    namespace: CTL.namespace,
    body: kube.endpointSlice(CTL.namespace, CTL.service, ['10.0.0.1']),
  });
  await a.custom.createNamespacedCustomObject({
    group: 'wsgate.io',
    version: 'v1alpha1',
    namespace: CTL.namespace,
    plural: 'websocketroutes',
    body: kube.webSocketRoute(CTL.namespace, CTL.route, { host: CTL.host, service: CTL.service }),
  });
  return c;
}

before(async () => {
  // The control plane takes seconds to start: alongside serve's setup.
  [h, cp] = await Promise.all([startServeUnderTest(), startControlPlaneUnderTest()]);
  ctl = await kube.startTestController(cp.kubeConfig(), { leaseName: CTL.lease });
  const c = ctl;
  await kube.eventually('the controller leading, with its route live', () =>
    c.controller.isLeader && kube.liveEndpoints(c, CTL.host)?.join() === '10.0.0.1' ? true : undefined,
  );
  prom = await startPrometheus({
    targets: [`127.0.0.1:${h.adminPort}`, `127.0.0.1:${ctl.adminPort}`],
    ruleFiles: [join(ROOT, RULES_PATH)],
  });
  // Both scraped a few times before the load, so that counters are seen at their starting values.
  await converge(
    async () => {
      const up = await query(prom, 'up{job="wsgate"}');
      return up.length === 2 && up.every((s) => s.value[1] === '1');
    },
    'serve and controller scraped',
    3,
    15_000,
  );
  await drainLoad(h);
  await load(h, kube.apis(cp.kubeConfig()));
  // Both targets scraped after the load ended: the last values are in Prometheus.
  const loadEnd = Date.now() / 1000;
  await converge(
    async () => {
      const last = await query(prom, 'timestamp(up{job="wsgate"})');
      return last.length === 2 && last.every((s) => Number(s.value[1]) > loadEnd);
    },
    'both targets scraped after the load',
    2,
    15_000,
  );
});

after(async () => {
  for (const c of held) c.ws.terminate();
  for (const r of rawSockets) r.destroy();
  for (const c of quiet) c.ws.terminate();
  await h?.close();
  await ctl?.controller.stop();
  await prom?.close();
  await cp?.stop();
  await echo?.close();
  for (const b of spreadBackends) await b.close();
  dir?.dispose();
  ca?.dispose();
});

const dashboard = readDashboard();
const rules = readRules().groups.flatMap((g) => g.rules);

describe('the dashboard and alerts against wsgate scraped by a real Prometheus', { timeout: 90_000 }, () => {
  test('every metric a dashboard query or an alert uses is one wsgate exposes on /metrics', async () => {
    const exposed = new Set<string>();
    for (const port of [h!.adminPort, ctl!.adminPort]) {
      for (const n of exposedNames(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())) exposed.add(n);
    }
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
      if (result.length === 0) failures.push(`"${q.panel}" ${q.refId}: no data: ${expr}`);
      else if (!result.some((s) => Number.isFinite(Number(s.value[1])))) {
        failures.push(`"${q.panel}" ${q.refId}: no finite value: ${expr} → ${JSON.stringify(result)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test("the controller's panels show the controller leading, syncing, counting events and watch errors", async () => {
    const panel = (title: string, refId = 'A'): string => {
      const q = dashboardQueries(dashboard).find((d) => d.panel === title && d.refId === refId);
      assert.ok(q, `panel "${title}" ${refId}`);
      return substitute(q.expr, { route: '.*', window: WINDOW });
    };
    const byLabel = async (expr: string, label: string): Promise<Map<string, number>> =>
      new Map((await query(prom, expr)).map((s) => [s.metric[label] ?? '', Number(s.value[1])]));

    const leader = await byLabel(panel('Leader'), 'instance');
    assert.equal(leader.get(`127.0.0.1:${ctl!.adminPort}`), 1, 'the controller holds the Lease');
    assert.equal(leader.get(`127.0.0.1:${h!.adminPort}`), 0, 'serve never leads');

    const [syncs] = await query(prom, panel('Controller syncs', 'A'));
    assert.ok(Number(syncs?.value[1]) > 0, `syncs per second: ${JSON.stringify(syncs)}`);
    const [p99] = await query(prom, panel('Controller syncs', 'B'));
    assert.ok(Number(p99?.value[1]) > 0, `p99 sync time: ${JSON.stringify(p99)}`);

    const events = await query(prom, panel('Controller events'));
    const sliceEvents = events.find((s) => s.metric.kind === 'EndpointSlice' && s.metric.relevant === 'true');
    assert.ok(Number(sliceEvents?.value[1]) > 0, `EndpointSlice events: ${JSON.stringify(events)}`);

    // Each watched kind has its series from the start; this control plane never failed a watch.
    const watchErrors = await byLabel(panel('Controller watch errors'), 'kind');
    assert.deepEqual(
      [...watchErrors].sort(([a], [b]) => a.localeCompare(b)),
      ['EndpointSlice', 'Ingress', 'IngressClass', 'Secret', 'Service', 'TCPTunnel', 'WebSocketRoute'].map((k) => [k, 0]),
    );
  });

  test('the WebSocket panels show the pings, the dead peer, the limit closes, the close codes, throttling and the protocol error', async () => {
    const panel = (title: string, refId = 'A'): string => {
      const q = dashboardQueries(dashboard).find((d) => d.panel === title && d.refId === refId);
      assert.ok(q, `panel "${title}" ${refId}`);
      return substitute(q.expr, { route: 'default/frames', window: WINDOW });
    };
    const values = async (expr: string, ...labels: string[]): Promise<Map<string, number>> =>
      new Map((await query(prom, expr)).map((s) => [labels.map((l) => s.metric[l] ?? '').join(' '), Number(s.value[1])]));
    const positive = (m: Map<string, number>, key: string, what: string): void => assert.ok((m.get(key) ?? 0) > 0, `${what}: ${key} in ${JSON.stringify([...m])}`);

    positive(await values(panel('Messages per second by route'), 'route', 'direction'), 'default/frames upstream', 'messages');
    const closes = await values(panel('Close codes over time'), 'code', 'initiator');
    for (const key of ['1009 wsgate', '1002 wsgate', '1001 wsgate', '1000 client']) positive(closes, key, 'closes');
    positive(await values(panel('Dead peers and limit closes', 'A'), 'route', 'side'), 'default/frames client', 'dead peers');
    positive(await values(panel('Dead peers and limit closes', 'B'), 'route', 'limit'), 'default/frames message_size', 'limit closes');
    const frames = await values(panel('Frames per second by kind'), 'kind', 'direction');
    for (const key of ['ping downstream', 'pong upstream', 'data upstream', 'close downstream']) positive(frames, key, 'frames');
    positive(await values(panel('Throttling and protocol errors', 'A'), 'route'), 'default/frames', 'throttled');
    positive(await values(panel('Throttling and protocol errors', 'B'), 'reason'), 'unmasked_client_frame', 'protocol errors');
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
    // All on serve: the controller was given nothing to alert on.
    const expected = [
      'WsgateCertificateExpiringSoon secret=default/chat-tls',
      'WsgateConfigReloadFailing on=serve',
      'WsgateConnectionsNearLimit route=default/chat on=serve',
      'WsgateUpstreamConnectErrors route=default/dead',
    ];
    const role = new Map([[`127.0.0.1:${h!.adminPort}`, 'serve'], [`127.0.0.1:${ctl!.adminPort}`, 'controller']]);
    const describeAlert = (labels: Record<string, string>): string =>
      [
        labels.alertname,
        ...['secret', 'route'].filter((k) => labels[k]).map((k) => `${k}=${labels[k]}`),
        ...(labels.instance ? [`on=${role.get(labels.instance) ?? labels.instance}`] : []),
      ].join(' ');
    let active: string[] = [];
    await converge(
      async () => {
        const { alerts } = await prom.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('alerts');
        active = alerts
          .filter((a) => a.state === 'pending' || a.state === 'firing')
          .map((a) => describeAlert(a.labels))
          .sort();
        return JSON.stringify(active) === JSON.stringify(expected);
      },
      'the provoked alerts active',
      3,
      10_000,
    ).catch(() => assert.deepEqual(active, expected));
  });

  test('the drain panel shows the rebalance and endpoint-drain closes the load made, and no shutdown drain going on', async () => {
    const panel = (title: string): string => {
      const q = dashboardQueries(dashboard).find((d) => d.panel === title);
      assert.ok(q, `panel "${title}"`);
      // A window that surely reaches back to drainLoad, which ran before the rest of the load.
      return substitute(q.expr, { route: '.*', window: '5m' });
    };
    const byLabel = async (expr: string, label: string): Promise<Map<string, number>> =>
      new Map((await query(prom, expr)).map((s) => [s.metric[label] ?? '', Number(s.value[1])]));

    const closes = await byLabel(panel('Drain and rebalance closes'), 'outcome');
    assert.ok((closes.get('rebalance') ?? 0) > 0, `rebalance closes per second: ${JSON.stringify([...closes])}`);
    assert.ok((closes.get('endpoint_draining') ?? 0) > 0, `endpoint_draining closes per second: ${JSON.stringify([...closes])}`);
    const rebalance = await byLabel(panel('Rebalance closes'), 'route');
    assert.ok((rebalance.get('default/spread') ?? 0) > 0, `rebalance closes by route: ${JSON.stringify([...rebalance])}`);
    // Not draining: every instance reports 0 tunnels left to drain.
    const remaining = await byLabel(panel('Drain remaining'), 'instance');
    assert.deepEqual([...remaining.values()], [0, 0]);
  });

  test('WsgateNoReadyInstance goes pending once every wsgate stops', async () => {
    await h!.close();
    h = undefined;
    await ctl!.controller.stop();
    ctl = undefined;
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
