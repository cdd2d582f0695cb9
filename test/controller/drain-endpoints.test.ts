// Issue 11, against a real API server: an endpoint that the EndpointSlice controller marks terminating (a pod in its
// graceful termination: ready false, serving true, terminating true) has its tunnels closed with 1001, spread over
// the route's endpointDrainSeconds, before the pod stops. Its clients reconnect to the other endpoints, and no
// tunnel on those is touched. `wsgate controller` runs as a process, with --workers 1 and with the default (the
// cores this machine gives it: 2 here), so that the drain is proven where each worker schedules its own share.
// Both a WebSocketRoute (policy.endpointDrainSeconds) and an Ingress (wsgate.io/endpoint-drain-seconds).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import WebSocket from 'ws';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { apis, eventually, exchange, freePort, service, webSocketRoute, type Apis } from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NAMES = ['a', 'b', 'c'] as const;
/** The endpoint that turns terminating. */
const LEAVING = 'c';

/**
 * An EndpointSlice `<service>-1` on port 8080 with one endpoint per address; `terminating` ones carry the
 * conditions the EndpointSlice controller writes while a pod terminates gracefully.
 */
function slice(namespace: string, serviceName: string, addresses: readonly string[], terminating: readonly string[] = []): V1EndpointSlice {
  return {
    metadata: { name: `${serviceName}-1`, namespace, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType: 'IPv4',
    endpoints: addresses.map((a) => ({
      addresses: [a],
      conditions: terminating.includes(a) ? { ready: false, serving: true, terminating: true } : { ready: true, serving: true, terminating: false },
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

function ingress(namespace: string, name: string, host: string, serviceName: string, drainSeconds: number) {
  return {
    metadata: { name, namespace, annotations: { 'wsgate.io/endpoint-drain-seconds': String(drainSeconds) } },
    spec: {
      ingressClassName: 'wsgate',
      rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: serviceName, port: { number: 80 } } } }] } }],
    },
  };
}

/** A client that learns its endpoint from the first echo, records how it closed, and then reconnects at once. */
interface DrainClient {
  readonly endpoint: string;
  /** Set when wsgate closed it: the code and when (performance.now()). */
  closed: { code: number; at: number } | undefined;
  /** The reconnection made when it closed: which endpoint answered it. */
  reconnectedTo: Promise<string> | undefined;
  ws: WebSocket;
}

/** One echo: resolves with the name of the endpoint that answered (`name:message`). */
async function echoedBy(ws: WebSocket, message: string): Promise<string> {
  const reply = once(ws, 'message', { signal: AbortSignal.timeout(5000) });
  ws.send(message);
  const text = String((await reply)[0]);
  assert.ok(text.endsWith(`:${message}`), `echo ${text}`);
  return text.slice(0, text.indexOf(':'));
}

async function connect(port: number, host: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host }, handshakeTimeout: 5000 });
  await once(ws, 'open', { signal: AbortSignal.timeout(5000) });
  return ws;
}

async function openClients(port: number, host: string, n: number): Promise<DrainClient[]> {
  const clients: DrainClient[] = [];
  for (let i = 0; i < n; i++) {
    const ws = await connect(port, host);
    const c: DrainClient = { endpoint: await echoedBy(ws, `hello ${i}`), closed: undefined, reconnectedTo: undefined, ws };
    ws.once('close', (code) => {
      c.closed = { code, at: performance.now() };
      // As a real client does: straight back, through the same wsgate.
      c.reconnectedTo = (async () => {
        const again = await connect(port, host);
        c.ws = again;
        return echoedBy(again, `back ${i}`);
      })();
    });
    clients.push(c);
  }
  return clients;
}

function countBy(clients: readonly DrainClient[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(NAMES.map((x) => [x, 0]));
  for (const c of clients) out[c.endpoint] = (out[c.endpoint] ?? 0) + 1;
  return out;
}

/** Sum of the samples of `name` whose labels include all of `labels`, from a /metrics text. */
function sampleSum(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const set = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

let cp: ControlPlane;
let net: PodNetwork;
let api: Apis;
let ips: string[];
const backends: { stop(): Promise<void> }[] = [];

before(async () => {
  cp = await startControlPlane();
  net = createPodNetwork(7);
  ips = NAMES.map((_, i) => net.podIP(i));
  for (const [i, name] of NAMES.entries()) backends.push(await net.startEchoBackend(ips[i]!, 8080, name));
  api = apis(cp.kubeConfig());
});

after(async () => {
  for (const b of backends) await b.stop();
  net?.destroy();
  await cp?.stop();
});

for (const workers of ['1', undefined] as const) {
  const label = workers === undefined ? 'default workers' : `--workers ${workers}`;
  const ns = workers === undefined ? 'drain-default' : `drain-w${workers}`;
  const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: ns, plural: 'websocketroutes' };

  describe(`an endpoint marked terminating, wsgate controller ${label}`, () => {
    let child: ChildProcess;
    let httpPort: number;
    let admin: string;
    /** Data-plane processes: each balances and drains its own connections. */
    let workerCount = 1;

    before(async () => {
      await api.core.createNamespace({ body: { metadata: { name: ns } } });
      for (const svc of ['chat', 'web']) {
        await api.core.createNamespacedService({ namespace: ns, body: service(ns, svc) });
        await api.discovery.createNamespacedEndpointSlice({ namespace: ns, body: slice(ns, svc, ips) });
      }
      const route = webSocketRoute(ns, 'chat', { host: 'chat.test', service: 'chat' });
      await api.custom.createNamespacedCustomObject({ ...WSR, body: { ...route, spec: { ...route.spec, policy: { endpointDrainSeconds: 5 } } } });
      await api.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'web', 'web.test', 'web', 3) });
      httpPort = await freePort();
      const adminPort = await freePort();
      admin = `http://127.0.0.1:${adminPort}`;
      child = spawn(
        process.execPath,
        ['bin/wsgate.js', 'controller', '--kubeconfig', cp.kubeconfigPath, '--namespace', ns,
          ...(workers === undefined ? [] : ['--workers', workers]),
          '--http-addr', `127.0.0.1:${httpPort}`, '--https-addr', 'off', '--admin-addr', `127.0.0.1:${adminPort}`,
          '--leader-election-namespace', ns, '--leader-election-id', `${ns}-test`, '--log-level', 'warn', '--drain-timeout', '2s'],
        { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
      );
      await eventually('the controller ready, both routes with all three endpoints', async () => {
        if (child.exitCode !== null) throw new Error(`wsgate controller exited with ${child.exitCode}`);
        if ((await fetch(`${admin}/readyz`)).status !== 200) return undefined;
        const routes = await (await fetch(`${admin}/debug/routes`)).text();
        if (!ips.every((ip) => routes.split(`"${ip}"`).length - 1 === 2)) return undefined;
        for (const host of ['chat.test', 'web.test']) if (!(await exchange(httpPort, host, '/', 'probe')).endsWith(':probe')) return undefined;
        return true;
      }, { timeoutMs: 30_000 });
      if (workers === undefined) workerCount = ((await (await fetch(`${admin}/debug/workers`)).json()) as unknown[]).length;
    });

    after(async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });

    /**
     * Opens `n` clients on `host` (spread evenly by LeastConnections), marks LEAVING terminating in the service's
     * EndpointSlice and checks the drain: its clients, and only them, closed with 1001 over at least half of
     * `windowSeconds`; their reconnections on the other endpoints; the others still echoing on theirs.
     */
    async function drainOneEndpoint(t: TestContext, host: string, serviceName: string, route: string, n: number, windowSeconds: number): Promise<void> {
      const clients = await openClients(httpPort, host, n);
      const counts = countBy(clients);
      // Each worker spreads its own connections evenly: the totals differ by at most one per worker.
      assert.ok(Math.max(...Object.values(counts)) - Math.min(...Object.values(counts)) <= workerCount, JSON.stringify(counts));
      const leaving = clients.filter((c) => c.endpoint === LEAVING);
      const staying = clients.filter((c) => c.endpoint !== LEAVING);

      await api.discovery.replaceNamespacedEndpointSlice({
        namespace: ns, name: `${serviceName}-1`, body: slice(ns, serviceName, ips, [ips[NAMES.indexOf(LEAVING)]!]),
      });
      // Bounded: the window plus the close handshakes and the watch's delay.
      await eventually(`the ${leaving.length} tunnels on ${LEAVING} closed`, () =>
        leaving.every((c) => c.closed !== undefined) ? true : undefined, { timeoutMs: (windowSeconds + 15) * 1000, times: 1, everyMs: 50 });

      const codes = [...new Set(leaving.map((c) => c.closed!.code))];
      assert.deepEqual(codes, [1001], 'every client of the terminating endpoint saw 1001 Going Away (none 1006)');
      const times = leaving.map((c) => c.closed!.at).sort((x, y) => x - y);
      const spreadMs = times.at(-1)! - times[0]!;
      assert.ok(spreadMs >= (windowSeconds * 1000) / 2, `closes spread over ${Math.round(spreadMs)} ms of a ${windowSeconds} s window, not at once`);
      t.diagnostic(`${workerCount} worker(s): ${JSON.stringify(counts)}; ${leaving.length} closes with 1001 spread over ${Math.round(spreadMs)} ms`);

      const landed = await Promise.all(leaving.map((c) => c.reconnectedTo!));
      assert.ok(landed.every((e) => e !== LEAVING), `reconnections landed on ${JSON.stringify(countBy(leaving.map((c, i) => ({ ...c, endpoint: landed[i]! }))))}`);

      // The other endpoints' tunnels: none closed, each still answered by the endpoint it started on.
      assert.deepEqual(staying.filter((c) => c.closed !== undefined).map((c) => `${c.endpoint}: ${c.closed!.code}`), []);
      const answers = await Promise.all(staying.map((c, i) => echoedBy(c.ws, `still ${i}`)));
      assert.deepEqual(answers, staying.map((c) => c.endpoint));

      // Counted with their reason, summed over the workers: exactly the terminating endpoint's tunnels.
      const text = await (await fetch(`${admin}/metrics`)).text();
      assert.equal(sampleSum(text, 'wsgate_connections_total', { route, outcome: 'endpoint_draining' }), leaving.length, 'endpoint_draining closes');

      for (const c of clients) {
        c.ws.removeAllListeners('close');
        c.ws.close();
      }
      await eventually('every tunnel of the case closed', async () => {
        const m = await (await fetch(`${admin}/metrics`)).text();
        return sampleSum(m, 'wsgate_connections_active', { route }) === 0 ? true : undefined;
      });
    }

    it('closes the tunnels of a terminating endpoint (300 WebSockets over 3) of a WebSocketRoute with 1001, spread over endpointDrainSeconds, and no other', async (t) => {
      await drainOneEndpoint(t, 'chat.test', 'chat', `${ns}/chat`, 300, 5);
    });

    it('does the same for an Ingress with the wsgate.io/endpoint-drain-seconds annotation', async (t) => {
      await drainOneEndpoint(t, 'web.test', 'web', `${ns}/web`, 30, 3);
    });

    it('stops on SIGTERM with exit code 0', async () => {
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0);
    });
  });
}
