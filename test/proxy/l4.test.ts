import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import tls from 'node:tls';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { DEFAULT_POLICY, freezeTable, type Endpoint, type RoutingTable, type TunnelRoute } from '../../src/model/table.ts';
import { Balancer } from '../../src/proxy/balancer.ts';
import { L4Proxy } from '../../src/proxy/l4.ts';
import { ConnectionLimits } from '../../src/proxy/limits.ts';
import { TunnelRegistry } from '../../src/proxy/registry.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { Peer } from '../helpers/peer.ts';

const LOCALHOST = '127.0.0.1';

// --- fixture builders ------------------------------------------------------------------------------------------

type TunnelExtras = Partial<Pick<TunnelRoute, 'sniHostnames' | 'proxyProtocol' | 'maxConnections'>>;

function tunnelRoute(name: string, port: number, endpoints: readonly Endpoint[], extras: TunnelExtras = {}): TunnelRoute {
  return {
    id: `TCPTunnel/default/${name}`,
    route: `default/${name}`,
    port,
    sniHostnames: [],
    backends: [{ name: `default/${name}:9000`, weight: 1, endpoints }],
    proxyProtocol: 'None',
    idleTimeoutSeconds: 0,
    connectTimeoutSeconds: 5,
    maxConnections: 0,
    endpointDrainSeconds: DEFAULT_POLICY.endpointDrainSeconds,
    onRemoval: DEFAULT_POLICY.onRemoval,
    ...extras,
  };
}

/** A frozen table, tunnels sorted as translate() sorts them: by port, SNI-less last within a port. */
function routingTable(...tunnels: TunnelRoute[]): RoutingTable {
  const sorted = [...tunnels].sort(
    (a, b) => a.port - b.port || Number(a.sniHostnames.length === 0) - Number(b.sniHostnames.length === 0),
  );
  return freezeTable({ virtualHosts: [], certificates: [], tunnels: sorted });
}

interface Harness {
  readonly proxy: L4Proxy;
  readonly metrics: Metrics;
  readonly registry: TunnelRegistry;
}

function startProxy(t: TestContext, opts: { helloTimeoutMs?: number } = {}): Harness {
  const metrics = createMetrics('test', { defaultMetrics: false });
  const log = silentLogger();
  const balancer = new Balancer();
  const limits = new ConnectionLimits();
  const registry = new TunnelRegistry(metrics, log, 1000, { balancer, limits });
  const proxy = new L4Proxy({
    metrics,
    log,
    registry,
    balancer,
    limits,
    host: LOCALHOST,
    ...opts,
  });
  t.after(async () => {
    await proxy.close();
    await registry.closeAll();
    registry.stop();
  });
  return { proxy, metrics, registry };
}

/** A port that was free a moment ago: bound on port 0, then released. */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, LOCALHOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

interface Backend {
  readonly endpoint: Endpoint;
  /** The next connection the backend accepts (in accept order). */
  next(): Promise<Peer>;
}

/** Starts a backend on 127.0.0.1:0; `onSocket` (if any) runs first on each accepted socket. Closed after the test. */
async function startBackend(t: TestContext, onSocket?: (socket: net.Socket) => void, server?: net.Server): Promise<Backend> {
  const srv = server ?? net.createServer({ allowHalfOpen: true });
  const sockets = new Set<net.Socket>();
  const peers: Peer[] = [];
  const waiters: ((p: Peer) => void)[] = [];
  srv.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  srv.on(server instanceof tls.Server ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    onSocket?.(socket);
    const peer = new Peer(socket);
    const waiter = waiters.shift();
    if (waiter) waiter(peer);
    else peers.push(peer);
  });
  srv.listen(0, LOCALHOST);
  await once(srv, 'listening');
  t.after(() => {
    srv.close();
    for (const s of sockets) s.destroy();
  });
  return {
    endpoint: { address: LOCALHOST, port: (srv.address() as AddressInfo).port },
    next: () => {
      const p = peers.shift();
      return p ? Promise.resolve(p) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Echoes everything; when the client half-closes, writes a trailer and then ends (bytes after the client's FIN). */
function echoWithTrailer(socket: net.Socket): void {
  socket.pipe(socket, { end: false });
  socket.on('end', () => socket.end('after-end'));
}

/** Announces itself, then echoes. */
function greeter(name: string): (socket: net.Socket) => void {
  return (socket) => {
    socket.write(`${name}\n`);
    socket.pipe(socket);
  };
}


async function connect(port: number): Promise<Peer> {
  const socket = net.connect({ host: LOCALHOST, port, allowHalfOpen: true });
  const peer = new Peer(socket);
  await once(socket, 'connect');
  return peer;
}

/** A connection the proxy must close without relaying anything. */
async function expectClosedWithoutData(port: number, send?: Buffer): Promise<void> {
  const socket = net.connect({ host: LOCALHOST, port });
  const peer = new Peer(socket);
  if (send) socket.write(send);
  await peer.closed;
  assert.equal(peer.received, 0, 'a rejected connection must not receive bytes');
}

async function roundTrip(peer: Peer, text: string): Promise<string> {
  peer.socket.write(text);
  return (await peer.read(Buffer.byteLength(text))).toString();
}

async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} exists`);
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

async function expectAllTunnelsGone(h: Harness): Promise<void> {
  await h.registry.drained();
  assert.equal(h.registry.size, 0);
  assert.equal(await metricValue(h.metrics, 'wsgate_connections_active'), 0);
}

/** A minimal TLS ClientHello record carrying `serverName`, for raw clients. */
function clientHello(serverName: string): Buffer {
  const name = Buffer.from(serverName);
  const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
  const sni = Buffer.concat([u16(0), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 1), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(sni.length), sni]);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(handshake.length), handshake]);
}

// --- plain TCP tunnels -----------------------------------------------------------------------------------------

describe('L4Proxy plain tunnels', () => {
  test('relays 1 MiB each way and carries a half-close: the backend writes on after the client ends', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t, echoWithTrailer);
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('echo', port, [backend.endpoint])));
    assert.deepEqual(h.proxy.listening(), [port]);

    const client = await connect(port);
    const payload = randomBytes(1024 * 1024);
    client.socket.end(payload);
    const received = await client.readToEnd();
    assert.ok(client.sawEnd, 'the client sees the end the backend sent');
    assert.ok(received.subarray(0, payload.length).equals(payload), 'the echoed MiB arrives intact');
    assert.equal(received.subarray(payload.length).toString(), 'after-end');
    await client.closed;

    await expectAllTunnelsGone(h);
    assert.equal(await metricValue(h.metrics, 'wsgate_tunnel_bytes_total', { route: 'default/echo', direction: 'upstream' }), payload.length);
    assert.equal(
      await metricValue(h.metrics, 'wsgate_tunnel_bytes_total', { route: 'default/echo', direction: 'downstream' }),
      payload.length + 'after-end'.length,
    );
    assert.equal(await metricValue(h.metrics, 'wsgate_connections_total', { route: 'default/echo', layer: 'l4', outcome: 'completed' }), 1);
  });

  test('writes a PROXY v1 header byte for byte before the client bytes', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t);
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('v1', port, [backend.endpoint], { proxyProtocol: 'V1' })));

    const client = await connect(port);
    client.socket.end('ping');
    const got = await (await backend.next()).readToEnd();
    const expected = `PROXY TCP4 127.0.0.1 127.0.0.1 ${client.socket.localPort} ${port}\r\nping`;
    assert.equal(got.toString('latin1'), expected);
  });

  test('writes a PROXY v2 header byte for byte before the client bytes', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t);
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('v2', port, [backend.endpoint], { proxyProtocol: 'V2' })));

    const client = await connect(port);
    client.socket.end('ping');
    const got = await (await backend.next()).readToEnd();
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(client.socket.localPort!, 0);
    ports.writeUInt16BE(port, 2);
    const expected = Buffer.concat([
      Buffer.from('0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + '7f000001' + '7f000001', 'hex'),
      ports,
      Buffer.from('ping'),
    ]);
    assert.equal(got.toString('hex'), expected.toString('hex'));
  });

  test('closes the client and counts a connect error when the backend refuses', async (t) => {
    const h = startProxy(t);
    const deadPort = await freePort();
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('dead', port, [{ address: LOCALHOST, port: deadPort }])));

    await expectClosedWithoutData(port);
    assert.equal(await metricValue(h.metrics, 'wsgate_upstream_connect_errors_total', { route: 'default/dead', reason: 'refused' }), 1);
    assert.equal(await metricValue(h.metrics, 'wsgate_handshake_rejections_total', { route: 'default/dead', reason: 'upstream_refused' }), 1);
    assert.equal(h.registry.size, 0);
  });

  test('rejects connections over maxConnections and admits again once a tunnel ends', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t, greeter('b'));
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('one', port, [backend.endpoint], { maxConnections: 1 })));

    const first = await connect(port);
    assert.equal((await first.read(2)).toString(), 'b\n');
    assert.equal(await roundTrip(first, 'x'), 'x');
    await expectClosedWithoutData(port);
    assert.equal(await metricValue(h.metrics, 'wsgate_handshake_rejections_total', { route: 'default/one', reason: 'over_limit' }), 1);

    first.socket.end();
    await first.closed;
    await expectAllTunnelsGone(h);
    const third = await connect(port);
    assert.equal((await third.read(2)).toString(), 'b\n');
    assert.equal(await roundTrip(third, 'again'), 'again');
  });

  test('keeps an open tunnel relaying across a table update, while new connections use the new table', async (t) => {
    const h = startProxy(t);
    const oldBackend = await startBackend(t, greeter('old'));
    const newBackend = await startBackend(t, greeter('new'));
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('svc', port, [oldBackend.endpoint])));

    const established = await connect(port);
    assert.equal((await established.read(4)).toString(), 'old\n');
    await h.proxy.update(routingTable(tunnelRoute('svc', port, [newBackend.endpoint])));

    assert.equal(await roundTrip(established, 'still here'), 'still here');
    const fresh = await connect(port);
    assert.equal((await fresh.read(4)).toString(), 'new\n');
    assert.equal(h.registry.size, 2);
  });

  test('closes the listener of a removed port while its established tunnel keeps working', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t, greeter('b'));
    const removed = await freePort();
    const kept = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('gone', removed, [backend.endpoint]), tunnelRoute('stays', kept, [backend.endpoint])));
    assert.deepEqual(h.proxy.listening(), [removed, kept].sort((a, b) => a - b));

    const established = await connect(removed);
    assert.equal((await established.read(2)).toString(), 'b\n');
    await h.proxy.update(routingTable(tunnelRoute('stays', kept, [backend.endpoint])));
    assert.deepEqual(h.proxy.listening(), [kept]);

    const refused = net.connect({ host: LOCALHOST, port: removed });
    const [err] = (await once(refused, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    assert.equal(await roundTrip(established, 'alive'), 'alive');
  });

  test('reports a port that cannot bind in failedPorts() and still serves the other ports, then retries it', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t, greeter('b'));
    const occupier = net.createServer().listen(0, LOCALHOST);
    await once(occupier, 'listening');
    const taken = (occupier.address() as AddressInfo).port;
    const free = await freePort();
    const table = routingTable(tunnelRoute('taken', taken, [backend.endpoint]), tunnelRoute('free', free, [backend.endpoint]));

    await h.proxy.update(table);
    assert.deepEqual(h.proxy.failedPorts(), [taken]);
    assert.deepEqual(h.proxy.listening(), [free]);
    const client = await connect(free);
    assert.equal((await client.read(2)).toString(), 'b\n');

    occupier.close();
    await once(occupier, 'close');
    await h.proxy.update(table);
    assert.deepEqual(h.proxy.failedPorts(), []);
    assert.deepEqual(h.proxy.listening(), [taken, free].sort((a, b) => a - b));
  });
});

// --- endings -----------------------------------------------------------------------------------------------------

describe('L4Proxy tunnel endings', () => {
  // `outcome` is how wsgate_connections_total counts the ending, where it is deterministic.
  const endings: { name: string; outcome?: string; end: (client: Peer, backend: Peer) => Promise<void> }[] = [
    {
      name: 'the client ends first, then the backend',
      outcome: 'completed',
      end: async (client, backend) => {
        client.socket.end();
        await backend.readToEnd();
        backend.socket.end();
      },
    },
    {
      name: 'the backend ends first, then the client',
      outcome: 'completed',
      end: async (client, backend) => {
        backend.socket.end();
        await client.readToEnd();
        client.socket.end();
      },
    },
    {
      name: 'the client resets',
      outcome: 'client_abort',
      end: async (client, backend) => {
        client.socket.resetAndDestroy();
        // The backend is a half-open server: it sees the tunnel end, and closes its side itself.
        await backend.readToEnd();
        backend.socket.end();
      },
    },
    {
      name: 'the backend resets',
      outcome: 'upstream_error',
      end: async (client, backend) => {
        backend.socket.resetAndDestroy();
        await client.readToEnd();
        client.socket.end();
      },
    },
    {
      // The half-close has already shut down the backend socket's write side when the reset arrives: a reset
      // cannot be passed on any more (libuv refuses it), and the tunnel must still end.
      name: 'the client half-closes, then resets while the backend is still writing',
      end: async (client, backend) => {
        client.socket.end();
        await backend.readToEnd();
        backend.socket.write('still talking');
        await client.read(Buffer.byteLength('still talking'));
        client.socket.resetAndDestroy();
        // The half-open backend closes its own side once the tunnel is gone.
        backend.socket.end();
      },
    },
    {
      name: 'both sides close at once',
      end: (client, backend) => {
        client.socket.destroy();
        backend.socket.destroy();
        return Promise.resolve();
      },
    },
  ];

  for (const e of endings) {
    test(`leaves no tunnel and no active connection when ${e.name}`, async (t) => {
      const h = startProxy(t);
      const backend = await startBackend(t);
      const port = await freePort();
      await h.proxy.update(routingTable(tunnelRoute('end', port, [backend.endpoint])));

      const client = await connect(port);
      client.socket.write('hi');
      const server = await backend.next();
      assert.equal((await server.read(2)).toString(), 'hi');
      assert.equal(await metricValue(h.metrics, 'wsgate_connections_active', { route: 'default/end', layer: 'l4' }), 1);

      await e.end(client, server);
      await Promise.all([client.closed, server.closed]);
      await expectAllTunnelsGone(h);
      if (e.outcome) {
        const labels = { route: 'default/end', layer: 'l4', outcome: e.outcome };
        assert.equal(await metricValue(h.metrics, 'wsgate_connections_total', labels), 1);
      }
    });
  }
});

// --- TLS passthrough ---------------------------------------------------------------------------------------------

describe('L4Proxy TLS passthrough', () => {
  let ca: TestCA;
  let certA: { certPem: string; keyPem: string };
  let certWild: { certPem: string; keyPem: string };
  before(() => {
    ca = createTestCA();
    certA = ca.issue(['a.example.test']);
    certWild = ca.issue(['*.wild.example.test']);
  });
  after(() => ca.dispose());

  async function tlsBackend(t: TestContext, name: string, cert: { certPem: string; keyPem: string }): Promise<Backend> {
    const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => s.end(`served by ${name}`));
    return startBackend(t, undefined, server);
  }

  async function tlsGet(port: number, servername: string): Promise<{ text: string; subject: string; authorized: boolean }> {
    const socket = tls.connect({ host: LOCALHOST, port, servername, ca: ca.certPem });
    const peer = new Peer(socket);
    await once(socket, 'secureConnect');
    const cert = socket.getPeerCertificate();
    const text = (await peer.readToEnd()).toString();
    socket.end();
    return { text, subject: String(cert.subject.CN), authorized: socket.authorized };
  }

  async function passthroughSetup(t: TestContext): Promise<{ h: Harness; port: number }> {
    const h = startProxy(t);
    const a = await tlsBackend(t, 'a', certA);
    const wild = await tlsBackend(t, 'wild', certWild);
    const port = await freePort();
    await h.proxy.update(
      routingTable(
        tunnelRoute('a', port, [a.endpoint], { sniHostnames: ['a.example.test'] }),
        tunnelRoute('wild', port, [wild.endpoint], { sniHostnames: ['*.wild.example.test'] }),
      ),
    );
    return { h, port };
  }

  test('routes two SNI names on one port to their own TLS backends, whose certificates the client verifies', async (t) => {
    const { h, port } = await passthroughSetup(t);
    assert.deepEqual(await tlsGet(port, 'a.example.test'), { text: 'served by a', subject: 'a.example.test', authorized: true });
    assert.deepEqual(await tlsGet(port, 'x.wild.example.test'), {
      text: 'served by wild',
      subject: '*.wild.example.test',
      authorized: true,
    });
    await expectAllTunnelsGone(h);
  });

  test('matches an SNI name case-insensitively', async (t) => {
    const { port } = await passthroughSetup(t);
    assert.equal((await tlsGet(port, 'A.Example.TEST')).text, 'served by a');
  });

  test('closes a TLS connection whose SNI matches no tunnel, including a wildcard two labels deep', async (t) => {
    const { h, port } = await passthroughSetup(t);
    for (const servername of ['unknown.example.test', 'y.x.wild.example.test']) {
      const socket = tls.connect({ host: LOCALHOST, port, servername, ca: ca.certPem });
      const peer = new Peer(socket);
      socket.once('secureConnect', () => assert.fail('the handshake must not complete'));
      await peer.closed;
    }
    assert.equal(await metricValue(h.metrics, 'wsgate_handshake_rejections_total', { reason: 'no_route' }), 2);
    assert.equal(h.registry.size, 0);
  });

  test('replays the ClientHello read for routing, after the PROXY header and before the rest of the stream', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t);
    const port = await freePort();
    await h.proxy.update(
      routingTable(tunnelRoute('raw', port, [backend.endpoint], { sniHostnames: ['raw.example.test'], proxyProtocol: 'V1' })),
    );

    const hello = clientHello('raw.example.test');
    const client = await connect(port);
    // The hello arrives in pieces: routing must wait for all of it, and keep every piece.
    for (const piece of [hello.subarray(0, 3), hello.subarray(3, 20), hello.subarray(20)]) {
      await new Promise<void>((resolve, reject) => client.socket.write(piece, (err) => (err ? reject(err) : resolve())));
    }
    client.socket.end('rest of stream');
    const got = await (await backend.next()).readToEnd();
    const header = Buffer.from(`PROXY TCP4 127.0.0.1 127.0.0.1 ${client.socket.localPort} ${port}\r\n`);
    assert.equal(got.toString('hex'), Buffer.concat([header, hello, Buffer.from('rest of stream')]).toString('hex'));
  });

  test('sends non-TLS bytes on an SNI port to the SNI-less tunnel of that port', async (t) => {
    const h = startProxy(t);
    const tlsSide = await startBackend(t, greeter('tls'));
    const fallback = await startBackend(t);
    const port = await freePort();
    await h.proxy.update(
      routingTable(
        tunnelRoute('sni', port, [tlsSide.endpoint], { sniHostnames: ['s.example.test'] }),
        tunnelRoute('fallback', port, [fallback.endpoint]),
      ),
    );
    const client = await connect(port);
    client.socket.end('GET / HTTP/1.1\r\n\r\n');
    assert.equal((await (await fallback.next()).readToEnd()).toString(), 'GET / HTTP/1.1\r\n\r\n');
  });

  test('closes a client that sends a malformed ClientHello', async (t) => {
    const h = startProxy(t);
    const backend = await startBackend(t);
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('sni', port, [backend.endpoint], { sniHostnames: ['s.example.test'] })));
    await expectClosedWithoutData(port, Buffer.from([22, 3, 1, 0, 0]));
    assert.equal(await metricValue(h.metrics, 'wsgate_handshake_rejections_total', { reason: 'bad_client_hello' }), 1);
  });

  test('closes a client that does not finish its ClientHello within the hello timeout', async (t) => {
    const h = startProxy(t, { helloTimeoutMs: 50 });
    const backend = await startBackend(t);
    const port = await freePort();
    await h.proxy.update(routingTable(tunnelRoute('sni', port, [backend.endpoint], { sniHostnames: ['s.example.test'] })));
    await expectClosedWithoutData(port, clientHello('s.example.test').subarray(0, 10));
    assert.equal(await metricValue(h.metrics, 'wsgate_handshake_rejections_total', { reason: 'hello_timeout' }), 1);
    assert.equal(h.registry.size, 0);
  });
});
