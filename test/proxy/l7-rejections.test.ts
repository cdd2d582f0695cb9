// Every way a WebSocket handshake is refused, seen from a raw client: the status line, `Connection: close`, the
// socket closed afterwards, and wsgate_handshake_rejections_total{reason} counting it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import {
  closedPort,
  closeServer,
  converge,
  handshake,
  listen,
  openClient,
  rawExchange,
  rawRequest,
  roundTrip,
  startRawBackend,
  startWsBackend,
  stopGateway,
  type Client,
  type RawBackend,
  type RawResponse,
  type WsBackend,
} from '../helpers/l7-peers.ts';

const HANDSHAKE_TIMEOUT_MS = 500;

let echo: WsBackend;
let raw: RawBackend;
let silent: net.Server;
const silentSockets: net.Socket[] = [];
let plain: http.Server;
let plainConnections = 0;
let fullBacklog: ChildProcess;
let backlogFiller: net.Socket;
let gw: TestGateway;

/** A listener whose accept queue is full (listen(0), one connection never accepted): further SYNs are dropped. */
async function startFullBacklogListener(): Promise<number> {
  fullBacklog = spawn(
    '/usr/bin/python3',
    ['-c', "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()"],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await once(createInterface({ input: fullBacklog.stdout! }), 'line')) as [string];
  const port = Number(line);
  backlogFiller = net.connect({ host: '127.0.0.1', port });
  backlogFiller.on('error', () => {});
  await once(backlogFiller, 'connect');
  return port;
}

before(async () => {
  echo = await startWsBackend();
  raw = await startRawBackend();
  silent = net.createServer((s) => {
    silentSockets.push(s);
    s.on('error', () => {});
  });
  const silentPort = await listen(silent);
  plain = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('reached the backend'));
  });
  plain.on('connection', () => plainConnections++);
  const plainPort = await listen(plain);
  const refusedPort = await closedPort();
  const unansweredPort = await startFullBacklogListener();
  const echoBackend = backend('default/echo:80', echo.port);
  const route = (name: string, backends: ReturnType<typeof backend>[], policy = {}) =>
    httpRoute({ route: `default/${name}`, backends, policy });
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('ws.test', route('ws', [echoBackend])),
        vhost('origin.test', route('origin', [echoBackend], { allowedOrigins: ['https://good.example'] })),
        vhost('limit.test', route('limit', [echoBackend], { maxConnections: 2 })),
        vhost('perclient.test', route('perclient', [echoBackend], { maxConnectionsPerClient: 1 })),
        vhost('empty.test', route('empty', [backend('default/empty:80')])),
        vhost('refused.test', route('refused', [backend('default/refused:80', refusedPort)])),
        vhost('timeout.test', route('timeout', [backend('default/timeout:80', unansweredPort)], { connectTimeoutSeconds: 0.3 })),
        vhost('silent.test', route('silent', [backend('default/silent:80', silentPort)])),
        vhost('refuses.test', route('refuses', [backend('default/refuses:80', raw.port)])),
        vhost('retry.test', route('retry', [backend('default/retry:80', refusedPort, echo.port)])),
        vhost('http.test', route('http', [backend('default/http:80', plainPort)])),
      ],
    }),
    { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
  await raw.close();
  for (const s of silentSockets) s.destroy();
  await closeServer(silent);
  await closeServer(plain);
  backlogFiller.destroy();
  fullBacklog.kill();
});

async function rejections(reason: string): Promise<number> {
  return gw.metric('wsgate_handshake_rejections_total', { reason });
}

/** Sends `request`, checks the refusal (status, Connection: close, socket closed) and the metric's increment. */
async function expectRejected(request: string, status: number, reason: string): Promise<RawResponse> {
  const before = await rejections(reason);
  const { response, closed } = await rawRequest(gw.http.port, request);
  const res = await response;
  assert.equal(res.status, status, res.rawHead);
  assert.equal(res.headers['connection']?.toLowerCase(), 'close', res.rawHead);
  assert.equal(await rejections(reason), before + 1, `wsgate_handshake_rejections_total{reason="${reason}"}`);
  await closed; // and the socket is closed after the answer
  return res;
}

describe('handshakes refused by the request itself', { timeout: 10_000 }, () => {
  test('rejects a non-GET upgrade with 405 and Allow: GET', async () => {
    const res = await expectRejected(handshake({ host: 'ws.test', method: 'POST' }), 405, 'method_not_allowed');
    assert.equal(res.headers['allow'], 'GET');
  });

  test('rejects an Upgrade other than websocket with 400', async () => {
    await expectRejected(handshake({ host: 'ws.test', headers: { Upgrade: 'h2c' } }), 400, 'bad_upgrade');
  });

  test('rejects an Upgrade: websocket without Connection: upgrade with 400', async () => {
    await expectRejected(handshake({ host: 'ws.test', headers: { Connection: 'keep-alive' } }), 400, 'bad_connection');
  });

  test('rejects a malformed Sec-WebSocket-Key with 400', async () => {
    await expectRejected(handshake({ host: 'ws.test', headers: { 'Sec-WebSocket-Key': 'too-short' } }), 400, 'bad_key');
  });

  test('rejects version 8 with 426 and Sec-WebSocket-Version: 13', async () => {
    const res = await expectRejected(handshake({ host: 'ws.test', headers: { 'Sec-WebSocket-Version': '8' } }), 426, 'unsupported_version');
    assert.equal(res.headers['sec-websocket-version'], '13');
  });
});

describe('handshakes refused by the route', { timeout: 10_000 }, () => {
  test('rejects a host no route serves with 404', async () => {
    await expectRejected(handshake({ host: 'unknown.test' }), 404, 'no_route');
  });

  test('rejects an Origin the route does not allow with 403, and accepts an allowed one', async () => {
    await expectRejected(handshake({ host: 'origin.test', headers: { Origin: 'https://evil.example' } }), 403, 'origin_not_allowed');
    await expectRejected(handshake({ host: 'origin.test' }), 403, 'origin_not_allowed');
    const c = await openClient(gw.wsUrl, [], { headers: { Host: 'origin.test' }, origin: 'https://good.example' });
    assert.equal((await roundTrip(c, 'allowed')).data.toString(), 'allowed');
    c.ws.close();
    await c.closed;
  });

  test('rejects with 429 over maxConnections, and accepts again once one closes', async () => {
    const opts = { headers: { Host: 'limit.test' } };
    const held: Client[] = [await openClient(gw.wsUrl, [], opts), await openClient(gw.wsUrl, [], opts)];
    const res = await expectRejected(handshake({ host: 'limit.test' }), 429, 'over_limit');
    assert.equal(res.headers['retry-after'], '1');
    held[0]!.ws.close();
    await held[0]!.closed;
    await converge(async () => (await gw.metric('wsgate_connections_active', { route: 'default/limit' })) === 1, 'one limit.test tunnel left');
    const again = await openClient(gw.wsUrl, [], opts);
    assert.equal((await roundTrip(again, 'back in')).data.toString(), 'back in');
    for (const c of [held[1]!, again]) {
      c.ws.close();
      await c.closed;
    }
  });

  test('rejects with 429 over maxConnectionsPerClient, but not another client', async () => {
    const opts = { headers: { Host: 'perclient.test' } };
    const first = await openClient(gw.wsUrl, [], opts);
    await expectRejected(handshake({ host: 'perclient.test' }), 429, 'over_limit');
    // Another client address on the loopback network has its own allowance.
    const other = await openClient(gw.wsUrl, [], { ...opts, localAddress: '127.0.0.2' });
    assert.equal((await roundTrip(other, 'other client')).data.toString(), 'other client');
    first.ws.close();
    await first.closed;
    await converge(async () => (await gw.metric('wsgate_connections_active', { route: 'default/perclient' })) === 1, 'first client gone');
    const again = await openClient(gw.wsUrl, [], opts);
    assert.equal((await roundTrip(again, 'again')).data.toString(), 'again');
    for (const c of [other, again]) {
      c.ws.close();
      await c.closed;
    }
  });
});

describe('handshakes refused because of the backend', { timeout: 10_000 }, () => {
  test('answers 503 for a route without endpoints', async () => {
    await expectRejected(handshake({ host: 'empty.test' }), 503, 'no_endpoint');
  });

  test('answers 502 when the backend refuses the TCP connection', async () => {
    await expectRejected(handshake({ host: 'refused.test' }), 502, 'upstream_refused');
  });

  test('answers 504 when the TCP connect to the backend times out', async () => {
    const errors = await gw.metric('wsgate_upstream_connect_errors_total', { route: 'default/timeout', reason: 'timeout' });
    await expectRejected(handshake({ host: 'timeout.test' }), 504, 'upstream_timeout');
    assert.equal(await gw.metric('wsgate_upstream_connect_errors_total', { route: 'default/timeout', reason: 'timeout' }), errors + 1);
  });

  test('answers 504 when the backend accepts but never answers the handshake', async () => {
    await expectRejected(handshake({ host: 'silent.test' }), 504, 'upstream_timeout');
  });

  test("relays a backend's non-101 answer as it is, then closes", async () => {
    const answer = 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="wsgate"\r\nContent-Length: 12\r\n\r\nnot allowed\n';
    const before = await rejections('backend_refused_upgrade');
    const exchange = rawExchange(gw.http.port, handshake({ host: 'refuses.test' }));
    const peer = await raw.accepted.shift();
    peer.socket.write(answer);
    const res = await exchange;
    assert.equal(res.all.toString('latin1'), answer);
    assert.equal(await rejections('backend_refused_upgrade'), before + 1);
  });

  test('retries another endpoint when one refuses: every handshake succeeds', async () => {
    const refusedBefore = await gw.metric('wsgate_upstream_connect_errors_total', { route: 'default/retry', reason: 'refused' });
    for (let i = 0; i < 4; i++) {
      const c = await openClient(gw.wsUrl, [], { headers: { Host: 'retry.test' } });
      assert.equal((await roundTrip(c, `try ${i}`)).data.toString(), `try ${i}`);
      c.ws.close();
      await c.closed;
    }
    // The refusing endpoint was picked at least once, and its refusal was hidden from the client.
    assert.ok((await gw.metric('wsgate_upstream_connect_errors_total', { route: 'default/retry', reason: 'refused' })) > refusedBefore);
  });
});

describe('requests shaped for smuggling are refused before any backend sees them', { timeout: 10_000 }, () => {
  const cases: [string, string][] = [
    [
      'Content-Length together with Transfer-Encoding: chunked',
      'POST / HTTP/1.1\r\nHost: http.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['two different Content-Lengths', 'POST / HTTP/1.1\r\nHost: http.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['an obs-fold header continuation', 'GET / HTTP/1.1\r\nHost: http.test\r\nX-Folded: a\r\n b\r\n\r\n'],
    ['bare LF line endings', 'GET / HTTP/1.1\nHost: http.test\n\n'],
    ['a control character in a header value', 'GET / HTTP/1.1\r\nHost: http.test\r\nX-Bad: a\u0001b\r\n\r\n'],
    ['a space in a header name', 'GET / HTTP/1.1\r\nHost: http.test\r\nX Bad: 1\r\n\r\n'],
    ['a Transfer-Encoding that does not end in chunked', 'POST / HTTP/1.1\r\nHost: http.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
    ['an upgrade with two Content-Lengths', `${handshake({ host: 'ws.test', headers: { 'Content-Length': '0' } }).slice(0, -2)}Content-Length: 3\r\n\r\n`],
  ];
  for (const [what, request] of cases) {
    test(`rejects ${what} with 400`, async () => {
      await expectRejected(request, 400, 'bad_request');
    });
  }

  test('no smuggling-shaped request reached the backend, and a well-formed one does', async () => {
    assert.equal(plainConnections, 0);
    const res = await rawExchange(gw.http.port, 'GET / HTTP/1.1\r\nHost: http.test\r\nConnection: close\r\n\r\n');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'reached the backend');
    assert.equal(plainConnections, 1);
  });
});

describe('a slow request head', { timeout: 10_000 }, () => {
  test('is closed with 408 at the handshake timeout while another client is served', async () => {
    const before = await rejections('handshake_timeout');
    const slow = net.connect({ host: '127.0.0.1', port: gw.http.port });
    slow.on('error', () => {});
    const chunks: Buffer[] = [];
    slow.on('data', (c: Buffer) => chunks.push(c));
    const slowClosed = once(slow, 'close');
    await once(slow, 'connect');
    slow.write('GET / HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websock');
    // Meanwhile a whole WebSocket session on another connection.
    const c = await openClient(gw.wsUrl, [], { headers: { Host: 'ws.test' } });
    assert.equal((await roundTrip(c, 'not blocked')).data.toString(), 'not blocked');
    c.ws.close();
    await c.closed;
    await slowClosed;
    const text = Buffer.concat(chunks).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /\r\nConnection: close\r\n/i);
    assert.equal(await rejections('handshake_timeout'), before + 1);
  });
});
