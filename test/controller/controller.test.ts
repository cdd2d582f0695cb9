// `wsgate controller` against a real kube-apiserver (test/helpers/kube.ts): objects created through the API reach
// the data plane, status is written (and only when it changes), and changes that matter to no route trigger nothing.
// Backends are echo servers at TEST-NET-3 addresses in a network namespace (pod-network.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  condition,
  endpointSlice,
  eventually,
  exchange,
  metricValue,
  readRoute,
  service,
  startTestController,
  webSocketRoute,
  type Apis,
  type TestController,
  awaitReadyLeader,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'apps';
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };

describe('wsgate controller against a real API server', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  const backends: { stop(): Promise<void> }[] = [];

  before(async () => {
    cp = await startControlPlane();
    net = createPodNetwork(1);
    backends.push(await net.startEchoBackend(net.podIP(0), 8080, 'a'));
    backends.push(await net.startEchoBackend(net.podIP(1), 8080, 'b'));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    t = await startTestController(cp.kubeConfig(), { leaseName: 'controller-test', publishAddresses: ['192.0.2.200'] });
    await awaitReadyLeader(t);
  });

  after(async () => {
    await t?.controller.stop();
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
  });

  it('serves a WebSocketRoute created through the API, and says Accepted and ResolvedRefs with its generation', async () => {
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'chat') });
    await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, 'chat', [net.podIP(0)]) });
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'chat', { host: 'chat.test', service: 'chat' }) });
    await eventually('the echo through wsgate', async () =>
      (await exchange(t.httpPort, 'chat.test', '/ws', 'hello')) === 'a:hello' ? true : undefined,
    );
    const r = await eventually('status on the route', async () => {
      const r = await readRoute(api, NS, 'chat');
      return condition(r, 'ResolvedRefs') ? r : undefined;
    }, { times: 1 });
    assert.equal(r.status?.observedGeneration, r.metadata.generation);
    assert.deepEqual(
      r.status?.conditions?.map((c) => [c.type, c.status, c.observedGeneration]),
      [['Accepted', 'True', 1], ['ResolvedRefs', 'True', 1]],
    );
  });

  it('applies updates to endpoints and deletes of routes', async () => {
    await api.discovery.replaceNamespacedEndpointSlice({
      namespace: NS,
      name: 'chat-1',
      body: { ...endpointSlice(NS, 'chat', [net.podIP(1)]), metadata: { ...endpointSlice(NS, 'chat', []).metadata, resourceVersion: undefined } },
    });
    await eventually('the new endpoint to answer', async () =>
      (await exchange(t.httpPort, 'chat.test', '/ws', 'x')) === 'b:x' ? true : undefined,
    );
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'gone', { host: 'gone.test', service: 'chat' }) });
    await eventually('the second route', async () => ((await exchange(t.httpPort, 'gone.test', '/', 'y')) === 'b:y' ? true : undefined));
    await api.custom.deleteNamespacedCustomObject({ ...WSR, name: 'gone' });
    await eventually('404 after the delete', async () => ((await exchange(t.httpPort, 'gone.test', '/', 'y')) === 'HTTP 404' ? true : undefined));
  });

  it('gives a route with a missing Service ResolvedRefs=False and a Warning Event, while other routes keep working', async () => {
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'broken', { host: 'broken.test', service: 'nope' }) });
    const r = await eventually('ResolvedRefs=False', async () => {
      const r = await readRoute(api, NS, 'broken');
      return condition(r, 'ResolvedRefs')?.status === 'False' ? r : undefined;
    }, { times: 1 });
    const c = condition(r, 'ResolvedRefs');
    assert.equal(c?.reason, 'BackendNotFound');
    assert.equal(c?.observedGeneration, 1);
    assert.equal(r.status?.observedGeneration, 1);
    await eventually('a Warning Event for it', async () => {
      const events = await api.core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=broken' });
      return events.items.some((e) => e.type === 'Warning' && e.reason === 'BackendNotFound') ? true : undefined;
    }, { times: 1 });
    assert.equal(await exchange(t.httpPort, 'chat.test', '/ws', 'still'), 'b:still');
    assert.equal(await exchange(t.httpPort, 'broken.test', '/', 'z'), 'HTTP 503');
  });

  it('does not sync for a change to a Secret no route references', async () => {
    await t.controller.resync();
    await eventually('no sync pending', () => (t.controller.syncPending ? undefined : true));
    const syncs = t.controller.syncs;
    const before = await metricValue(t.metrics, 'wsgate_controller_events_total', { kind: 'Secret', relevant: 'false' });
    await api.core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'unrelated-tls', namespace: NS },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': Buffer.from('x').toString('base64'), 'tls.key': Buffer.from('y').toString('base64') },
      },
    });
    await eventually('the Secret event to be counted as not relevant', async () =>
      (await metricValue(t.metrics, 'wsgate_controller_events_total', { kind: 'Secret', relevant: 'false' })) > before ? true : undefined,
    { times: 1 });
    assert.equal(t.controller.syncPending, false, 'no sync was scheduled');
    assert.equal(t.controller.syncs, syncs);
  });

  it('writes status only when it changes: a resync with nothing new leaves resourceVersions alone', async () => {
    await eventually('status settled', async () => {
      const r = await readRoute(api, NS, 'chat');
      return condition(r, 'Accepted') && !t.controller.syncPending ? r.metadata.resourceVersion : undefined;
    });
    const before = (await readRoute(api, NS, 'chat')).metadata.resourceVersion;
    const broken = (await readRoute(api, NS, 'broken')).metadata.resourceVersion;
    const writes = t.controller.statusWrites;
    await t.controller.resync();
    await t.controller.resync();
    // Status is written off the sync (a queue): whatever the resyncs queued has been written by now.
    await t.controller.statusIdle();
    assert.equal(t.controller.statusWrites, writes);
    assert.equal((await readRoute(api, NS, 'chat')).metadata.resourceVersion, before);
    assert.equal((await readRoute(api, NS, 'broken')).metadata.resourceVersion, broken);
  });

  it('serves an Ingress of its class with status.loadBalancer filled, and ignores one of another class', async () => {
    const ingress = (name: string, className: string, host: string) => ({
      metadata: { name, namespace: NS },
      spec: {
        ingressClassName: className,
        rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] } }],
      },
    });
    await api.networking.createNamespacedIngress({ namespace: NS, body: ingress('web', 'wsgate', 'web.test') });
    await api.networking.createNamespacedIngress({ namespace: NS, body: ingress('other', 'nginx', 'other.test') });
    await eventually('the Ingress to serve', async () => ((await exchange(t.httpPort, 'web.test', '/', 'i')) === 'b:i' ? true : undefined));
    await eventually('status.loadBalancer', async () => {
      const ing = await api.networking.readNamespacedIngress({ namespace: NS, name: 'web' });
      return ing.status?.loadBalancer?.ingress?.[0]?.ip === '192.0.2.200' ? true : undefined;
    }, { times: 1 });
    assert.equal(await exchange(t.httpPort, 'other.test', '/', 'i'), 'HTTP 404');
    const other = await api.networking.readNamespacedIngress({ namespace: NS, name: 'other' });
    assert.equal(other.status?.loadBalancer?.ingress, undefined);
  });
});
