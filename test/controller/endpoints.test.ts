// Endpoints changing under a live route, through a real API server: scaled from one to three, new connections
// spread over them by LeastConnections (held open, so the counts are exact); an endpoint whose EndpointSlice
// condition says ready: false gets no new connections, while the ones it already has keep working.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  endpointSlice,
  eventually,
  exchange,
  holdConnection,
  liveEndpoints,
  service,
  startTestController,
  webSocketRoute,
  type Apis,
  type HeldConnection,
  type TestController,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'endpoints';
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };
const NAMES = ['a', 'b', 'c'] as const;

describe('endpoints scaled and marked not ready', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  let ips: string[];
  const backends: { stop(): Promise<void> }[] = [];

  before(async () => {
    cp = await startControlPlane();
    net = createPodNetwork(5);
    ips = NAMES.map((_, i) => net.podIP(i));
    for (const [i, name] of NAMES.entries()) backends.push(await net.startEchoBackend(net.podIP(i), 8080, name));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'spread') });
    await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, 'spread', [net.podIP(0)]) });
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'spread', {
        host: 'spread.test',
        service: 'spread',
        // Tunnels stay on an endpoint that leaves (0 = leave them): what this file checks is where new connections go.
        // The endpoint drain has its own tests (test/proxy/drains.test.ts, test/controller/drain*.test.ts).
        policy: { endpointDrainSeconds: 0 },
      }) });
    t = await startTestController(cp.kubeConfig(), { namespace: NS, leaseName: 'endpoints-test' });
    await eventually('the route to serve from the one endpoint', async () =>
      (await exchange(t.httpPort, 'spread.test', '/', 'hi')) === 'a:hi' ? true : undefined,
    );
  });

  after(async () => {
    await t?.controller.stop();
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
  });

  const setEndpoints = (addresses: string[], notReady: string[] = []) =>
    api.discovery.replaceNamespacedEndpointSlice({ namespace: NS, name: 'spread-1', body: endpointSlice(NS, 'spread', addresses, notReady) });

  /** Opens `n` connections one after the other, held open; returns them and how many each backend got. */
  async function openHeld(n: number, tag: string): Promise<{ held: HeldConnection[]; counts: Record<string, number> }> {
    const held: HeldConnection[] = [];
    const counts: Record<string, number> = Object.fromEntries(NAMES.map((x) => [x, 0]));
    for (let i = 0; i < n; i++) {
      const h = await holdConnection(`ws://127.0.0.1:${t.httpPort}/`, 'spread.test');
      held.push(h);
      const answer = await h.echo(`${tag}${i}`);
      const backend = answer.slice(0, answer.indexOf(':'));
      assert.ok(backend in counts, `answer ${answer}`);
      counts[backend] = (counts[backend] ?? 0) + 1;
    }
    return { held, counts };
  }

  async function closeAll(held: readonly HeldConnection[]): Promise<void> {
    assert.deepEqual(held.flatMap((h) => (h.closed === undefined ? [] : [h.closed])), [], 'no held connection was closed by wsgate');
    for (const h of held) h.close();
    // The balancer counts a connection until the proxy sees it close: wait until none is left.
    await eventually('every tunnel to be closed', () => (t.controller.gateway.tunnels() === 0 ? true : undefined));
  }

  it('spreads new connections evenly over endpoints scaled from one to three (9 held: 3/3/3)', async () => {
    await setEndpoints(ips);
    await eventually('three endpoints in the live table', () =>
      JSON.stringify(liveEndpoints(t, 'spread.test')) === JSON.stringify([...ips].sort()) ? true : undefined,
    );
    const { held, counts } = await openHeld(9, 'n');
    assert.deepEqual(counts, { a: 3, b: 3, c: 3 });
    await closeAll(held);
  });

  it('gives an endpoint marked not ready no new connections, and keeps the ones it has', async () => {
    // One connection on each first. Were c still a candidate, least connections would give it 2 of the next 6.
    const before = await openHeld(3, 'b');
    assert.deepEqual(before.counts, { a: 1, b: 1, c: 1 });
    await setEndpoints(ips, [net.podIP(2)]);
    await eventually('c out of the live table', () =>
      JSON.stringify(liveEndpoints(t, 'spread.test')) === JSON.stringify([net.podIP(0), net.podIP(1)].sort()) ? true : undefined,
    );
    const after = await openHeld(6, 'r');
    assert.deepEqual(after.counts, { a: 3, b: 3, c: 0 });
    // The connections opened before keep their endpoints, c's included.
    const answers = await Promise.all(before.held.map((h, i) => h.echo(`still${i}`)));
    assert.deepEqual(answers.map((a) => a.split(':')[0]).sort(), ['a', 'b', 'c']);
    await closeAll([...before.held, ...after.held]);
  });
});
