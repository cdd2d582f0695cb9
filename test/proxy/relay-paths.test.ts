// One suite, both relays of L4 tunnels (issue 13, direction 3): the native relay (native/relay.c, splice on its own
// thread) and the JavaScript relay (relay.ts) must behave the same to the peers and to the registry: bytes, half-close,
// backpressure, graceful drain, idle timeout, byte counters, and no descriptor lost or closed twice. Real sockets on
// loopback: a client, wsgate's L4Proxy, a backend.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import diagnostics from 'node:diagnostics_channel';
import { describe, test, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { DEFAULT_POLICY, freezeTable, type Endpoint, type TunnelRoute } from '../../src/model/table.ts';
import { Balancer } from '../../src/proxy/balancer.ts';
import { L4Proxy } from '../../src/proxy/l4.ts';
import { ConnectionLimits } from '../../src/proxy/limits.ts';
import { chooseRelay, nativePipes, nativeTunnels, type RelayChoice } from '../../src/proxy/native-relay.ts';
import { TunnelRegistry } from '../../src/proxy/registry.ts';
import { converge } from '../helpers/l7-peers.ts';
import { metricSum } from '../helpers/metrics.ts';
import { Peer } from '../helpers/peer.ts';

const LOCALHOST = '127.0.0.1';
// A full collection on demand, to see what a live tunnel still holds (WeakRefs cleared only by a collection).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const RELAYS: readonly RelayChoice[] = ['native', 'js'];

// The native path must really be native here: an addon that does not load fails this suite instead of testing
// the JavaScript relay twice (npm ci builds it; scripts/native/build.sh says why when it cannot).
const loaded = chooseRelay('native');
test('the native relay addon loads (npm ci builds it)', () => {
  assert.equal(loaded.fallback, undefined, `native relay did not load: ${loaded.fallback}`);
  assert.equal(loaded.relay, 'native');
});

// --- fixtures --------------------------------------------------------------------------------------------------

function tunnelRoute(port: number, endpoint: Endpoint, extras: Partial<TunnelRoute> = {}): TunnelRoute {
  return {
    id: 'TCPTunnel/default/t',
    route: 'default/t',
    port,
    sniHostnames: [],
    backends: [{ name: 'default/t:9000', weight: 1, endpoints: [endpoint] }],
    proxyProtocol: 'None',
    idleTimeoutSeconds: 0,
    connectTimeoutSeconds: 5,
    maxConnections: 0,
    endpointDrainSeconds: DEFAULT_POLICY.endpointDrainSeconds,
    onRemoval: DEFAULT_POLICY.onRemoval,
    ...extras,
  };
}


interface Harness {
  readonly metrics: Metrics;
  readonly registry: TunnelRegistry;
  readonly port: number;
  /** The backend's side of the next connection it accepts. */
  nextBackend(): Promise<Peer>;
  connect(): Promise<Peer>;
}

/** An L4 proxy on a free port in front of a half-open backend, its registry on `relay`. Closed after the test. */
async function start(t: TestContext, relay: RelayChoice, route: Partial<TunnelRoute> = {}, sweepIntervalMs = 1000): Promise<Harness> {
  const backendServer = net.createServer({ allowHalfOpen: true });
  const accepted: Peer[] = [];
  const waiting: ((p: Peer) => void)[] = [];
  const backendSockets = new Set<net.Socket>();
  backendServer.on('connection', (s: net.Socket) => {
    backendSockets.add(s);
    s.once('close', () => backendSockets.delete(s));
    const p = new Peer(s);
    const w = waiting.shift();
    if (w) w(p);
    else accepted.push(p);
  });
  backendServer.listen(0, LOCALHOST);
  await once(backendServer, 'listening');
  const endpoint = { address: LOCALHOST, port: (backendServer.address() as AddressInfo).port };

  const metrics = createMetrics('test', { defaultMetrics: false });
  const log = silentLogger();
  const balancer = new Balancer();
  const limits = new ConnectionLimits();
  const registry = new TunnelRegistry(metrics, log, sweepIntervalMs, { balancer, limits });
  registry.relay = relay;
  const proxy = new L4Proxy({ metrics, log, registry, balancer, limits, host: LOCALHOST });
  // Port 0 is not a tunnel port: bind a free one, release it, and give it to the table.
  const probe = net.createServer().listen(0, LOCALHOST);
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  probe.close();
  await once(probe, 'close');
  await proxy.update(freezeTable({ virtualHosts: [], certificates: [], tunnels: [tunnelRoute(port, endpoint, route)] }));
  assert.deepEqual(proxy.listening(), [port]);
  const clients = new Set<net.Socket>();
  t.after(async () => {
    await proxy.close();
    await registry.closeAll();
    registry.stop();
    for (const s of clients) s.destroy();
    for (const s of backendSockets) s.destroy();
    backendServer.close();
  });
  return {
    metrics,
    registry,
    port,
    nextBackend: () => {
      const p = accepted.shift();
      return p ? Promise.resolve(p) : new Promise((resolve) => waiting.push(resolve));
    },
    connect: async () => {
      const socket = net.connect({ host: LOCALHOST, port, allowHalfOpen: true });
      clients.add(socket);
      const peer = new Peer(socket);
      await once(socket, 'connect');
      return peer;
    },
  };
}

/** A tunnel through the harness, on the relay the harness asked for (checked: the test would prove nothing else). */
async function openTunnel(h: Harness, relay: RelayChoice): Promise<{ client: Peer; backend: Peer }> {
  const before = nativeTunnels();
  const client = await h.connect();
  const backend = await h.nextBackend();
  // The handover happens when the tunnel opens, before the backend could read a byte from it.
  await roundTrip(client, backend, Buffer.from('ping'));
  assert.equal(nativeTunnels() - before, relay === 'native' ? 1 : 0, `the tunnel is on the ${relay} relay`);
  return { client, backend };
}

async function roundTrip(client: Peer, backend: Peer, data: Buffer): Promise<void> {
  client.socket.write(data);
  assert.deepEqual(await backend.read(data.length), data);
  backend.socket.write(data);
  assert.deepEqual(await client.read(data.length), data);
}

async function outcomes(m: Metrics): Promise<Record<string, number>> {
  const metric = m.registry.getSingleMetric('wsgate_connections_total')!;
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) out[String(v.labels['outcome'])] = v.value;
  return out;
}

/** Descriptors open in this process, less the native relay's pooled pipes (two each: kept for reuse on purpose). */
function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length - 2 * nativePipes().pooled;
}

// --- the suite, once per relay ---------------------------------------------------------------------------------

for (const relay of RELAYS) {
  describe(`L4 tunnels on the ${relay} relay`, () => {
    test('relays 4 MiB each way byte for byte, and counts exactly the bytes relayed', async (t) => {
      const h = await start(t, relay);
      const { client, backend } = await openTunnel(h, relay);
      const up = randomBytes(4 << 20);
      const down = randomBytes(4 << 20);
      client.socket.write(up);
      backend.socket.write(down);
      const [gotUp, gotDown] = await Promise.all([backend.read(up.length), client.read(down.length)]);
      assert.ok(gotUp.equals(up), 'client → backend bytes intact');
      assert.ok(gotDown.equals(down), 'backend → client bytes intact');
      client.socket.end();
      await backend.readToEnd();
      backend.socket.end();
      await client.readToEnd();
      await h.registry.drained();
      assert.equal(await metricSum(h.metrics, 'wsgate_tunnel_bytes_total', { direction: 'upstream' }), up.length + 4);
      assert.equal(await metricSum(h.metrics, 'wsgate_tunnel_bytes_total', { direction: 'downstream' }), down.length + 4);
      assert.deepEqual(await outcomes(h.metrics), { completed: 1 });
    });

    test('relays 8 tunnels at once, each byte for byte, none starved', async (t) => {
      const h = await start(t, relay);
      const tunnels: { client: Peer; backend: Peer }[] = [];
      for (let i = 0; i < 8; i++) tunnels.push(await openTunnel(h, relay));
      await Promise.all(
        tunnels.map(async ({ client, backend }) => {
          const down = randomBytes(8 << 20);
          const up = randomBytes(1 << 20);
          backend.socket.end(down);
          client.socket.end(up);
          const [gotDown, gotUp] = await Promise.all([client.readToEnd(), backend.readToEnd()]);
          assert.ok(gotDown.equals(down), 'backend → client intact');
          assert.ok(gotUp.equals(up), 'client → backend intact');
        }),
      );
      await h.registry.drained();
      assert.deepEqual(await outcomes(h.metrics), { completed: 8 });
    });

    test('the sweep counts bytes of a live tunnel as they flow', async (t) => {
      const h = await start(t, relay, {}, 50);
      const { client, backend } = await openTunnel(h, relay);
      const data = randomBytes(300_000);
      client.socket.write(data);
      await backend.read(data.length);
      await converge(
        async () => (await metricSum(h.metrics, 'wsgate_tunnel_bytes_total', { direction: 'upstream' })) === data.length + 4,
        'upstream bytes counted by the sweep',
        3,
        10_000,
      );
      assert.equal(h.registry.size, 1);
    });

    test('carries a client half-close: the backend sees the end and writes on, the client reads it all', async (t) => {
      const h = await start(t, relay);
      const { client, backend } = await openTunnel(h, relay);
      client.socket.end('last words');
      assert.equal((await backend.readToEnd()).toString(), 'last words');
      assert.equal(backend.sawEnd, true);
      const after = randomBytes(1 << 20);
      backend.socket.end(after);
      assert.ok((await client.readToEnd()).equals(after), 'bytes written after the client FIN all arrive');
      assert.equal(client.sawEnd, true);
      await h.registry.drained();
      assert.deepEqual(await outcomes(h.metrics), { completed: 1 });
    });

    test('carries a backend half-close: the client sees the end and writes on, the backend reads it all', async (t) => {
      const h = await start(t, relay);
      const { client, backend } = await openTunnel(h, relay);
      backend.socket.end('bye');
      assert.equal((await client.readToEnd()).toString(), 'bye');
      const after = randomBytes(1 << 20);
      client.socket.end(after);
      assert.ok((await backend.readToEnd()).equals(after), 'bytes written after the backend FIN all arrive');
      await h.registry.drained();
      assert.deepEqual(await outcomes(h.metrics), { completed: 1 });
    });

    test('holds a backend back while its client does not read, then delivers everything once it does', async (t) => {
      const h = await start(t, relay);
      const { client, backend } = await openTunnel(h, relay);
      client.socket.pause();
      const flood = randomBytes(64 << 20);
      backend.socket.write(flood);
      // The backend stalls: what it could hand to the kernel stops growing, far below what it wrote.
      let last = -1;
      await converge(
        () => {
          const taken = flood.length - backend.socket.writableLength;
          const same = taken === last;
          last = taken;
          return same;
        },
        'the backend stalls',
        // 200 ms of no progress, polled every 10 ms.
        20,
        30_000,
      );
      const held = flood.length - backend.socket.writableLength;
      assert.ok(held < 32 << 20, `the path between backend and client holds ${held} bytes: bounded, not the whole 64 MiB`);
      client.socket.resume();
      assert.ok((await client.read(flood.length)).equals(flood), 'every byte arrives once the client reads');
    });

    test('a graceful drain ends the tunnel with a FIN each way and counts it with its reason', async (t) => {
      const h = await start(t, relay);
      const { client, backend } = await openTunnel(h, relay);
      const drained = h.registry.drainAll(0);
      // Each peer sees a clean end of stream, then closes its side.
      await Promise.all([client.readToEnd(), backend.readToEnd()]);
      assert.equal(client.sawEnd, true);
      assert.equal(backend.sawEnd, true);
      client.socket.end();
      backend.socket.end();
      await drained;
      assert.deepEqual(await outcomes(h.metrics), { shutdown: 1 });
    });

    test('the idle timeout closes a quiet tunnel and counts it', async (t) => {
      const h = await start(t, relay, { idleTimeoutSeconds: 0.2 }, 50);
      const { client, backend } = await openTunnel(h, relay);
      // Both peers see the tunnel close (a FIN: an idle timeout is no abort).
      await Promise.all([client.readToEnd(), backend.readToEnd()]);
      await h.registry.drained();
      assert.deepEqual(await outcomes(h.metrics), { idle_timeout: 1 });
    });

    test('a client reset is passed on to the backend as a reset, counted as client_abort', async (t) => {
      const h = await start(t, relay);
      const { client, backend } = await openTunnel(h, relay);
      const error = once(backend.socket, 'error');
      client.socket.resetAndDestroy();
      const [err] = (await error) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ECONNRESET');
      await h.registry.drained();
      assert.deepEqual(await outcomes(h.metrics), { client_abort: 1 });
    });

    if (relay === 'native') {
      test('an idle tunnel holds no pipe: its emptied pipes go back to the pool', async (t) => {
        const h = await start(t, relay);
        await openTunnel(h, relay);
        await converge(() => nativePipes().inUse === 0, 'no pipe in use while the tunnel is idle', 3, 10_000);
        assert.equal(h.registry.size, 1);
        assert.ok(nativePipes().pooled >= 1, 'the pipe it used is kept for the next busy direction');
      });

      test('its tunnels and pipes are metrics, read when scraped', async (t) => {
        const h = await start(t, relay);
        const before = await metricSum(h.metrics, 'wsgate_native_relay_tunnels');
        const { client } = await openTunnel(h, relay);
        assert.equal(await metricSum(h.metrics, 'wsgate_native_relay_tunnels'), before + 1);
        await converge(() => nativePipes().inUse === 0, 'no pipe in use while the tunnel is idle', 3, 10_000);
        assert.equal(await metricSum(h.metrics, 'wsgate_native_relay_pipes', { state: 'in_use' }), 0);
        assert.equal(await metricSum(h.metrics, 'wsgate_native_relay_pipes', { state: 'pooled' }), nativePipes().pooled);
        assert.ok(nativePipes().pooled >= 1);
        // A reset ends the tunnel at once (a FIN would leave it half-open, as the backend has not ended).
        client.socket.resetAndDestroy();
        await h.registry.drained();
        assert.equal(await metricSum(h.metrics, 'wsgate_native_relay_tunnels'), before);
      });
    }

    if (relay === 'native') {
      test("a tunnel on the native relay keeps neither of its destroyed sockets: both can be collected while it lives", async (t) => {
        // The sockets the proxy accepted and dialled, seen through Node's own channels, held weakly.
        const seen: WeakRef<net.Socket>[] = [];
        const onSocket = (message: unknown): void => void seen.push(new WeakRef((message as { socket: net.Socket }).socket));
        diagnostics.subscribe('net.server.socket', onSocket);
        diagnostics.subscribe('net.client.socket', onSocket);
        t.after(() => {
          diagnostics.unsubscribe('net.server.socket', onSocket);
          diagnostics.unsubscribe('net.client.socket', onSocket);
        });
        const h = await start(t, relay);
        const { client, backend } = await openTunnel(h, relay);
        // This test's own two sockets are among those seen; the proxy's are the other two.
        const ours = new Set<net.Socket>([client.socket, backend.socket]);
        const proxySockets = seen.filter((r) => !ours.has(r.deref()!));
        assert.equal(proxySockets.length, 2, 'the proxy accepted one socket and dialled one');
        ours.clear();
        await converge(() => {
          gc();
          return proxySockets.every((r) => r.deref() === undefined);
        }, 'both sockets of the native tunnel collected', 3, 10_000);
        assert.equal(h.registry.size, 1, 'the tunnel lives on');
        await roundTrip(client, backend, Buffer.from('still relayed'));
      });
    }

    test('leaves no descriptor behind after 40 tunnels, ended every way', async (t) => {
      const h = await start(t, relay);
      // A warm-up tunnel, so that lazily opened descriptors (the relay's epoll and thread) are in the baseline.
      const warm = await openTunnel(h, relay);
      warm.client.socket.end();
      warm.backend.socket.end();
      await Promise.all([h.registry.drained(), warm.client.closed, warm.backend.closed]);
      const baseline = openDescriptors();
      const tunnels: { client: Peer; backend: Peer }[] = [];
      for (let i = 0; i < 40; i++) tunnels.push(await openTunnel(h, relay));
      assert.ok(openDescriptors() > baseline, 'tunnels hold descriptors');
      tunnels.forEach(({ client, backend }, i) => {
        if (i % 4 === 0) client.socket.resetAndDestroy();
        else if (i % 4 === 1) backend.socket.resetAndDestroy();
        else {
          client.socket.end();
          backend.socket.end();
        }
      });
      await h.registry.drained();
      for (const { client, backend } of tunnels) {
        client.socket.destroy();
        backend.socket.destroy();
      }
      await Promise.all(tunnels.flatMap(({ client, backend }) => [client.closed, backend.closed]));
      await converge(() => openDescriptors() === baseline, `back to ${baseline} descriptors`, 3, 10_000);
      assert.equal(h.registry.size, 0);
      assert.equal(nativePipes().inUse, 0, 'no pipe held by a closed tunnel');
    });
  });
}
