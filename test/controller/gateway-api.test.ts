// [issue 14] The Gateway API against a real kube-apiserver (the Gateway API v1.6.3 CRDs installed):
//  - the controller of --gateway-class accepts its GatewayClass (with its supported features), provisions an
//    accepted Gateway's proxies (ServiceAccount, Deployment of `wsgate controller --gateway`, Service, all owned by
//    the Gateway), makes it Programmed once a proxy is available, and writes route status per parent, leaving
//    other controllers' entries alone, with observedGeneration everywhere;
//  - a Gateway's proxy (--gateway) carries WebSockets through an HTTPRoute to backends in a network namespace,
//    counts them under the route label `namespace/name` of the HTTPRoute, drops none of 100 open WebSockets when the
//    route changes, and writes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoordinationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { installGatewayAPI } from '../conformance/cluster.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  awaitReadyLeader,
  endpointSlice,
  eventually,
  exchange,
  freePort,
  holdConnection,
  metricValue,
  service,
  startTestController,
  type Apis,
  type HeldConnection,
  type TestController,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'gw-test';
const GROUP = 'gateway.networking.k8s.io';
const HELD = 100;
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface Condition {
  type: string;
  status: string;
  reason: string;
  message?: string;
  observedGeneration?: number;
}
interface GatewayObject {
  metadata: { generation: number; uid: string };
  status?: { addresses?: { type: string; value: string }[]; conditions?: Condition[]; listeners?: { name: string; attachedRoutes: number; conditions: Condition[] }[] };
}
interface RouteObject {
  metadata: { generation: number; resourceVersion: string };
  spec: Record<string, unknown>;
  status?: { parents?: { controllerName: string; parentRef: { name: string }; conditions: Condition[] }[] };
}

const cond = (list: readonly Condition[] | undefined, type: string): Condition | undefined => list?.find((c) => c.type === type);

function gateway(name: string, port: number, className = 'wsgate'): object {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'Gateway',
    metadata: { name, namespace: NS },
    spec: { gatewayClassName: className, listeners: [{ name: 'http', port, protocol: 'HTTP' }] },
  };
}

function httpRoute(name: string, o: { parents: string[]; rules: object[] }): object {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'HTTPRoute',
    metadata: { name, namespace: NS },
    spec: { parentRefs: o.parents.map((p) => ({ name: p })), hostnames: ['chat.test'], rules: o.rules },
  };
}

const ref = (plural: string): { group: string; version: string; namespace: string; plural: string } => ({ group: GROUP, version: 'v1', namespace: NS, plural });

describe('Gateway API against a real API server', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  const backends: { stop(): Promise<void> }[] = [];
  const controllers: TestController[] = [];

  before(async () => {
    cp = await startControlPlane();
    await installGatewayAPI(cp.kubeConfig());
    net = createPodNetwork(9);
    backends.push(await net.startEchoBackend(net.podIP(0), 8080, 'blue'));
    backends.push(await net.startEchoBackend(net.podIP(1), 8080, 'green'));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    for (const [i, name] of ['blue', 'green'].entries()) {
      await api.core.createNamespacedService({ namespace: NS, body: service(NS, name) });
      await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, name, [net.podIP(i)]) });
    }
    // The first create of a new CRD's objects may wait out its 2 s settle time (docs/testing-kubernetes.md).
    await eventually('the GatewayClass to be created', async () => {
      await api.custom.createClusterCustomObject({
        group: GROUP,
        version: 'v1',
        plural: 'gatewayclasses',
        body: { apiVersion: `${GROUP}/v1`, kind: 'GatewayClass', metadata: { name: 'wsgate' }, spec: { controllerName: 'wsgate.io/gateway-controller' } },
      });
      return true;
    }, { times: 1, timeoutMs: 30_000 });
  });

  after(async () => {
    for (const c of controllers) await c.controller.stop();
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
  });

  describe('the controller of --gateway-class', () => {
    let t: TestController;
    let listenerPort: number;

    before(async () => {
      listenerPort = await freePort();
      t = await startTestController(cp.kubeConfig(), {
        leaseName: 'gw-status',
        gatewayAPI: { mode: 'gateway-class', classes: ['wsgate'], provision: { image: 'wsgate:test', serviceType: 'ClusterIP' } },
      });
      controllers.push(t);
      await awaitReadyLeader(t);
    });

    it('accepts its GatewayClass at its generation and publishes the features wsgate supports', async () => {
      const gwc = await eventually('the GatewayClass to be Accepted', async () => {
        const o = (await api.custom.getClusterCustomObject({ group: GROUP, version: 'v1', plural: 'gatewayclasses', name: 'wsgate' })) as {
          metadata: { generation: number };
          status?: { conditions?: Condition[]; supportedFeatures?: { name: string }[] };
        };
        const c = cond(o.status?.conditions, 'Accepted');
        return c?.status === 'True' && c.observedGeneration === o.metadata.generation ? o : undefined;
      });
      const features = (gwc.status?.supportedFeatures ?? []).map((f) => f.name);
      for (const f of ['Gateway', 'HTTPRoute', 'ReferenceGrant', 'TLSRoute', 'TCPRoute', 'HTTPRouteBackendProtocolWebSocket']) assert.ok(features.includes(f), f);
    });

    it("provisions an accepted Gateway's proxies, owned by it, and makes it Programmed once a proxy is available", async () => {
      await api.custom.createNamespacedCustomObject({ ...ref('gateways'), body: gateway('edge', listenerPort) });
      const apps = cp.kubeConfig().makeApiClient(AppsV1Api);
      const dep = await eventually('the proxy Deployment', async () => {
        try {
          return await apps.readNamespacedDeployment({ namespace: NS, name: 'wsgate-edge' });
        } catch {
          return undefined;
        }
      }, { times: 1 });
      const gw = (await api.custom.getNamespacedCustomObject({ ...ref('gateways'), name: 'edge' })) as GatewayObject;
      assert.equal(dep.metadata?.ownerReferences?.[0]?.uid, gw.metadata.uid);
      assert.deepEqual(dep.spec?.template.spec?.containers[0]?.args?.slice(0, 2), ['controller', `--gateway=${NS}/edge`]);
      const svc = await api.core.readNamespacedService({ namespace: NS, name: 'wsgate-edge' });
      assert.deepEqual(svc.spec?.ports?.map((p) => p.port), [listenerPort]);
      assert.equal(svc.metadata?.ownerReferences?.[0]?.uid, gw.metadata.uid);
      await api.core.readNamespacedServiceAccount({ namespace: NS, name: 'wsgate-edge' });

      await eventually('Accepted, not yet Programmed (no proxy available)', async () => {
        const g = (await api.custom.getNamespacedCustomObject({ ...ref('gateways'), name: 'edge' })) as GatewayObject;
        const p = cond(g.status?.conditions, 'Programmed');
        return cond(g.status?.conditions, 'Accepted')?.status === 'True' && p?.status === 'False' && p.reason === 'Pending' ? true : undefined;
      });
      // No kube-controller-manager runs here: the test plays its part and says the Deployment has a proxy available.
      await apps.patchNamespacedDeploymentStatus(
        { namespace: NS, name: 'wsgate-edge', body: { status: { replicas: 1, readyReplicas: 1, availableReplicas: 1, observedGeneration: dep.metadata?.generation } } },
        MERGE,
      );
      const programmed = await eventually('Programmed, with the Service address', async () => {
        const g = (await api.custom.getNamespacedCustomObject({ ...ref('gateways'), name: 'edge' })) as GatewayObject;
        const p = cond(g.status?.conditions, 'Programmed');
        return p?.status === 'True' && p.observedGeneration === g.metadata.generation ? g : undefined;
      });
      assert.deepEqual(programmed.status?.addresses, [{ type: 'IPAddress', value: svc.spec?.clusterIP }]);
      assert.equal(cond(programmed.status?.listeners?.[0]?.conditions, 'Programmed')?.status, 'True');
    });

    it("writes route status per parent, counts attached routes, and leaves another controller's entry alone", async () => {
      await api.custom.createNamespacedCustomObject({ ...ref('gateways'), body: gateway('elsewhere', listenerPort, 'someone-elses') });
      await api.custom.createNamespacedCustomObject({
        ...ref('httproutes'),
        body: httpRoute('status-test', { parents: ['edge', 'elsewhere'], rules: [{ backendRefs: [{ name: 'nobody', port: 80 }] }] }),
      });
      const ours = async (): Promise<RouteObject> => (await api.custom.getNamespacedCustomObject({ ...ref('httproutes'), name: 'status-test' })) as RouteObject;
      await eventually('our parent entry: Accepted, ResolvedRefs False (BackendNotFound)', async () => {
        const r = await ours();
        const p = r.status?.parents?.find((x) => x.controllerName === 'wsgate.io/gateway-controller');
        return p?.parentRef.name === 'edge' &&
          cond(p.conditions, 'Accepted')?.status === 'True' &&
          cond(p.conditions, 'ResolvedRefs')?.reason === 'BackendNotFound' &&
          cond(p.conditions, 'Accepted')?.observedGeneration === r.metadata.generation
          ? true
          : undefined;
      });
      await eventually('the listener to count the route', async () => {
        const g = (await api.custom.getNamespacedCustomObject({ ...ref('gateways'), name: 'edge' })) as GatewayObject;
        return g.status?.listeners?.[0]?.attachedRoutes === 1 ? true : undefined;
      });
      // Another controller answers for its parent; then the route changes, and wsgate writes again.
      const r = await ours();
      const foreign = {
        controllerName: 'example.com/other',
        parentRef: { group: GROUP, kind: 'Gateway', namespace: NS, name: 'elsewhere' },
        conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }],
      };
      await api.custom.patchNamespacedCustomObjectStatus(
        { ...ref('httproutes'), name: 'status-test', body: { metadata: { resourceVersion: r.metadata.resourceVersion }, status: { parents: [...(r.status?.parents ?? []), foreign] } } },
        MERGE,
      );
      await api.custom.patchNamespacedCustomObject(
        { ...ref('httproutes'), name: 'status-test', body: { spec: { rules: [{ backendRefs: [{ name: 'blue', port: 80 }] }] } } },
        MERGE,
      );
      await eventually('our entry rewritten for generation 2, the other controller\'s kept', async () => {
        const now = await ours();
        const mine = now.status?.parents?.find((x) => x.controllerName === 'wsgate.io/gateway-controller');
        const theirs = now.status?.parents?.find((x) => x.controllerName === 'example.com/other');
        return now.metadata.generation === 2 &&
          cond(mine?.conditions, 'ResolvedRefs')?.status === 'True' &&
          cond(mine?.conditions, 'ResolvedRefs')?.observedGeneration === 2 &&
          theirs?.parentRef.name === 'elsewhere'
          ? true
          : undefined;
      });
    });
    it('serves an HTTPRoute whose policy annotation is bad, and says which in wsgate.io/PolicyAccepted and a log line', async () => {
      const body = httpRoute('bad-policy', { parents: ['edge'], rules: [{ backendRefs: [{ name: 'blue', port: 80 }] }] }) as { metadata: Record<string, unknown> };
      body.metadata.annotations = { 'wsgate.io/idle-timeout-seconds': 'soon', 'wsgate.io/max-connections': '10' };
      await api.custom.createNamespacedCustomObject({ ...ref('httproutes'), body });
      const r = await eventually('the policy condition', async () => {
        const route = (await api.custom.getNamespacedCustomObject({ ...ref('httproutes'), name: 'bad-policy' })) as RouteObject & {
          status?: { parents?: { conditions: Condition[] }[] };
        };
        const p = route.status?.parents?.[0];
        return cond(p?.conditions, 'wsgate.io/PolicyAccepted') !== undefined ? p : undefined;
      }, { times: 1 });
      assert.equal(cond(r.conditions, 'Accepted')?.status, 'True', 'the route is served with the default of the bad knob');
      const policy = r.conditions.find((c) => c.type === 'wsgate.io/PolicyAccepted')!;
      assert.equal(policy.status, 'False');
      assert.equal(policy.reason, 'InvalidAnnotation');
      assert.match(policy.message ?? '', /wsgate\.io\/idle-timeout-seconds: "soon"/);
      const line = t.logs.find((l) => l['object'] === `${NS}/bad-policy` && l['condition'] === 'wsgate.io/PolicyAccepted');
      assert.ok(line, 'a log line names the route and the condition');
      assert.match(String(line['message']), /idle-timeout-seconds/);
    });
  });

  describe("a Gateway's proxy (--gateway)", () => {
    let proxy: TestController;
    let port: number;

    before(async () => {
      port = await freePort();
      await api.custom.createNamespacedCustomObject({ ...ref('gateways'), body: gateway('proxy-test', port) });
      await api.custom.createNamespacedCustomObject({
        ...ref('httproutes'),
        body: httpRoute('chat', { parents: ['proxy-test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'blue', port: 80 }] }] }),
      });
      proxy = await startTestController(cp.kubeConfig(), { leaseName: 'unused', gatewayAPI: { mode: 'gateway', namespace: NS, name: 'proxy-test' } });
      controllers.push(proxy);
      await eventually('the proxy to be ready', () => (proxy.controller.gateway.notReady() === undefined ? true : undefined));
    });

    it('carries WebSockets through the HTTPRoute, counted under the route label namespace/name', async () => {
      await eventually('the route to serve', async () => ((await exchange(port, 'chat.test', '/chat', 'hi')) === 'blue:hi' ? true : undefined));
      assert.equal(await exchange(port, 'other.test', '/chat', 'x'), 'HTTP 404', 'a host the route does not name');
      assert.ok((await metricValue(proxy.metrics, 'wsgate_connections_total', { route: `${NS}/chat`, layer: 'l7', outcome: 'completed' })) >= 1);
    });

    it(`drops none of ${HELD} open WebSockets when the route changes; new connections follow the change`, async () => {
      await eventually('the route to serve', async () => ((await exchange(port, 'chat.test', '/chat', 'a')) === 'blue:a' ? true : undefined));
      const held: HeldConnection[] = await Promise.all(Array.from({ length: HELD }, () => holdConnection(`ws://127.0.0.1:${port}/chat`, 'chat.test')));
      try {
        const current = (await api.custom.getNamespacedCustomObject({ ...ref('httproutes'), name: 'chat' })) as RouteObject;
        current.spec['rules'] = [
          { matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'blue', port: 80 }] },
          { matches: [{ path: { type: 'PathPrefix', value: '/v2' } }], backendRefs: [{ name: 'green', port: 80 }] },
        ];
        await api.custom.replaceNamespacedCustomObject({ ...ref('httproutes'), name: 'chat', body: current });
        await eventually('new connections to follow the change', async () => ((await exchange(port, 'chat.test', '/v2', 'b')) === 'green:b' ? true : undefined));
        const closed = held.flatMap((h, i) => (h.closed === undefined ? [] : [`#${i} ${h.closed}`]));
        assert.deepEqual(closed, [], 'no open connection was closed');
        const answers = await Promise.all(held.map((h, i) => h.echo(`after-${i}`)));
        answers.forEach((a, i) => assert.equal(a, `blue:after-${i}`));
      } finally {
        for (const h of held) h.close();
      }
    });

    it("applies the HTTPRoute's wsgate.io/max-connections: the connection over it is refused with 429", async () => {
      const body = httpRoute('limited', { parents: ['proxy-test'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/limited' } }], backendRefs: [{ name: 'blue', port: 80 }] }] }) as {
        metadata: Record<string, unknown>;
        spec: { hostnames: string[] };
      };
      body.metadata.annotations = { 'wsgate.io/max-connections': '1' };
      body.spec.hostnames = ['limited.test'];
      await api.custom.createNamespacedCustomObject({ ...ref('httproutes'), body });
      // The first connection that gets through holds the route's one place (until then: 404, the route not yet served).
      const first = await eventually('the route to serve', () => holdConnection(`ws://127.0.0.1:${port}/limited`, 'limited.test'), { times: 1 });
      try {
        assert.equal(await exchange(port, 'limited.test', '/limited', 'second'), 'HTTP 429');
        assert.equal(await first.echo('still'), 'blue:still');
      } finally {
        first.close();
      }
    });

    it('writes nothing: no status, no Lease', async () => {
      assert.equal(proxy.controller.statusWrites, 0);
      assert.equal(proxy.controller.isLeader, false);
      const leases = await cp.kubeConfig().makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'default' });
      assert.ok(!leases.items.some((l) => l.metadata?.name === 'unused'), 'the proxy took no Lease');
    });
  });
});

