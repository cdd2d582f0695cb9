// Shared pieces of the controller tests: object builders, a controller on loopback ports, and convergence checks
// (a condition must hold several times in a row before a deadline: gateway-api's AwaitConvergence).
import { once } from 'node:events';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { type ClientOptions } from 'ws';
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  NetworkingV1Api,
  type KubeConfig,
  type V1EndpointSlice,
  type V1Service,
} from '@kubernetes/client-node';
import { API_VERSION } from '../../src/api/types.ts';
import { startController, type Controller, type ControllerOptions } from '../../src/controller/controller.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';

export const defaultCertificate = generateSelfSigned({ commonName: 'wsgate controller test' });

export interface Apis {
  core: CoreV1Api;
  networking: NetworkingV1Api;
  discovery: DiscoveryV1Api;
  custom: CustomObjectsApi;
}

export function apis(kc: KubeConfig): Apis {
  return {
    core: kc.makeApiClient(CoreV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    discovery: kc.makeApiClient(DiscoveryV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

export function service(namespace: string, name: string): V1Service {
  return {
    metadata: { name, namespace },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  };
}

/** An EndpointSlice `<service>-1` on port 8080; every address ready except those in `notReady`. */
export function endpointSlice(namespace: string, serviceName: string, addresses: string[], notReady: string[] = []): V1EndpointSlice {
  return {
    metadata: { name: `${serviceName}-1`, namespace, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: !notReady.includes(a) } })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

export function webSocketRoute(
  namespace: string,
  name: string,
  o: { host: string; service: string; path?: string; tlsSecret?: string; policy?: Record<string, unknown> },
) {
  return {
    apiVersion: API_VERSION,
    kind: 'WebSocketRoute',
    metadata: { name, namespace },
    spec: {
      hostnames: [o.host],
      ...(o.tlsSecret === undefined ? {} : { tls: { secretName: o.tlsSecret } }),
      rules: [{ path: { type: 'Prefix', value: o.path ?? '/' }, backends: [{ service: o.service, port: 80 }] }],
      ...(o.policy === undefined ? {} : { policy: o.policy }),
    },
  };
}

export function tcpTunnel(namespace: string, name: string, o: { port: number; service: string; sniHostnames?: string[] }) {
  return {
    apiVersion: API_VERSION,
    kind: 'TCPTunnel',
    metadata: { name, namespace },
    spec: {
      port: o.port,
      ...(o.sniHostnames ? { sniHostnames: o.sniHostnames } : {}),
      backends: [{ service: o.service, port: 80 }],
    },
  };
}

/** A kubernetes.io/tls Secret. */
export function tlsSecret(namespace: string, name: string, pem: { certPem: string; keyPem: string }) {
  return {
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(pem.certPem).toString('base64'), 'tls.key': Buffer.from(pem.keyPem).toString('base64') },
  };
}

export interface RouteObject {
  metadata: { resourceVersion: string; generation: number; uid: string };
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; observedGeneration?: number; lastTransitionTime?: string }[];
  };
}

export async function readRoute(
  a: Apis, namespace: string, name: string, plural: 'websocketroutes' | 'tcptunnels' = 'websocketroutes',
): Promise<RouteObject> {
  return (await a.custom.getNamespacedCustomObject({ group: 'wsgate.io', version: 'v1alpha1', namespace, plural, name })) as RouteObject;
}

export function condition(r: RouteObject, type: string) {
  return r.status?.conditions?.find((c) => c.type === type);
}

export interface TestController {
  readonly controller: Controller;
  readonly metrics: Metrics;
  readonly httpPort: number;
  readonly adminPort: number;
  /** The controller's log lines at warn and above (all of them with WSGATE_TEST_LOG=1, which also prints them). */
  readonly logs: readonly Record<string, unknown>[];
}

export async function startTestController(
  kc: KubeConfig,
  o: Partial<Omit<ControllerOptions, 'kc' | 'log' | 'metrics' | 'leaderElection'>> & {
    leaseName: string;
    identity?: string;
    /** [3000, 2000, 200] Lease timing in ms: short, so that tests need not wait for the production 15 s. */
    leaseTiming?: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  },
): Promise<TestController> {
  const metrics = createMetrics('test', { defaultMetrics: false });
  const { leaseName, identity, leaseTiming, ...rest } = o;
  const logs: Record<string, unknown>[] = [];
  const verbose = process.env.WSGATE_TEST_LOG === '1';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (verbose) process.stderr.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const controller = await startController({
    kc,
    log: createLogger(verbose ? 'debug' : 'warn', sink),
    metrics,
    ingressClass: 'wsgate',
    httpAddr: { host: '127.0.0.1', port: 0 },
    adminAddr: { host: '127.0.0.1', port: 0 },
    tunnelHost: '127.0.0.1',
    handshakeTimeoutMs: 5000,
    defaultCertificate,
    debounceMs: 20,
    maxDebounceMs: 200,
    resyncMs: 0,
    informers: { backoff: { baseMs: 100, maxMs: 1000 } },
    leaderElection: {
      namespace: 'default',
      name: leaseName,
      ...(leaseTiming ?? { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 200 }),
      ...(identity === undefined ? {} : { identity }),
    },
    ...rest,
  });
  const a = controller.gateway.addresses();
  return { controller, metrics, httpPort: a.http?.port ?? 0, adminPort: a.admin?.port ?? 0, logs };
}

/**
 * Waits until `check` returns a value other than undefined `times` times in a row (polling every `everyMs`),
 * and returns the last one; fails with `what` and the last error after `timeoutMs`.
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  o: { timeoutMs?: number; times?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  const times = o.times ?? 3;
  let streak = 0;
  let last: unknown = 'never checked';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) {
        if (++streak >= times) return v;
      } else {
        streak = 0;
        last = 'not yet';
      }
    } catch (err) {
      streak = 0;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : String(last)})`);
    await sleep(o.everyMs ?? 100);
  }
}

/** One WebSocket round trip through wsgate: the echo, or `HTTP <status>` when the handshake is refused. */
export function exchange(port: number, host: string, path: string, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host }, handshakeTimeout: 3000 });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('no answer in 3 s'));
    }, 3000);
    ws.once('open', () => ws.send(message));
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve(data.toString());
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      resolve(`HTTP ${res.statusCode}`);
      ws.terminate();
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The value of one series in the metrics registry (0 when absent). */
export async function metricValue(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  const v = values.find((x) => Object.entries(labels).every(([k, val]) => String(x.labels[k]) === val));
  return v?.value ?? 0;
}

/** A TCP port the OS handed out for port 0 on 127.0.0.1, released again (for TCPTunnel spec.port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** A WebSocket kept open through wsgate; `closed` says why it closed, if it did (tests fail on it). */
export interface HeldConnection {
  readonly ws: WebSocket;
  readonly closed: string | undefined;
  /** Sends `message` and resolves with the answer (3 s at most). */
  echo(message: string): Promise<string>;
  /** Closes it on purpose (not counted as `closed`). */
  close(): void;
}

export async function holdConnection(url: string, host: string, options: ClientOptions = {}): Promise<HeldConnection> {
  const ws = new WebSocket(url, { ...options, headers: { host }, handshakeTimeout: 3000 });
  let closed: string | undefined;
  let closing = false;
  ws.once('close', (code, reason) => {
    if (!closing) closed = `closed with ${code} ${reason.toString()}`;
  });
  await once(ws, 'open', { signal: AbortSignal.timeout(5000) });
  return {
    ws,
    get closed() {
      return closed;
    },
    async echo(message) {
      const reply = once(ws, 'message', { signal: AbortSignal.timeout(3000) });
      ws.send(message);
      return String((await reply)[0]);
    },
    close() {
      closing = true;
      ws.close();
    },
  };
}

/** The endpoint addresses of the route serving `host` in the controller's live table, sorted. */
export function liveEndpoints(t: TestController, host: string): string[] | undefined {
  const vh = t.controller.gateway.table.virtualHosts.find((v) => v.hostname === host);
  return vh?.routes.flatMap((r) => r.backends.flatMap((b) => b.endpoints.map((e) => e.address))).sort();
}

/** Waits (bounded, several checks in a row) until the controller is ready and holds the leader Lease. */
export async function awaitReadyLeader(t: TestController): Promise<void> {
  await eventually('the controller to be ready and leader', () =>
    t.controller.gateway.notReady() === undefined && t.controller.isLeader ? true : undefined,
  );
}
