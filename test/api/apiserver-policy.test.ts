// The frame and drain knobs through a real kube-apiserver with wsgate's CRDs: the API server keeps every field (a
// field missing from the schema would be pruned silently), rejects bad values naming the field, and what it stores
// translates to the policy the data plane reads. The cross-field rule (inspectFrames false with a limit) is not in
// the schema: the API server stores such an object, and translation reports it (test/translate/policy.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiException, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeObject, PolicySpec } from '../../src/api/types.ts';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import { translate } from '../../src/translate/translate.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';

const GROUP = 'wsgate.io';
const VERSION = 'v1alpha1';
const NS = `wsgate-policy-${Math.random().toString(36).slice(2, 8)}`;

const routePolicy: PolicySpec = {
  keepalive: { intervalSeconds: 15, timeoutSeconds: 5 },
  maxMessageBytes: 1_048_576,
  maxBackendMessageBytes: 16_777_216,
  maxMessagesPerSecond: 100,
  onExceed: 'Close',
  strict: false,
  endpointDrainSeconds: 20,
  onRemoval: { action: 'Keep' },
  rebalance: { enabled: true, tolerancePercent: 10 },
};
const rulePolicy: PolicySpec = { keepalive: { toBackend: true }, onRemoval: { graceSeconds: 30 }, rebalance: { maxClosesPerSecond: 2 } };

function webSocketRoute(name: string, policy: unknown, rule?: unknown) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'WebSocketRoute',
    metadata: { name, namespace: NS },
    spec: {
      hostnames: [`${name}.example.test`],
      rules: [{ path: { type: 'Prefix', value: '/ws' }, backends: [{ service: 'chat', port: 80 }], ...(rule ? { policy: rule } : {}) }],
      policy,
    },
  };
}

function tcpTunnel(name: string, extra: Record<string, unknown>) {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'TCPTunnel',
    metadata: { name, namespace: NS },
    spec: { port: 1883, backends: [{ service: 'mqtt', port: 1883 }], ...extra },
  };
}

/** The API server's Status message for a request that must fail; fails the test if it succeeds. */
async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const body: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
    const message = (body as { message?: unknown } | undefined)?.message;
    return { code: err.code, message: typeof message === 'string' ? message : String(err.message) };
  }
  assert.fail('the API server accepted a request it must reject');
}

describe('frame and drain knobs through kube-apiserver', { timeout: 180_000 }, () => {
  let cp: ControlPlane;
  let custom: CustomObjectsApi;
  const create = (plural: string, body: object) =>
    custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural, body });

  before(async () => {
    cp = await startControlPlane();
    const kc = cp.kubeConfig();
    custom = kc.makeApiClient(CustomObjectsApi);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
  });

  after(async () => {
    await cp?.stop();
  });

  it('keeps every knob of a WebSocketRoute and a TCPTunnel, and what it stores translates to the layered policy', async () => {
    const drain = { endpointDrainSeconds: 0, onRemoval: { action: 'Close', graceSeconds: 5 } };
    const route = (await create('websocketroutes', webSocketRoute('chat', routePolicy, rulePolicy))) as { spec: unknown };
    const tunnel = (await create('tcptunnels', tcpTunnel('mqtt', drain))) as { spec: unknown };
    assert.deepEqual(route.spec, webSocketRoute('chat', routePolicy, rulePolicy).spec);
    assert.deepEqual(tunnel.spec, tcpTunnel('mqtt', drain).spec);

    const result = translate(snapshotFromObjects([route, tunnel] as KubeObject[]));
    const p = result.table.virtualHosts[0]?.routes[0]?.policy;
    assert.deepEqual(p?.keepalive, { intervalSeconds: 15, timeoutSeconds: 5, toBackend: true });
    assert.deepEqual([p?.maxMessageBytes, p?.maxBackendMessageBytes, p?.maxMessagesPerSecond, p?.onExceed, p?.strict], [1_048_576, 16_777_216, 100, 'Close', false]);
    assert.deepEqual([p?.endpointDrainSeconds, p?.onRemoval, p?.rebalance], [20, { action: 'Keep', graceSeconds: 30 }, { enabled: true, tolerancePercent: 10, maxClosesPerSecond: 2 }]);
    const t = result.table.tunnels[0];
    assert.deepEqual([t?.endpointDrainSeconds, t?.onRemoval], [0, { action: 'Close', graceSeconds: 5 }]);
  });

  it('prunes WebSocket knobs written on a TCPTunnel: they are not part of its schema', async () => {
    const stored = (await create('tcptunnels', tcpTunnel('pruned', { maxMessageBytes: 1024, endpointDrainSeconds: 3 }))) as {
      spec: Record<string, unknown>;
    };
    assert.equal(stored.spec['maxMessageBytes'], undefined);
    assert.equal(stored.spec['endpointDrainSeconds'], 3);
  });

  const malformed: { name: string; plural: string; body: object; field: RegExp }[] = [
    { name: 'a keepalive timeout of 0', plural: 'websocketroutes', body: webSocketRoute('a', { keepalive: { timeoutSeconds: 0 } }), field: /spec\.policy\.keepalive\.timeoutSeconds: Invalid value: 0/ },
    { name: 'an onExceed outside the enum', plural: 'websocketroutes', body: webSocketRoute('b', {}, { onExceed: 'Drop' }), field: /spec\.rules\[0\]\.policy\.onExceed: Unsupported value: "Drop"/ },
    { name: 'a rebalance tolerance of 101', plural: 'websocketroutes', body: webSocketRoute('c', { rebalance: { tolerancePercent: 101 } }), field: /spec\.policy\.rebalance\.tolerancePercent: Invalid value: 101/ },
    { name: 'a fractional maxMessageBytes', plural: 'websocketroutes', body: webSocketRoute('d', { maxMessageBytes: 1.5 }), field: /spec\.policy\.maxMessageBytes: Invalid value/ },
    { name: 'inspectFrames as a string', plural: 'websocketroutes', body: webSocketRoute('e', { inspectFrames: 'false' }), field: /spec\.policy\.inspectFrames: Invalid value/ },
    { name: 'an onRemoval action outside the enum on a TCPTunnel', plural: 'tcptunnels', body: tcpTunnel('f', { onRemoval: { action: 'Later' } }), field: /spec\.onRemoval\.action: Unsupported value: "Later"/ },
    { name: 'a negative endpointDrainSeconds on a TCPTunnel', plural: 'tcptunnels', body: tcpTunnel('g', { endpointDrainSeconds: -1 }), field: /spec\.endpointDrainSeconds: Invalid value: -1/ },
  ];
  for (const c of malformed) {
    it(`rejects ${c.name}, naming the field`, async () => {
      const { code, message } = await rejection(create(c.plural, c.body));
      assert.equal(code, 422);
      assert.match(message, c.field);
    });
  }
});
