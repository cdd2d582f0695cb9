// The chart's RBAC is sufficient and minimal, against the real kube-apiserver's RBAC authorizer:
//  1. install the chart's ServiceAccount, ClusterRole/Role and bindings, IngressClass and Service (rendered by helm);
//  2. get a token for the ServiceAccount with the TokenRequest API and write a kubeconfig with it;
//  3. run `wsgate controller` in-process with the flags the chart's Deployment passes (listeners moved to loopback
//     port 0) and that kubeconfig: it lists and watches everything, takes the Lease, writes route and Ingress status,
//     reads the TLS Secret and the publish Service, records a Warning Event, and never meets a 403;
//  4. take one verb away and show the controller notices: the 403 is logged and the status it needed is not written;
//     without `list` on one kind, that informer's errors are counted and /readyz names the kind.
// [issue 14] The Gateway API's RBAC (gatewayAPI.enabled) the same way, for the controller and for a provisioned proxy.
// The sidecar injector's RBAC (self-signed mode) the same way: `wsgate webhook` with the chart Deployment's flags and
// a token of the injector's ServiceAccount writes, renews and re-creates its Secret and keeps the caBundle of its
// webhook configuration with no 403; without `patch` on it, the 403 is logged and counted; everything else
// (other Secrets, listing, deleting, other webhook configurations) is refused.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parseControllerFlags } from '../../src/controller/cli.ts';
import { startController, type Controller } from '../../src/controller/controller.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { parseWebhookFlags, startWebhook, type Webhook } from '../../src/webhook/cli.ts';
import { createWebhookMetrics, type WebhookMetrics } from '../../src/webhook/metrics.ts';
import { eventually, metricValue } from '../controller/harness.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { installGatewayAPI } from '../conformance/cluster.ts';
import { container, podSpec, render, type Manifest } from './helm.ts';
import { applyOrThrow, objectPath, send } from './kube-apply.ts';

/** The kinds of the chart that make up an install's identity and permissions (plus the objects the flags name). */
const INSTALLED = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'IngressClass', 'Service'];
const KINDS = ['IngressClass', 'Ingress', 'WebSocketRoute', 'TCPTunnel', 'Service', 'EndpointSlice', 'Secret'];

interface Install {
  readonly release: string;
  readonly namespace: string;
  /** Where the test's routes live (watched). */
  readonly appNamespace: string;
  readonly ingressClass: string;
  readonly manifests: Manifest[];
}

interface RunningController {
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly logs: Record<string, unknown>[];
  readonly adminPort: number;
}

const ns = (name: string): Manifest => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** Renders the chart for this install and applies its RBAC, IngressClass and Service for real, as admin. */
async function install(cp: ControlPlane, o: Omit<Install, 'manifests'> & { values?: Record<string, unknown> }): Promise<Install> {
  const manifests = render({
    release: o.release,
    namespace: o.namespace,
    values: { controller: { ingressClass: o.ingressClass }, ...o.values },
  });
  for (const n of new Set([o.namespace, o.appNamespace])) await applyOrThrow(cp, ns(n));
  for (const m of manifests.filter((x) => INSTALLED.includes(x.kind))) await applyOrThrow(cp, m);
  return { ...o, manifests };
}

/** A token for a ServiceAccount from the TokenRequest API. */
async function serviceAccountToken(cp: ControlPlane, namespace: string, name: string): Promise<string> {
  const r = await send(
    cp,
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } }),
    'application/json',
  );
  assert.equal(r.status, 201, r.body);
  return (JSON.parse(r.body) as { status: { token: string } }).status.token;
}

/** A ServiceAccount token from the TokenRequest API, in a kubeconfig file (the controller's, or the one named). */
async function serviceAccountKubeconfig(cp: ControlPlane, inst: Install, dir: string, saName?: string): Promise<string> {
  const sa = inst.manifests.find((m) => m.kind === 'ServiceAccount' && (saName === undefined || m.metadata.name === saName))!;
  const token = await serviceAccountToken(cp, inst.namespace, sa.metadata.name);
  const path = join(dir, `${sa.metadata.name}.kubeconfig`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cp.server, 'certificate-authority-data': Buffer.from(cp.caPem).toString('base64') } }],
      users: [{ name: sa.metadata.name, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'test', user: sa.metadata.name } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );
  return path;
}

/** `wsgate controller` with the chart Deployment's args, listeners on loopback port 0, and the ServiceAccount. */
async function runChartController(inst: Install, kubeconfig: string): Promise<RunningController> {
  const workload = inst.manifests.find((m) => m.kind === 'Deployment' || m.kind === 'DaemonSet')!;
  const [command, ...chartArgs] = container(workload).args;
  assert.equal(command, 'controller');
  const loopback = ['http-addr', 'https-addr', 'admin-addr'];
  return startWithArgs([
    ...chartArgs.filter((a) => !loopback.some((f) => a.startsWith(`--${f}=`))),
    ...loopback.map((f) => `--${f}=127.0.0.1:0`),
    '--tunnel-host=127.0.0.1',
    `--kubeconfig=${kubeconfig}`,
  ]);
}

/** `wsgate controller ARGS` in this process, as runController starts it, its log lines kept. */
async function startWithArgs(args: string[]): Promise<RunningController> {
  const flags = parseControllerFlags(args);
  assert.ok(!flags.help);
  // What runController does with the flags: the rest are the controller's options.
  const options = { ...flags } as Partial<typeof flags>;
  delete options.drainMs;
  delete options.logLevel;
  delete options.help;
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = createMetrics('test', { defaultMetrics: false });
  const controller = await startController({ ...(options as Omit<typeof flags, 'drainMs' | 'logLevel' | 'help'>), log: createLogger('debug', sink), metrics });
  return { controller, metrics, logs, adminPort: controller.gateway.addresses().admin?.port ?? 0 };
}

/** Log lines that say the API server refused something. */
const forbidden = (logs: readonly Record<string, unknown>[]): string[] =>
  logs.map((l) => JSON.stringify(l)).filter((l) => /HTTP 403|forbidden/i.test(l));

async function readyz(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, body: await r.text() };
}

async function getJson<T>(cp: ControlPlane, path: string): Promise<T> {
  const r = await send(cp, 'GET', path, undefined, '');
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as T;
}

interface Status {
  metadata: { generation: number };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[]; loadBalancer?: { ingress?: { ip?: string }[] } };
}

/** The objects a controller acts on, in `namespace`: a route with a TLS Secret, a broken route, a tunnel, an Ingress. */
async function createWorkload(cp: ControlPlane, namespace: string, ingressClass: string, tunnelPort: number): Promise<void> {
  const cert = generateSelfSigned({ commonName: 'echo.example.test', dnsNames: ['echo.example.test', 'ing.example.test'] });
  const objects: Manifest[] = [
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace },
      spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'echo-1', namespace, labels: { 'kubernetes.io/service-name': 'echo' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['198.51.100.10'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    },
    {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'echo-tls', namespace }, type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(cert.certPem).toString('base64'), 'tls.key': Buffer.from(cert.keyPem).toString('base64') },
    },
    {
      apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'echo', namespace },
      spec: {
        hostnames: ['echo.example.test'], tls: { secretName: 'echo-tls' },
        rules: [{ path: { type: 'Prefix', value: '/' }, backends: [{ service: 'echo', port: 80 }] }],
      },
    },
    {
      apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'broken', namespace },
      spec: { hostnames: ['broken.example.test'], rules: [{ path: { type: 'Prefix', value: '/' }, backends: [{ service: 'missing', port: 80 }] }] },
    },
    {
      apiVersion: 'wsgate.io/v1alpha1', kind: 'TCPTunnel', metadata: { name: 'echo-tcp', namespace },
      spec: { port: tunnelPort, backends: [{ service: 'echo', port: 80 }] },
    },
    {
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'echo', namespace },
      spec: {
        ingressClassName: ingressClass,
        tls: [{ hosts: ['ing.example.test'], secretName: 'echo-tls' }],
        rules: [{ host: 'ing.example.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'echo', port: { number: 80 } } } }] } }],
      },
    },
  ];
  for (const o of objects) {
    const plural = { Service: 'services', EndpointSlice: 'endpointslices', Secret: 'secrets', WebSocketRoute: 'websocketroutes', TCPTunnel: 'tcptunnels', Ingress: 'ingresses' }[o.kind];
    const prefix = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
    const r = await send(cp, 'POST', `${prefix}/namespaces/${namespace}/${plural}`, JSON.stringify(o), 'application/json');
    assert.equal(r.status, 201, `${o.kind}/${o.metadata.name}: ${r.body}`);
  }
}

const routePath = (namespace: string, plural: string, name: string): string => `/apis/wsgate.io/v1alpha1/namespaces/${namespace}/${plural}/${name}`;

/** Everything the controller does, checked from the API server's side: its whole job. */
async function assertWholeJob(cp: ControlPlane, inst: Install, run: RunningController): Promise<void> {
  const app = inst.appNamespace;
  await eventually('/readyz 200', async () => {
    const r = await readyz(run.adminPort);
    if (r.status !== 200) throw new Error(`/readyz ${r.status}: ${r.body.trim()}`);
    return true;
  }, { timeoutMs: 30_000 });
  await eventually('leadership', () => (run.controller.isLeader ? true : undefined), { timeoutMs: 30_000, times: 1 });
  const lease = await getJson<{ spec: { holderIdentity: string } }>(cp, `/apis/coordination.k8s.io/v1/namespaces/${inst.namespace}/leases/wsgate-leader`);
  assert.equal(lease.spec.holderIdentity, run.controller.identity);

  const accepted = (s: Status): boolean =>
    s.status?.observedGeneration === s.metadata.generation && s.status.conditions?.find((c) => c.type === 'Accepted')?.status === 'True';
  await eventually('WebSocketRoute echo accepted in status', async () => (accepted(await getJson<Status>(cp, routePath(app, 'websocketroutes', 'echo'))) ? true : undefined), { timeoutMs: 30_000 });
  await eventually('TCPTunnel echo-tcp accepted in status', async () => (accepted(await getJson<Status>(cp, routePath(app, 'tcptunnels', 'echo-tcp'))) ? true : undefined), { timeoutMs: 30_000 });
  const broken = await eventually('WebSocketRoute broken has a status', async () => {
    const s = await getJson<Status>(cp, routePath(app, 'websocketroutes', 'broken'));
    return s.status?.observedGeneration === s.metadata.generation ? s : undefined;
  }, { times: 1 });
  assert.equal(broken.status?.conditions?.find((c) => c.type === 'ResolvedRefs')?.status, 'False');

  // The publish Service's address (its cluster IP: no load balancer here) in Ingress status.
  const svc = await getJson<{ spec: { clusterIP: string } }>(cp, `/api/v1/namespaces/${inst.namespace}/services/${inst.release}`);
  await eventually('Ingress status.loadBalancer', async () => {
    const s = await getJson<Status>(cp, `/apis/networking.k8s.io/v1/namespaces/${app}/ingresses/echo`);
    return s.status?.loadBalancer?.ingress?.[0]?.ip === svc.spec.clusterIP ? true : undefined;
  }, { times: 1, timeoutMs: 30_000 });

  // A Warning Event for the broken route.
  await eventually('a Warning Event for the broken route', async () => {
    const events = await getJson<{ items: { type: string; involvedObject: { name: string } }[] }>(cp, `/api/v1/namespaces/${app}/events`);
    return events.items.some((e) => e.type === 'Warning' && e.involvedObject.name === 'broken') ? true : undefined;
  }, { times: 1 });

  // The referenced TLS Secret was read with its data, and its certificate loaded.
  assert.ok(run.controller.lastResult !== undefined);
  assert.ok(!run.logs.some((l) => l.msg === 'referenced secret not read' || l.msg === 'certificate not loaded'), 'certificate');

  assert.deepEqual(forbidden(run.logs), []);
  for (const kind of KINDS) assert.equal(await metricValue(run.metrics, 'wsgate_controller_watch_errors_total', { kind }), 0, kind);
}

describe("the chart's RBAC against kube-apiserver: sufficient and minimal", () => {
  let cp: ControlPlane;
  let dir: string;
  /** Controllers of the describe block running now: each block stops its own, so that a cluster-wide controller
   * does not serve (and bind the tunnel ports of) the next block's objects. */
  const running: RunningController[] = [];
  const stopRunning = async (): Promise<void> => {
    for (const r of running.splice(0)) await r.controller.stop();
  };
  before(async () => {
    cp = await startControlPlane();
    dir = mkdtempSync(join(tmpdir(), 'wsgate-rbac-'));
  });
  after(async () => {
    await stopRunning();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('watching every namespace (the default values)', () => {
    let inst: Install;
    let run: RunningController;
    before(async () => {
      inst = await install(cp, { release: 'wsgate', namespace: 'wsgate', appNamespace: 'app', ingressClass: 'wsgate' });
      await createWorkload(cp, inst.appNamespace, inst.ingressClass, await freePort());
      run = await runChartController(inst, await serviceAccountKubeconfig(cp, inst, dir));
      running.push(run);
    });
    after(stopRunning);

    it('lets wsgate controller do its whole job as the chart\'s ServiceAccount with no 403', async () => {
      await assertWholeJob(cp, inst, run);
    });

    it('shows a 403 in the log and writes no route status once patch on websocketroutes/status is taken away', async () => {
      const role = structuredClone(inst.manifests.find((m) => m.kind === 'ClusterRole')!) as Manifest & {
        rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
      };
      role.rules = role.rules.map((r) => ({ ...r, resources: r.resources.filter((x) => x !== 'websocketroutes/status') })).filter((r) => r.resources.length > 0);
      await applyOrThrow(cp, role);
      const before403 = forbidden(run.logs).length;

      // A spec change: a new generation whose status the controller must write, for a route and for a tunnel.
      const bump = async (plural: string, name: string, patch: unknown): Promise<number> => {
        const r = await send(cp, 'PATCH', routePath(inst.appNamespace, plural, name), JSON.stringify(patch), 'application/merge-patch+json');
        assert.equal(r.status, 200, r.body);
        return (JSON.parse(r.body) as Status).metadata.generation;
      };
      const routeGeneration = await bump('websocketroutes', 'echo', { spec: { hostnames: ['echo.example.test', 'echo2.example.test'] } });
      const tunnelGeneration = await bump('tcptunnels', 'echo-tcp', { spec: { idleTimeoutSeconds: 60 } });

      const refused = await eventually('a 403 in the log', () => {
        const lines = run.logs.filter((l) => l.msg === 'status not written' && /HTTP 403/.test(String(l.err)));
        return lines.length > 0 && forbidden(run.logs).length > before403 ? lines : undefined;
      }, { times: 1, timeoutMs: 30_000 });
      assert.equal(refused[0]?.kind, 'WebSocketRoute');
      assert.equal(refused[0]?.object, `${inst.appNamespace}/echo`);
      // The tunnel's status (a verb still granted) is written; the route's is not, and stays behind.
      await eventually('tunnel status at its new generation', async () => {
        const s = await getJson<Status>(cp, routePath(inst.appNamespace, 'tcptunnels', 'echo-tcp'));
        return s.status?.observedGeneration === tunnelGeneration ? true : undefined;
      }, { timeoutMs: 30_000 });
      await run.controller.resync();
      const route = await getJson<Status>(cp, routePath(inst.appNamespace, 'websocketroutes', 'echo'));
      assert.equal(route.metadata.generation, routeGeneration);
      assert.notEqual(route.status?.observedGeneration, routeGeneration);
      assert.ok(!run.logs.some((l) => l.msg === 'status not written' && l.kind !== 'WebSocketRoute'), 'only WebSocketRoute status was refused');
    });

    it('counts watch errors and stays unready, naming the kind, without list on tcptunnels', async () => {
      const release = 'wsgate-nolist';
      const nolist = await install(cp, { release, namespace: 'wsgate-nolist', appNamespace: 'app', ingressClass: 'wsgate-nolist' });
      const role = structuredClone(nolist.manifests.find((m) => m.kind === 'ClusterRole')!) as Manifest & {
        rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
      };
      role.rules = role.rules.map((r) =>
        r.resources.includes('tcptunnels') ? { ...r, resources: r.resources.filter((x) => x !== 'tcptunnels') } : r,
      ).filter((r) => r.resources.length > 0);
      role.rules.push({ apiGroups: ['wsgate.io'], resources: ['tcptunnels'], verbs: ['watch'] });
      await applyOrThrow(cp, role);
      const r = await runChartController(nolist, await serviceAccountKubeconfig(cp, nolist, dir));
      running.push(r);
      await eventually('TCPTunnel watch errors counted', async () => ((await metricValue(r.metrics, 'wsgate_controller_watch_errors_total', { kind: 'TCPTunnel' })) >= 2 ? true : undefined), { times: 1, timeoutMs: 30_000 });
      const ready = await readyz(r.adminPort);
      assert.equal(ready.status, 503);
      assert.match(ready.body, /informers not synced: TCPTunnel$/m);
      assert.ok(forbidden(r.logs).length > 0);
      for (const kind of KINDS.filter((k) => k !== 'TCPTunnel')) assert.equal(await metricValue(r.metrics, 'wsgate_controller_watch_errors_total', { kind }), 0, kind);
    });
  });

  describe('watching one namespace (controller.watchNamespace)', () => {
    it('lets wsgate controller do its whole job with a Role in that namespace and no 403', async () => {
      const inst = await install(cp, {
        release: 'wsgate-ns', namespace: 'wsgate-ns', appNamespace: 'team-a', ingressClass: 'wsgate-ns',
        values: { controller: { ingressClass: 'wsgate-ns', watchNamespace: 'team-a' } },
      });
      assert.deepEqual(inst.manifests.filter((m) => m.kind === 'Role').map((m) => `${m.metadata.namespace}/${m.metadata.name}`).sort(), [
        'team-a/wsgate-ns-watch',
        'wsgate-ns/wsgate-ns-leader',
      ]);
      await createWorkload(cp, inst.appNamespace, inst.ingressClass, await freePort());
      const run = await runChartController(inst, await serviceAccountKubeconfig(cp, inst, dir));
      running.push(run);
      await assertWholeJob(cp, inst, run);
    });
  });
});

// [issue 14] gatewayAPI.enabled: the controller (its ServiceAccount, the chart's ClusterRoles) accepts the GatewayClass,
// writes Gateway and route status and provisions a Gateway's proxies (ServiceAccount, Deployment, Service,
// ClusterRoleBinding to the proxies' ClusterRole) with no 403; a proxy, as the ServiceAccount the controller made
// and bound, lists and watches all it needs with no 403; without patch on httproutes/status the 403 is logged.
describe("the chart's Gateway API RBAC against kube-apiserver: sufficient and minimal", () => {
  const GROUP = 'gateway.networking.k8s.io';
  let cp: ControlPlane;
  let dir: string;
  let inst: Install;
  let run: RunningController;
  const running: { controller: Controller }[] = [];
  const gwPath = (plural: string, namespace: string, name: string): string => `/apis/${GROUP}/v1/namespaces/${namespace}/${plural}/${name}`;
  const create = async (path: string, body: object): Promise<void> => {
    const r = await send(cp, 'POST', path, JSON.stringify(body), 'application/json');
    assert.equal(r.status, 201, r.body);
  };
  interface GwStatus {
    metadata: { generation: number };
    status?: { conditions?: { type: string; status: string; observedGeneration?: number }[]; parents?: { conditions: { type: string; status: string }[] }[] };
  }

  before(async () => {
    cp = await startControlPlane();
    await installGatewayAPI(cp.kubeConfig());
    // Right after Established, lists answer 429 for a moment (docs/testing-kubernetes.md): wait until each is served,
    // so that the informers' error counters below count only refusals.
    for (const plural of ['gatewayclasses', 'gateways', 'httproutes', 'tlsroutes', 'tcproutes', 'referencegrants']) {
      await eventually(`${plural} served`, async () => ((await send(cp, 'GET', `/apis/${GROUP}/v1/${plural}`, undefined, '')).status === 200 ? true : undefined), { timeoutMs: 30_000, times: 1 });
    }
    dir = mkdtempSync(join(tmpdir(), 'wsgate-rbac-gw-'));
    inst = await install(cp, {
      release: 'wsgate',
      namespace: 'wsgate',
      appNamespace: 'gw-app',
      ingressClass: 'wsgate',
      values: { gatewayAPI: { enabled: true, proxy: { serviceType: 'ClusterIP' } } },
    });
    // The GatewayClass the chart creates after install (a hook), created here the same way.
    await applyOrThrow(cp, inst.manifests.find((m) => m.kind === 'GatewayClass')!);
    // The first create of a new CRD's objects waits out its 2 s settle time: done now, as admin.
    await eventually('a Gateway to be created', async () => {
      await create(`/apis/${GROUP}/v1/namespaces/gw-app/gateways`, {
        apiVersion: `${GROUP}/v1`, kind: 'Gateway', metadata: { name: 'edge', namespace: 'gw-app' },
        spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] },
      });
      return true;
    }, { times: 1, timeoutMs: 30_000 });
    await create(`/apis/${GROUP}/v1/namespaces/gw-app/httproutes`, {
      apiVersion: `${GROUP}/v1`, kind: 'HTTPRoute', metadata: { name: 'chat', namespace: 'gw-app' },
      spec: { parentRefs: [{ name: 'edge' }], rules: [{ backendRefs: [{ name: 'echo', port: 80 }] }] },
    });
    run = await runChartController(inst, await serviceAccountKubeconfig(cp, inst, dir));
    running.push(run);
  });

  after(async () => {
    for (const r of running.splice(0)) await r.controller.stop();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lets the controller write Gateway API status and provision a proxy with no 403', async () => {
    await eventually('leadership', () => (run.controller.isLeader ? true : undefined), { timeoutMs: 30_000, times: 1 });
    const current = (s: GwStatus, type: string): boolean =>
      s.status?.conditions?.some((c) => c.type === type && c.status === 'True' && c.observedGeneration === s.metadata.generation) === true;
    await eventually('the GatewayClass Accepted', async () => (current(await getJson<GwStatus>(cp, `/apis/${GROUP}/v1/gatewayclasses/wsgate`), 'Accepted') ? true : undefined), { timeoutMs: 30_000 });
    await eventually('the Gateway Accepted', async () => (current(await getJson<GwStatus>(cp, gwPath('gateways', 'gw-app', 'edge')), 'Accepted') ? true : undefined), { timeoutMs: 30_000 });
    await eventually('the HTTPRoute status written', async () => {
      const r = await getJson<GwStatus>(cp, gwPath('httproutes', 'gw-app', 'chat'));
      return r.status?.parents?.[0]?.conditions.some((c) => c.type === 'Accepted' && c.status === 'True') ? true : undefined;
    }, { timeoutMs: 30_000 });
    for (const path of [
      '/apis/apps/v1/namespaces/gw-app/deployments/wsgate-edge',
      '/api/v1/namespaces/gw-app/services/wsgate-edge',
      '/api/v1/namespaces/gw-app/serviceaccounts/wsgate-edge',
      '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/wsgate-gateway-gw-app-edge',
    ]) {
      await eventually(`${path} provisioned`, async () => ((await send(cp, 'GET', path, undefined, '')).status === 200 ? true : undefined), { timeoutMs: 30_000, times: 1 });
    }
    assert.deepEqual(forbidden(run.logs), []);
    for (const kind of ['GatewayClass', 'Gateway', 'HTTPRoute', 'TLSRoute', 'TCPRoute', 'ReferenceGrant', 'Namespace', 'Deployment']) {
      assert.equal(await metricValue(run.metrics, 'wsgate_controller_watch_errors_total', { kind }), 0, kind);
    }
  });

  it("lets a proxy, as the ServiceAccount the controller made and bound, watch all it needs with no 403", async () => {
    await eventually('the proxy binding', async () => ((await send(cp, 'GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/wsgate-gateway-gw-app-edge', undefined, '')).status === 200 ? true : undefined), { timeoutMs: 30_000, times: 1 });
    const proxyInstall: Install = { ...inst, namespace: 'gw-app', manifests: [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'wsgate-edge', namespace: 'gw-app' } }] };
    const kubeconfig = await serviceAccountKubeconfig(cp, proxyInstall, dir, 'wsgate-edge');
    const deployment = await getJson<{ spec: { template: { spec: { containers: { args: string[] }[] } } } }>(cp, '/apis/apps/v1/namespaces/gw-app/deployments/wsgate-edge');
    const [command, ...proxyArgs] = deployment.spec.template.spec.containers[0]!.args;
    assert.equal(command, 'controller');
    // Its listener (port 80) is left out of the table: what is tested is what it may read.
    const { controller: proxy, logs } = await startWithArgs([
      ...proxyArgs.filter((a) => !a.startsWith('--admin-addr=')),
      '--admin-addr=127.0.0.1:0',
      '--tunnel-host=127.0.0.1',
      `--kubeconfig=${kubeconfig}`,
    ]);
    running.push({ controller: proxy });
    await eventually('the proxy to have listed everything', () => (proxy.syncs > 0 ? true : undefined), { timeoutMs: 30_000, times: 1 });
    assert.deepEqual(forbidden(logs), []);
    assert.equal(proxy.isLeader, false);
  });

  it('shows a 403 and writes no route status once patch on httproutes/status is taken away', async () => {
    const role = structuredClone(inst.manifests.find((m) => m.kind === 'ClusterRole' && m.metadata.name === 'wsgate-gateway')!) as Manifest & {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    role.rules = role.rules.map((r) => ({ ...r, resources: r.resources.filter((x) => x !== 'httproutes/status') })).filter((r) => r.resources.length > 0);
    await applyOrThrow(cp, role);
    const r = await send(cp, 'PATCH', gwPath('httproutes', 'gw-app', 'chat'), JSON.stringify({ spec: { hostnames: ['chat.example.test'] } }), 'application/merge-patch+json');
    assert.equal(r.status, 200, r.body);
    await eventually('a 403 for the HTTPRoute status', () => (run.logs.some((l) => l.msg === 'gateway status or proxy not written' && l.kind === 'HTTPRoute' && /HTTP 403/.test(String(l.err))) ? true : undefined), { timeoutMs: 30_000, times: 1 });
  });
});

describe("the sidecar injector's RBAC against kube-apiserver (self-signed mode): sufficient and minimal", () => {
  const release = 'wsgate-si';
  const namespace = 'wsgate-si';
  const NAME = 'wsgate-si-sidecar-injector';
  const secretPath = `/api/v1/namespaces/${namespace}/secrets/${NAME}-tls`;
  const configPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`;
  let cp: ControlPlane;
  let dir: string;
  let inst: Install;
  let kubeconfig: string;
  let token: string;
  const webhooks: Webhook[] = [];

  interface RunningWebhook {
    readonly webhook: Webhook;
    readonly metrics: WebhookMetrics;
    readonly logs: Record<string, unknown>[];
  }
  let run: RunningWebhook;

  /** `wsgate webhook` in-process with the chart Deployment's args, listeners on loopback port 0, and the ServiceAccount. */
  async function runChartWebhook(): Promise<RunningWebhook> {
    const deployment = inst.manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === NAME)!;
    const [command, ...chartArgs] = podSpec(deployment).containers[0]!.args;
    assert.equal(command, 'webhook');
    const flags = parseWebhookFlags([
      ...chartArgs.filter((a) => !a.startsWith('--listen=') && !a.startsWith('--admin-addr=')),
      '--listen=127.0.0.1:0',
      '--admin-addr=127.0.0.1:0',
      `--kubeconfig=${kubeconfig}`,
    ], {});
    assert.ok(!flags.help);
    assert.equal(flags.certificates.kind, 'self-signed');
    const logs: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const metrics = createWebhookMetrics('test', { defaultMetrics: false });
    const webhook = await startWebhook(flags, createLogger('debug', sink), metrics);
    webhooks.push(webhook);
    return { webhook, metrics, logs };
  }

  const secretCert = async (): Promise<X509Certificate> => {
    const s = await getJson<{ type: string; data: Record<string, string> }>(cp, secretPath);
    assert.equal(s.type, 'kubernetes.io/tls');
    return new X509Certificate(Buffer.from(s.data['tls.crt']!, 'base64'));
  };
  const caBundle = async (): Promise<string | undefined> =>
    (await getJson<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(cp, configPath)).webhooks[0]?.clientConfig.caBundle;
  const servesFor = (cert: X509Certificate): string[] => (cert.subjectAltName ?? '').split(', ').map((s) => s.replace(/^DNS:/, '')).sort();
  const updates = (r: RunningWebhook, result: string): Promise<number> => metricValue(r.metrics as unknown as Metrics, 'wsgate_webhook_ca_bundle_updates_total', { result });

  before(async () => {
    cp = await startControlPlane();
    dir = mkdtempSync(join(tmpdir(), 'wsgate-rbac-injector-'));
    const manifests = render({ release, namespace, values: { sidecarInjector: { enabled: true } } });
    await applyOrThrow(cp, ns(namespace));
    // What helm installs for the injector: its identity, its permissions, and the webhook configuration (no caBundle).
    for (const m of manifests.filter((x) => x.metadata.name === NAME && [...INSTALLED, 'MutatingWebhookConfiguration'].includes(x.kind))) await applyOrThrow(cp, m);
    inst = { release, namespace, appNamespace: namespace, ingressClass: 'wsgate-si', manifests };
    kubeconfig = await serviceAccountKubeconfig(cp, inst, dir, NAME);
    token = await serviceAccountToken(cp, namespace, NAME);
    run = await runChartWebhook();
  });
  after(async () => {
    for (const w of webhooks.splice(0)) await w.stop();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lets wsgate webhook write its Secret and the caBundle of its configuration as the injector\'s ServiceAccount with no 403', async () => {
    const cert = await secretCert();
    assert.deepEqual(servesFor(cert), [`${NAME}.${namespace}.svc`, `${NAME}.${namespace}.svc.cluster.local`]);
    assert.equal(Buffer.from((await caBundle()) ?? '', 'base64').toString(), cert.toString());
    assert.equal(await updates(run, 'success'), 1);
    assert.equal(await updates(run, 'failure'), 0);
    assert.deepEqual(forbidden(run.logs), []);
  });

  it('renews a Secret that no longer fits, re-creates a deleted one and restores a reset caBundle, with no 403', async () => {
    // A certificate for other names (as after a rename): replaced (get, update).
    const stale = generateSelfSigned({ commonName: 'stale', dnsNames: ['elsewhere.example.test'] });
    const put = await send(cp, 'PUT', secretPath, JSON.stringify({
      apiVersion: 'v1', kind: 'Secret', metadata: { name: `${NAME}-tls`, namespace }, type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from(stale.certPem).toString('base64'), 'tls.key': Buffer.from(stale.keyPem).toString('base64') },
    }), 'application/json');
    assert.equal(put.status, 200, put.body);
    await run.webhook.reconcile();
    const renewed = await secretCert();
    assert.ok(servesFor(renewed).includes(`${NAME}.${namespace}.svc`));
    assert.equal(Buffer.from((await caBundle()) ?? '', 'base64').toString(), renewed.toString());

    // Deleted (create), and the caBundle reset as a helm upgrade without lookup would (patch).
    assert.equal((await send(cp, 'DELETE', secretPath, undefined, '')).status, 200);
    const reset = await send(cp, 'PATCH', configPath, JSON.stringify([{ op: 'remove', path: '/webhooks/0/clientConfig/caBundle' }]), 'application/json-patch+json');
    assert.equal(reset.status, 200, reset.body);
    await run.webhook.reconcile();
    const recreated = await secretCert();
    assert.notEqual(recreated.fingerprint256, renewed.fingerprint256);
    assert.equal(Buffer.from((await caBundle()) ?? '', 'base64').toString(), recreated.toString());
    assert.equal(await updates(run, 'failure'), 0);
    assert.deepEqual(forbidden(run.logs), []);
  });

  it('refuses the injector\'s ServiceAccount any other Secret, listing or deleting Secrets, and any other webhook configuration', async () => {
    const sa = { name: `system:serviceaccount:${namespace}:${NAME}`, groups: [], token };
    const refused: [string, string, string?][] = [
      ['GET', `/api/v1/namespaces/${namespace}/secrets/other`],
      ['GET', `/api/v1/namespaces/${namespace}/secrets`],
      ['GET', `/api/v1/namespaces/default/secrets/${NAME}-tls`],
      ['DELETE', secretPath],
      ['GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations'],
      ['GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other'],
      ['PATCH', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/other', '[]'],
      ['DELETE', configPath],
      ['GET', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/other'],
      ['GET', `/api/v1/namespaces/${namespace}/pods`],
    ];
    const statuses = [];
    for (const [method, path, body] of refused) {
      const r = await send(cp, method, path, body, 'application/json-patch+json', sa);
      statuses.push(`${method} ${path}: ${r.status}`);
    }
    assert.deepEqual(statuses, refused.map(([method, path]) => `${method} ${path}: 403`));
    // What it was granted, the same way, for contrast.
    assert.equal((await send(cp, 'GET', secretPath, undefined, '', sa)).status, 200);
    assert.equal((await send(cp, 'GET', configPath, undefined, '', sa)).status, 200);
  });

  it('logs the 403 and counts a failed caBundle update once patch on its webhook configuration is taken away', async () => {
    const role = structuredClone(inst.manifests.find((m) => m.kind === 'ClusterRole' && m.metadata.name === NAME)!) as Manifest & { rules: { verbs: string[] }[] };
    role.rules = role.rules.map((r) => ({ ...r, verbs: r.verbs.filter((v) => v !== 'patch') }));
    await applyOrThrow(cp, role);
    const reset = await send(cp, 'PATCH', objectPath(inst.manifests.find((m) => m.kind === 'MutatingWebhookConfiguration')!),
      JSON.stringify([{ op: 'remove', path: '/webhooks/0/clientConfig/caBundle' }]), 'application/json-patch+json');
    assert.equal(reset.status, 200, reset.body);
    // RBAC changes reach the authorizer's cache within a moment: reconcile until the refusal shows.
    await eventually('a failed caBundle update', async () => {
      await run.webhook.reconcile();
      return (await updates(run, 'failure')) > 0 ? true : undefined;
    }, { times: 1, timeoutMs: 30_000 });
    assert.ok(run.logs.some((l) => l.msg === 'caBundle not updated; retrying at the next reconcile' && /403|forbidden/i.test(JSON.stringify(l.err))), 'the 403 is logged');
    assert.ok(forbidden(run.logs).length > 0);
    assert.equal(await caBundle(), undefined);
  });
});
