// [issue 14] The pure parts of the controller's Gateway API work: what status to write (transition times kept,
// other controllers' route entries kept, nothing written when nothing changed) and what to provision (the pod
// template never depends on listeners, so listener changes restart no proxy).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Gateway, RouteParentStatus } from '../../src/api/gateway-api.ts';
import { gatewayStatusUpdate, routeStatusUpdate, withTransitionTimes } from '../../src/controller/gateway-status.ts';
import { desiredObjects, observedInfrastructure, proxyName } from '../../src/controller/provision.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-02T00:00:00Z');
const accepted = (status: 'True' | 'False', generation = 1) => ({ type: 'Accepted', status, reason: status === 'True' ? 'Accepted' : 'NotAllowedByListeners', message: 'm', observedGeneration: generation });

describe('status updates', () => {
  test('a condition keeps its lastTransitionTime while its status stays, and gets a new one when it changes', () => {
    const first = withTransitionTimes(undefined, [accepted('True')], T0);
    assert.equal(first[0]?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(withTransitionTimes(first, [accepted('True', 2)], T1)[0]?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(withTransitionTimes(first, [accepted('False', 2)], T1)[0]?.lastTransitionTime, '2026-01-02T00:00:00Z');
  });

  test('a Gateway that already says it gets no write', () => {
    const computed = { addresses: [{ type: 'IPAddress', value: '198.51.100.9' }], conditions: [accepted('True')], listeners: [] };
    const written = gatewayStatusUpdate(undefined, computed, T0);
    assert.ok(written !== undefined);
    assert.equal(gatewayStatusUpdate(written, computed, T1), undefined);
  });

  test("route status: wsgate's entries are replaced, removed when gone, and other controllers' kept in place", () => {
    const ref = (name: string) => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'apps', name });
    const theirs: RouteParentStatus = { parentRef: ref('other'), controllerName: 'example.com/x', conditions: [{ ...accepted('True'), lastTransitionTime: 'x' }] };
    const mineBefore: RouteParentStatus = { parentRef: ref('gone'), controllerName: 'wsgate.io/gateway-controller', conditions: [{ ...accepted('True'), lastTransitionTime: 'y' }] };
    const update = routeStatusUpdate(
      { parents: [theirs, mineBefore] },
      [{ parentRef: ref('edge'), controllerName: 'wsgate.io/gateway-controller', conditions: [accepted('True')] }],
      'wsgate.io/gateway-controller',
      'apps',
      T0,
    );
    assert.deepEqual(update?.parents?.map((p) => `${p.controllerName} ${p.parentRef.name}`), ['example.com/x other', 'wsgate.io/gateway-controller edge']);
    assert.equal(routeStatusUpdate(update, [{ parentRef: ref('edge'), controllerName: 'wsgate.io/gateway-controller', conditions: [accepted('True')] }], 'wsgate.io/gateway-controller', 'apps', T1), undefined);
  });
});

describe('provisioning', () => {
  const gw = (ports: number[], labels: Record<string, string> = {}): Gateway => ({
    kind: 'Gateway',
    metadata: { name: 'edge', namespace: 'apps', uid: 'u-1' },
    spec: { gatewayClassName: 'wsgate', listeners: ports.map((port, i) => ({ name: `l${i}`, port, protocol: 'HTTP' })), infrastructure: { labels } },
  });
  const o = { image: 'wsgate:1.0.0', clusterRole: 'wsgate-gateway-proxy' };

  test("the proxies' pod template does not depend on listeners: adding one changes the Service, not the Deployment", () => {
    const one = desiredObjects(gw([80]), [80], o);
    const two = desiredObjects(gw([80, 443]), [80, 443], o);
    assert.deepEqual(two.deployment, one.deployment);
    assert.deepEqual(two.service.spec?.ports?.map((p) => p.port), [80, 443]);
    assert.notDeepEqual(two.service, one.service);
  });

  test('every object carries the Gateway name label and spec.infrastructure.labels, and is owned by the Gateway', () => {
    const d = desiredObjects(gw([80], { team: 'a' }), [80], o);
    for (const obj of [d.serviceAccount, d.deployment, d.service]) {
      assert.equal(obj.metadata?.labels?.['gateway.networking.k8s.io/gateway-name'], 'edge');
      assert.equal(obj.metadata?.labels?.['team'], 'a');
      assert.equal(obj.metadata?.ownerReferences?.[0]?.uid, 'u-1');
    }
    assert.equal(d.clusterRoleBinding?.roleRef.name, 'wsgate-gateway-proxy');
    assert.deepEqual(d.clusterRoleBinding?.subjects, [{ kind: 'ServiceAccount', name: 'wsgate-edge', namespace: 'apps' }]);
  });

  test('names stay DNS labels: a long Gateway name is cut with a hash', () => {
    const long = proxyName('x'.repeat(80));
    assert.ok(long.length <= 63, long);
    assert.notEqual(proxyName('x'.repeat(80)), proxyName(`${'x'.repeat(79)}y`));
    assert.equal(proxyName('edge'), 'wsgate-edge');
  });

  test("a Gateway's infrastructure: the load balancer's addresses, ready with an available proxy, absent without its objects", () => {
    const g = gw([80]);
    const svc = { spec: { type: 'LoadBalancer' }, status: { loadBalancer: { ingress: [{ ip: '198.51.100.9' }, { hostname: 'lb.example.com' }] } } };
    assert.deepEqual(observedInfrastructure(g, () => svc, () => ({ status: { availableReplicas: 1 } })), {
      addresses: [{ type: 'IPAddress', value: '198.51.100.9' }, { type: 'Hostname', value: 'lb.example.com' }],
      ready: true,
    });
    assert.equal(observedInfrastructure(g, () => undefined, () => ({})), undefined);
    assert.equal(observedInfrastructure(g, () => svc, () => ({ status: {} }))?.ready, false);
  });
});
