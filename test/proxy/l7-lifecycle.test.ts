// The life and end of L7 tunnels: every order in which clients and backends leave brings the registry and
// wsgate_connections_active back to 0 with the right outcome; idle tunnels are swept; Node's HTTP timeouts leave
// upgraded sockets alone; byte counters count tunnel bytes only; stopping the gateway ends open tunnels.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { backend, catchAll, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import {
  closeOf,
  converge,
  encodeFrame,
  frame,
  handshake,
  httpHead,
  openClient,
  rawConnect,
  readUntil,
  roundTrip,
  startRawBackend,
  startWsBackend,
  stopGateway,
  switchingProtocols,
  type RawBackend,
  type RawPeer,
  type WsBackend,
} from '../helpers/l7-peers.ts';

const HANDSHAKE_TIMEOUT_MS = 300;

let echo: WsBackend;
let raw: RawBackend;
let gw: TestGateway;

before(async () => {
  echo = await startWsBackend();
  raw = await startRawBackend();
  const echoBackend = backend('default/echo:80', echo.port);
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('raw.test', httpRoute({ route: 'default/raw', backends: [backend('default/raw:80', raw.port)] })),
        vhost('idle.test', httpRoute({ route: 'default/idle', backends: [echoBackend], policy: { idleTimeoutSeconds: 1 } })),
        vhost('bytes.test', httpRoute({ route: 'default/bytes', backends: [echoBackend] })),
        vhost('*', httpRoute({ route: 'default/echo', backends: [echoBackend] })),
      ],
    }),
    { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, sweepIntervalMs: 100 },
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
  await raw.close();
});

function outcomes(route: string, outcome: string): Promise<number> {
  return gw.metric('wsgate_connections_total', { route, layer: 'l7', outcome });
}

/** Waits until no tunnel is left: the registry is empty and the active gauge is back to 0. */
async function allClosed(): Promise<void> {
  await converge(
    async () => gw.gateway.registry.size === 0 && (await gw.metric('wsgate_connections_active')) === 0,
    'registry empty and wsgate_connections_active 0',
  );
}

/** A raw client tunnelled to the raw backend: both sides' sockets, after the 101. */
async function rawTunnel(allowHalfOpen = false): Promise<{ client: net.Socket; peer: RawPeer }> {
  const client = await rawConnect(gw.http.port, allowHalfOpen);
  client.write(handshake({ host: 'raw.test' }));
  const peer = await raw.accepted.shift();
  peer.socket.write(switchingProtocols(peer.head));
  const { value } = await readUntil(client, httpHead);
  assert.match(value, /^HTTP\/1\.1 101 /);
  return { client, peer };
}

describe('tunnels end in every order', { timeout: 10_000 }, () => {
  test('client closes first: completed', async () => {
    const before = await outcomes('default/echo', 'completed');
    const c = await openClient(gw.wsUrl);
    const server = await echo.connections.shift();
    c.ws.close(1000);
    await Promise.all([c.closed, server.closed]);
    await allClosed();
    assert.equal(await outcomes('default/echo', 'completed'), before + 1);
  });

  test('backend closes first: completed', async () => {
    const before = await outcomes('default/echo', 'completed');
    const c = await openClient(gw.wsUrl);
    const server = await echo.connections.shift();
    server.ws.close(1001);
    assert.equal((await c.closed).code, 1001);
    await allClosed();
    assert.equal(await outcomes('default/echo', 'completed'), before + 1);
  });

  test('client terminates without a close frame: the tunnel ends', async () => {
    const c = await openClient(gw.wsUrl);
    const server = await echo.connections.shift();
    c.ws.terminate();
    assert.equal((await server.closed).code, 1006);
    await allClosed();
  });

  test('client resets the connection: client_abort', async () => {
    const before = await outcomes('default/raw', 'client_abort');
    const { client, peer } = await rawTunnel();
    const backendClosed = closeOf(peer.socket);
    client.resetAndDestroy();
    await backendClosed;
    await allClosed();
    assert.equal(await outcomes('default/raw', 'client_abort'), before + 1);
  });

  test('backend resets the connection: upstream_error', async () => {
    const before = await outcomes('default/raw', 'upstream_error');
    const { client, peer } = await rawTunnel();
    const clientClosed = closeOf(client);
    peer.socket.resetAndDestroy();
    await clientClosed;
    await allClosed();
    assert.equal(await outcomes('default/raw', 'upstream_error'), before + 1);
  });

  test('client half-closes while the backend is still writing: the backend finishes, then completed', async () => {
    const before = await outcomes('default/raw', 'completed');
    const { client, peer } = await rawTunnel(true);
    const received: Buffer[] = [];
    client.on('data', (c: Buffer) => received.push(c));
    const clientEnded = once(client, 'end');
    const backendSawEnd = once(peer.socket, 'end');
    peer.socket.resume();
    client.end(); // FIN from the client: it sends no more, but still reads
    await backendSawEnd;
    // The backend answers after the client's FIN, then ends its side.
    peer.socket.write(encodeFrame(0x1, 'after your FIN', false));
    peer.socket.end(encodeFrame(0x1, 'and the last word', false));
    await clientEnded;
    let buf = Buffer.concat(received);
    const first = frame(buf);
    assert.ok(first, 'a first frame arrived after the half-close');
    assert.equal(first.value.payload.toString(), 'after your FIN');
    buf = buf.subarray(first.used);
    assert.equal(frame(buf)?.value.payload.toString(), 'and the last word');
    client.destroy();
    await allClosed();
    assert.equal(await outcomes('default/raw', 'completed'), before + 1);
  });
});

describe('idle tunnels', { timeout: 10_000 }, () => {
  test('closes an idle tunnel with idle_timeout and keeps a busy one open', async () => {
    const before = await outcomes('default/idle', 'idle_timeout');
    const opts = { headers: { Host: 'idle.test' } };
    const idle = await openClient(gw.wsUrl, [], opts);
    const busy = await openClient(gw.wsUrl, [], opts);
    // The busy client talks every 100 ms: traffic, not a wait.
    let n = 0;
    const talk = setInterval(() => busy.ws.send(`tick ${n++}`), 100);
    try {
      // wsgate ends an idle WebSocket with a close frame to each side, so the client sees Going Away, not 1006.
      const closed = await idle.closed;
      assert.equal(closed.code, 1001, 'the idle tunnel was closed by wsgate with 1001');
      assert.equal(busy.ws.readyState, busy.ws.OPEN, 'the busy tunnel is still open after the idle one closed');
    } finally {
      clearInterval(talk);
    }
    const m = await roundTrip(busy, 'still here');
    assert.ok(m.data.toString().startsWith('tick') || m.data.toString() === 'still here');
    await converge(async () => (await outcomes('default/idle', 'idle_timeout')) === before + 1, 'idle_timeout counted once');
    busy.ws.close();
    await busy.closed;
    await allClosed();
  });

  test("Node's request-head timeout does not cut an upgraded socket", async () => {
    const c = await openClient(gw.wsUrl);
    // A slow head on the same listener is closed with 408 at the head timeout: that timeout has run.
    const slow = await rawConnect(gw.http.port);
    const chunks: Buffer[] = [];
    slow.on('data', (b: Buffer) => chunks.push(b));
    slow.write('GET / HTTP/1.1\r\nHost: x');
    await once(slow, 'close');
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 408 /);
    assert.equal(c.ws.readyState, c.ws.OPEN);
    assert.equal((await roundTrip(c, 'still open')).data.toString(), 'still open');
    c.ws.close();
    await c.closed;
    await allClosed();
  });
});

describe('byte counters', { timeout: 10_000 }, () => {
  test('count the frames in each direction, not the handshake', async () => {
    const up = await gw.metric('wsgate_tunnel_bytes_total', { route: 'default/bytes', direction: 'upstream' });
    const down = await gw.metric('wsgate_tunnel_bytes_total', { route: 'default/bytes', direction: 'downstream' });
    const client = await rawConnect(gw.http.port);
    client.write(handshake({ host: 'bytes.test' }));
    const head = await readUntil(client, httpHead);
    assert.match(head.value, /^HTTP\/1\.1 101 /);
    const sent = encodeFrame(0x2, Buffer.alloc(1000, 7), true); // 2 + 2 + 4 + 1000 = 1008 bytes
    client.write(sent);
    const echoed = await readUntil(client, frame, head.rest); // 2 + 2 + 1000 = 1004 bytes
    assert.equal(echoed.value.payload.length, 1000);
    client.end();
    await once(client, 'close');
    await allClosed();
    assert.equal(await gw.metric('wsgate_tunnel_bytes_total', { route: 'default/bytes', direction: 'upstream' }), up + sent.length);
    assert.equal(await gw.metric('wsgate_tunnel_bytes_total', { route: 'default/bytes', direction: 'downstream' }), down + echoed.value.size);
  });
});

describe('stopping the gateway', () => {
  test('closes open tunnels with outcome shutdown and resolves', { timeout: 3000 }, async (t) => {
    const own = await startGateway(catchAll([echo.port]));
    // If stop() waits for the tunnel instead of closing it, this unblocks it once the test has failed.
    t.after(() => own.gateway.registry.closeAll());
    const c = await openClient(own.wsUrl);
    await own.close();
    assert.equal((await c.closed).code, 1006);
    assert.equal(await own.metric('wsgate_connections_total', { outcome: 'shutdown' }), 1);
    assert.equal(own.gateway.registry.size, 0);
  });
});
