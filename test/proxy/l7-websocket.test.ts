// WebSocket traffic through the L7 proxy end to end: a real `ws` backend, a real `ws` client, and raw peers where
// the exact bytes of a request head matter.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { ClientOptions } from 'ws';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import {
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
  type BackendConnection,
  type Client,
  type RawBackend,
  type WsBackend,
} from '../helpers/l7-peers.ts';

let echo: WsBackend;
let raw: RawBackend;
let gw: TestGateway;

before(async () => {
  // The backend picks the *last* protocol offered, so that a test can tell its choice from a default.
  echo = await startWsBackend({
    perMessageDeflate: true,
    handleProtocols: (offered) => [...offered].at(-1) ?? false,
  });
  raw = await startRawBackend();
  const echoBackend = backend('default/echo:80', echo.port);
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('raw.test', httpRoute({ route: 'default/raw', backends: [backend('default/raw:80', raw.port)] })),
        vhost('strict.test', httpRoute({ route: 'default/strict', backends: [echoBackend], policy: { subprotocols: ['b'] } })),
        vhost('*', httpRoute({ route: 'default/echo', backends: [echoBackend] })),
      ],
    }),
  );
});

/** A client through wsgate and the backend's side of the same connection. */
async function connect(protocols: string[] = [], opts: ClientOptions = {}): Promise<[Client, BackendConnection]> {
  const c = await openClient(gw.wsUrl, protocols, opts);
  const server = await echo.connections.shift();
  assert.equal(echo.connections.length, 0, 'one backend connection per client');
  return [c, server];
}

after(async () => {
  await stopGateway(gw);
  await echo.close();
  await raw.close();
});

describe('WebSocket messages through wsgate', { timeout: 15_000 }, () => {
  test('relays a text message and its echo', async () => {
    const [c] = await connect();
    const m = await roundTrip(c, 'hello wsgate');
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString(), 'hello wsgate');
    c.ws.close();
    await c.closed;
  });

  test('relays a binary message unchanged', async () => {
    const [c] = await connect();
    const payload = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x7f]);
    const m = await roundTrip(c, payload);
    assert.equal(m.isBinary, true);
    assert.deepEqual(m.data, payload);
    c.ws.close();
    await c.closed;
  });

  test('delivers a message sent in fragments as one message', async () => {
    const [c, server] = await connect();
    const echoed = c.messages.shift();
    c.ws.send('frag-', { fin: false });
    c.ws.send('men-', { fin: false });
    c.ws.send('ted', { fin: true });
    const atBackend = await server.messages.shift();
    assert.equal(atBackend.data.toString(), 'frag-men-ted');
    assert.equal((await echoed).data.toString(), 'frag-men-ted');
    c.ws.close();
    await c.closed;
  });

  test('carries a 1 MiB message in both directions', async () => {
    const [c, server] = await connect();
    const big = randomBytes(1024 * 1024);
    const echoed = await roundTrip(c, big);
    const atBackend = await server.messages.shift();
    assert.equal(atBackend.data.length, big.length);
    assert.ok(atBackend.data.equals(big), 'the backend received the 1 MiB message intact');
    assert.ok(echoed.data.equals(big), 'the client received the 1 MiB echo intact');
    c.ws.close();
    await c.closed;
  });

  test('passes a client ping to the backend and its pong back', async () => {
    const [c, server] = await connect();
    const pinged = once(server.ws, 'ping') as Promise<[Buffer]>;
    const ponged = once(c.ws, 'pong') as Promise<[Buffer]>;
    c.ws.ping(Buffer.from('are you there'));
    assert.equal((await pinged)[0].toString(), 'are you there');
    assert.equal((await ponged)[0].toString(), 'are you there');
    c.ws.close();
    await c.closed;
  });

  test('relays the close code and reason the client sends', async () => {
    const [c, server] = await connect();
    c.ws.close(4001, 'client says bye');
    assert.deepEqual(await server.closed, { code: 4001, reason: 'client says bye' });
    assert.equal((await c.closed).code, 4001);
  });

  test('relays the close code and reason the backend sends', async () => {
    const [c, server] = await connect();
    server.ws.close(4002, 'backend says bye');
    assert.deepEqual(await c.closed, { code: 4002, reason: 'backend says bye' });
  });
});

describe('WebSocket handshake negotiation through wsgate', { timeout: 15_000 }, () => {
  test('lets the backend choose among the subprotocols the client offered', async () => {
    const [c, server] = await connect(['a', 'b']);
    assert.deepEqual(server.req.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim()), ['a', 'b']);
    assert.equal(server.ws.protocol, 'b');
    assert.equal(c.ws.protocol, 'b');
    c.ws.close();
    await c.closed;
  });

  test('forwards only the subprotocols the route allows', async () => {
    const [c, server] = await connect(['a', 'b', 'c'], { headers: { Host: 'strict.test' } });
    assert.equal(server.req.headers['sec-websocket-protocol'], 'b');
    assert.equal(c.ws.protocol, 'b');
    assert.equal((await roundTrip(c, 'still works')).data.toString(), 'still works');
    c.ws.close();
    await c.closed;
  });

  test('rejects with 400 a handshake offering no allowed subprotocol', async () => {
    const before = await gw.metric('wsgate_handshake_rejections_total', { reason: 'subprotocol_not_allowed' });
    await assert.rejects(openClient(gw.wsUrl, ['x'], { headers: { Host: 'strict.test' } }), /unexpected response 400/);
    assert.equal(await gw.metric('wsgate_handshake_rejections_total', { reason: 'subprotocol_not_allowed' }), before + 1);
  });

  test('negotiates permessage-deflate end to end', async () => {
    const [c, server] = await connect([], { perMessageDeflate: true });
    assert.match(server.req.headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
    assert.match(c.ws.extensions, /permessage-deflate/);
    assert.match(server.ws.extensions, /permessage-deflate/);
    const text = 'compress me '.repeat(5000);
    assert.equal((await roundTrip(c, text)).data.toString(), text);
    c.ws.close();
    await c.closed;
  });

  test('adds X-Forwarded-For/-Proto/-Host/-Port and X-Real-IP, replacing spoofed ones', async () => {
    const [c, { req }] = await connect([], {
      headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Real-IP': '198.51.100.1' },
    });
    assert.equal(req.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(req.headers['x-forwarded-proto'], 'http');
    assert.equal(req.headers['x-forwarded-host'], `127.0.0.1:${gw.http.port}`);
    assert.equal(req.headers['x-forwarded-port'], String(gw.http.port));
    assert.equal(req.headers['x-real-ip'], '127.0.0.1');
    c.ws.close();
    await c.closed;
  });
});

describe('the request head wsgate writes to a backend', { timeout: 15_000 }, () => {
  /** Sends a raw handshake to the raw backend's host and returns the head the backend received. */
  async function headAtBackend(headers: Record<string, string>): Promise<string> {
    const client = await rawConnect(gw.http.port);
    client.write(handshake({ host: 'raw.test', headers }));
    const peer = await raw.accepted.shift();
    peer.socket.write(switchingProtocols(peer.head));
    const { value } = await readUntil(client, httpHead);
    assert.match(value, /^HTTP\/1\.1 101 /);
    // One frame through the tunnel proves it is live before both sides go.
    peer.socket.write(Buffer.from([0x81, 0x02, 0x6f, 0x6b]));
    const f = await readUntil(client, frame);
    assert.equal(f.value.payload.toString(), 'ok');
    client.destroy();
    peer.socket.destroy();
    return peer.head;
  }

  test('keeps the casing of header names as the client sent them', async () => {
    const head = await headAtBackend({ 'X-CuStOm': '1' });
    assert.match(head, /\r\nX-CuStOm: 1\r\n/);
  });

  test('passes header bytes above 0x7f through unchanged', async () => {
    // The client sends café in UTF-8 (63 61 66 c3 a9); the backend must receive those five bytes, not a re-encoding.
    const head = await headAtBackend({ 'X-Name': 'café' });
    assert.match(head, new RegExp(`\\r\\nX-Name: ${Buffer.from('café', 'utf8').toString('latin1')}\\r\\n`));
  });

  test('removes hop-by-hop headers, including those named in Connection', async () => {
    const head = await headAtBackend({
      Connection: 'Upgrade, X-Drop-Me',
      'X-Drop-Me': 'secret',
      'Keep-Alive': 'timeout=5',
      'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
      TE: 'trailers',
      'X-Keep-Me': 'yes',
    });
    const names = head
      .split('\r\n')
      .slice(1)
      .filter((l) => l.length > 0)
      .map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
    for (const gone of ['x-drop-me', 'keep-alive', 'proxy-authorization', 'te']) {
      assert.ok(!names.includes(gone), `${gone} must not reach the backend:\n${head}`);
    }
    assert.match(head, /\r\nX-Keep-Me: yes\r\n/);
    assert.match(head, /\r\nConnection: Upgrade\r\n/);
    assert.match(head, /\r\nUpgrade: websocket\r\n/i);
  });
});
