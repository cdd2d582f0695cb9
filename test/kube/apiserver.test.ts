// The test control plane itself: a real kube-apiserver + etcd (scripts/k8s/build.sh), with RBAC and wsgate's
// CRDs. Pins what later Kubernetes tests rely on: objects round-trip, the CRD schemas are enforced by the API
// server (not only by wsgate), and which EndpointSlice addresses the API server accepts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  VersionApi,
  type V1EndpointSlice,
  type V1Service,
} from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';

const GROUP = 'wsgate.io';
const VERSION = 'v1alpha1';
const PLURAL = 'websocketroutes';
const NS = 'wsgate-kube-test';
/**
 * Stands for a Pod address. TEST-NET-2 (RFC 5737); not TEST-NET-1, 192.0.2.0/24, which is this machine's own
 * eth0 network. Tests that need traffic to reach it put it in a network namespace (docs/testing-kubernetes.md).
 */
const POD_IP = '198.51.100.10';

interface WebSocketRouteObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

function webSocketRoute(name: string, spec: Record<string, unknown> = {}): WebSocketRouteObject {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'WebSocketRoute',
    metadata: { name, namespace: NS },
    spec: {
      hostnames: ['chat.example.test'],
      rules: [{ path: { type: 'Prefix', value: '/ws' }, backends: [{ service: 'chat', port: 80 }] }],
      ...spec,
    },
  };
}

function service(name: string): V1Service {
  return {
    metadata: { name, namespace: NS },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  };
}

function endpointSlice(serviceName: string, address: string, name = `${serviceName}-${address.replaceAll('.', '-')}`): V1EndpointSlice {
  return {
    metadata: { name, namespace: NS, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [address], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

/** The API server's Status for a request that must fail; fails the test if it succeeds. */
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

describe('test control plane (kube-apiserver + etcd)', () => {
  let cp: ControlPlane;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let discovery: DiscoveryV1Api;

  before(async () => {
    const started = Date.now();
    cp = await startControlPlane({ users: [{ name: 'nobody' }] });
    // Start time is part of what this harness promises; see docs/testing-kubernetes.md.
    console.log(`control plane ${cp.versions.kubernetes} / etcd ${cp.versions.etcd} ready with CRDs in ${Date.now() - started} ms`);
    kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    discovery = kc.makeApiClient(DiscoveryV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
  });

  after(async () => {
    await cp?.stop();
  });

  it('serves the pinned Kubernetes version to the admin kubeconfig', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    assert.equal(version.gitVersion, cp.versions.kubernetes);
  });

  it('authorises with RBAC: a user with no bindings is forbidden', async () => {
    const nobody = cp.users.get('nobody');
    assert.ok(nobody);
    const api = cp.kubeConfig(nobody).makeApiClient(CoreV1Api);
    const { code, message } = await rejection(api.listNamespacedService({ namespace: NS }));
    assert.equal(code, 403);
    assert.match(message, /User "nobody" cannot list resource "services"/);
  });

  it('stores a Service and an EndpointSlice for it', async () => {
    const created = await core.createNamespacedService({ namespace: NS, body: service('chat') });
    assert.ok(created.spec?.clusterIP, 'a ClusterIP is allocated from --service-cluster-ip-range');
    await discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice('chat', POD_IP) });

    const slices = await discovery.listNamespacedEndpointSlice({ namespace: NS, labelSelector: 'kubernetes.io/service-name=chat' });
    assert.deepEqual(slices.items.map((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)), [[POD_IP]]);
  });

  it('rejects a loopback address in an EndpointSlice, naming the field', async () => {
    const { code, message } = await rejection(
      discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice('chat', '127.0.0.1') }),
    );
    assert.equal(code, 422);
    assert.match(message, /endpoints\[0\]\.addresses\[0\]/);
    assert.match(message, /loopback/);
  });

  it('accepts a valid WebSocketRoute and lists it back', async () => {
    await custom.createNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, body: webSocketRoute('chat'),
    });
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: NS, plural: PLURAL,
    })) as { items: WebSocketRouteObject[] };
    assert.deepEqual(list.items.map((r) => r.metadata.name), ['chat']);
    assert.deepEqual(list.items[0]?.spec, webSocketRoute('chat').spec);
  });

  const malformed: { name: string; spec: Record<string, unknown>; field: RegExp }[] = [
    {
      name: 'a path type outside the enum',
      spec: { rules: [{ path: { type: 'Regex', value: '/ws' }, backends: [{ service: 'chat', port: 80 }] }] },
      field: /spec\.rules\[0\]\.path\.type: Unsupported value: "Regex"/,
    },
    {
      name: 'a backend port of 70000',
      spec: { rules: [{ backends: [{ service: 'chat', port: 70000 }] }] },
      field: /spec\.rules\[0\]\.backends\[0\]\.port: Invalid value: 70000/,
    },
    {
      name: 'a backend without its required service',
      spec: { rules: [{ backends: [{ port: 80 }] }] },
      field: /spec\.rules\[0\]\.backends\[0\]\.service: Required value/,
    },
    {
      name: 'a spec without rules',
      spec: { rules: undefined },
      field: /spec\.rules: Required value/,
    },
  ];
  for (const c of malformed) {
    it(`rejects a WebSocketRoute with ${c.name}, naming the field`, async () => {
      const body = webSocketRoute('bad', c.spec);
      const { code, message } = await rejection(custom.createNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: NS, plural: PLURAL, body,
      }));
      assert.equal(code, 422);
      assert.match(message, c.field);
    });
  }
});
