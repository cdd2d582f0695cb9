// The edges of the L7 data path found by issue 9: how backend answers are read (llhttp), refusals relayed with
// backpressure, plain HTTP timeouts, half-closed and aborting clients, retries, what the logs say, and what a stop
// does to a handshake in flight. Real sockets on loopback; raw peers where the exact bytes matter.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { backend, catchAll, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import {
  closedPort,
  closeOf,
  closeServer,
  converge,
  encodeFrame,
  handshake,
  listen,
  openClient,
  parseResponse,
  rawConnect,
  rawExchange,
  roundTrip,
  startRawBackend,
  startWsBackend,
  stopGateway,
  switchingProtocols,
  type RawBackend,
} from '../helpers/l7-peers.ts';
import { LogCapture } from '../helpers/serve-harness.ts';

/** Collects everything a raw client receives until the server closes. */
function collect(socket: net.Socket): { bytes: () => Buffer; closed: Promise<void> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks), closed: closeOf(socket) };
}

describe('backend answers read by llhttp', () => {
  let raw: RawBackend;
  let gw: TestGateway;
  before(async () => {
    raw = await startRawBackend();
    gw = await startGateway(catchAll([raw.port]), { handshakeTimeoutMs: 5_000 });
  });
  after(async () => {
    await stopGateway(gw);
    await raw.close();
  });

  test('makes a tunnel of a 101 that follows a 100 Continue, relaying both heads as received', async () => {
    const client = await rawConnect(gw.http.port);
    const got = collect(client);
    client.write(handshake());
    const peer = await raw.accepted.shift();
    const answer = `HTTP/1.1 100 Continue\r\n\r\n${switchingProtocols(peer.head)}`;
    peer.socket.write(answer);
    await converge(() => got.bytes().length >= answer.length, 'both heads relayed');
    assert.equal(got.bytes().toString('latin1'), answer);
    // The tunnel carries frames both ways.
    const frame = encodeFrame(0x1, 'from-backend', false);
    peer.socket.write(frame);
    await converge(() => got.bytes().subarray(answer.length).equals(frame), 'tunnel bytes');
    assert.equal(gw.gateway.registry.size, 1);
    // The client's FIN reaches the backend, whose own FIN ends the tunnel.
    const backendSawEnd = new Promise<void>((resolve) => peer.socket.once('end', () => resolve()));
    client.end();
    await backendSawEnd;
    peer.socket.end();
    await got.closed;
    await converge(() => gw.gateway.registry.size === 0, 'tunnel ended');
  });

  for (const [what, answer] of [
    ['a 204 No Content', 'HTTP/1.1 204 No Content\r\nX-Reason: nope\r\n\r\n'],
    ['a 304 Not Modified with a Content-Length', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n'],
    ['a chunked 403', 'HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
    ['a 401 with a Content-Length body', 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!'],
  ] as const) {
    test(`relays ${what} refusal exactly and closes the client without waiting for the backend to close`, async () => {
      const client = await rawConnect(gw.http.port);
      const got = collect(client);
      client.write(handshake());
      const peer = await raw.accepted.shift();
      // The backend keeps its connection open: the end of the response is known from its framing alone.
      peer.socket.write(answer);
      const backendReleased = new Promise<void>((resolve) => {
        peer.socket.once('end', resolve);
        peer.socket.once('close', resolve);
      });
      await got.closed;
      assert.equal(got.bytes().toString('latin1'), answer);
      // wsgate lets go of the backend connection too.
      await backendReleased;
    });
  }

  test('answers 502 to a backend whose answer is not HTTP, and counts upstream_bad_response', async () => {
    const before = await gw.metric('wsgate_handshake_rejections_total', { reason: 'upstream_bad_response' });
    const client = await rawConnect(gw.http.port);
    const got = collect(client);
    client.write(handshake());
    const peer = await raw.accepted.shift();
    peer.socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n');
    await got.closed;
    assert.equal(parseResponse(got.bytes())?.status, 502);
    assert.equal(await gw.metric('wsgate_handshake_rejections_total', { reason: 'upstream_bad_response' }), before + 1);
  });
});

describe('refusal relays respect backpressure', () => {
  test('reads a large refusal body from the backend only as fast as the client reads it, and delivers all of it', async () => {
    const BODY = 48 * 1024 * 1024;
    const raw = await startRawBackend();
    const gw = await startGateway(catchAll([raw.port]), { handshakeTimeoutMs: 30_000 });
    try {
      const client = await rawConnect(gw.http.port);
      client.pause();
      client.write(handshake());
      const peer = await raw.accepted.shift();
      const head = `HTTP/1.1 401 Unauthorized\r\nContent-Length: ${BODY}\r\n\r\n`;
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      // The backend writes as fast as its socket drains.
      const writeMore = (): void => {
        while (sent < BODY) {
          sent += chunk.length;
          if (!peer.socket.write(chunk)) return;
        }
      };
      peer.socket.write(head);
      peer.socket.on('drain', writeMore);
      writeMore();
      // With the client not reading, what the backend could hand over stops growing: the kernel buffers of two
      // loopback sockets and wsgate's bounded buffers, far from the whole body.
      let last = -1;
      await converge(
        () => {
          const flushed = peer.socket.bytesWritten;
          const stable = flushed === last;
          last = flushed;
          return stable;
        },
        'backend writes stall',
        5,
        20_000,
      );
      assert.ok(peer.socket.bytesWritten < 24 * 1024 * 1024, `backend flushed ${peer.socket.bytesWritten} bytes to a client that does not read`);
      // The client reads now: every byte arrives, then the connection closes.
      let received = 0;
      client.on('data', (c: Buffer) => (received += c.length));
      const closed = closeOf(client);
      client.resume();
      await closed;
      assert.equal(received, head.length + BODY);
    } finally {
      await gw.close();
      await raw.close();
    }
  });

  test('closes a refusal relay whose client stops reading for the handshake timeout, and frees the backend', async () => {
    const raw = await startRawBackend();
    const gw = await startGateway(catchAll([raw.port]), { handshakeTimeoutMs: 500 });
    try {
      const client = await rawConnect(gw.http.port);
      client.pause();
      client.write(handshake());
      const peer = await raw.accepted.shift();
      peer.socket.write(`HTTP/1.1 401 Unauthorized\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 0x62);
      const pump = (): void => {
        while (!peer.socket.destroyed && peer.socket.write(chunk));
      };
      peer.socket.on('drain', pump);
      pump();
      await closeOf(peer.socket);
      assert.equal(gw.gateway.balancer.activeOn(`127.0.0.1:${raw.port}`), 0);
      // The client, reading again, finds its connection ended (after the part of the body that was relayed).
      const closed = closeOf(client);
      client.resume();
      await closed;
    } finally {
      await gw.close();
      await raw.close();
    }
  });
});

describe('plain HTTP timeouts', () => {
  test('answers 504 when a backend accepts and never answers, counts the phase and frees the endpoint', async () => {
    // It reads (so that it sees wsgate's FIN) and never answers.
    const silent = net.createServer((s) => s.on('error', () => {}).resume());
    const port = await listen(silent);
    const gw = await startGateway(catchAll([port], { responseHeaderTimeoutSeconds: 1 }));
    try {
      const res = await rawExchange(gw.http.port, 'GET /slow HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
      assert.equal(res.status, 504);
      assert.equal(await gw.metric('wsgate_http_upstream_timeouts_total', { phase: 'response_header' }), 1);
      assert.equal(await gw.metric('wsgate_http_requests_total', { code: '504' }), 1);
      assert.equal(gw.gateway.balancer.activeOn(`127.0.0.1:${port}`), 0);
    } finally {
      await gw.close();
      await closeServer(silent);
    }
  });

  test('closes an exchange whose backend stalls mid-body for the idle timeout, and counts it', async () => {
    const stalls = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('only part of it');
    });
    const port = await listen(stalls);
    const gw = await startGateway(catchAll([port], { idleTimeoutSeconds: 1 }));
    try {
      const client = await rawConnect(gw.http.port);
      const got = collect(client);
      client.write('GET /stall HTTP/1.1\r\nHost: a.test\r\n\r\n');
      await got.closed;
      const res = parseResponse(got.bytes());
      assert.equal(res?.status, 200);
      assert.equal(res?.body.toString(), 'only part of it');
      assert.equal(await gw.metric('wsgate_http_upstream_timeouts_total', { phase: 'idle' }), 1);
    } finally {
      await gw.close();
      stalls.closeAllConnections();
      await closeServer(stalls);
    }
  });
});

describe('clients that half-close or abort', () => {
  let backendServer: http.Server;
  let gw: TestGateway;
  let log: LogCapture;
  let hold: ((res: http.ServerResponse) => void) | undefined;
  before(async () => {
    backendServer = http.createServer((req, res) => {
      if (req.url === '/hold' && hold) return hold(res);
      res.end(`hello ${req.url}`);
    });
    log = new LogCapture('debug');
    gw = await startGateway(catchAll([await listen(backendServer)]), { log: log.logger });
  });
  after(async () => {
    await gw.close();
    backendServer.closeAllConnections();
    await closeServer(backendServer);
  });

  test('answers a client that half-closes right after its request (printf | nc -N), and counts no upstream error', async () => {
    const client = await rawConnect(gw.http.port, true);
    const got = collect(client);
    client.end('GET /half HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await got.closed;
    const res = parseResponse(got.bytes());
    assert.equal(res?.status, 200);
    assert.equal(res?.body.toString(), 'hello /half');
    assert.equal(await gw.metric('wsgate_upstream_connect_errors_total'), 0);
    assert.equal(await gw.metric('wsgate_http_requests_total', { code: '502' }), 0);
  });

  test('logs a client that gives up before the response as 499 and client_abort, never as an upstream error', async () => {
    let held: http.ServerResponse | undefined;
    const arrived = new Promise<void>((resolve) => {
      hold = (res) => {
        held = res;
        resolve();
      };
    });
    const client = await rawConnect(gw.http.port);
    client.write('GET /hold HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await arrived;
    // An abort is a reset. A FIN alone is a half-close, after which the response is still owed (HAProxy's default,
    // without abortonclose).
    client.resetAndDestroy();
    const line = await log.waitFor((l) => l.msg === 'request' && l['path'] === '/hold', 'the /hold request line');
    assert.equal(line['status'], 499);
    assert.equal(line['outcome'], 'client_abort');
    assert.equal(await gw.metric('wsgate_http_requests_total', { code: '499' }), 1);
    assert.equal(await gw.metric('wsgate_upstream_connect_errors_total'), 0);
    held?.destroy();
    hold = undefined;
  });
});

describe('retries and logs', () => {
  test('retries a GET on another endpoint when one of three refuses, as the README says', async () => {
    const servers = [http.createServer((_q, r) => r.end('one')), http.createServer((_q, r) => r.end('two'))];
    // Port 1 (tcpmux) on loopback: privileged, so no test can be listening there while this one runs.
    const ports = [1, await listen(servers[0]!), await listen(servers[1]!)];
    // Round robin visits the refusing endpoint first, then every third request.
    const gw = await startGateway(catchAll(ports, { loadBalancing: { policy: 'RoundRobin' } }));
    try {
      for (let i = 0; i < 9; i++) {
        const res = await rawExchange(gw.http.port, `GET /r${i} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
        assert.equal(res.status, 200, `request ${i}`);
      }
      assert.ok((await gw.metric('wsgate_upstream_connect_errors_total', { reason: 'refused' })) >= 1);
      assert.equal(await gw.metric('wsgate_http_requests_total', { code: '200' }), 9);
    } finally {
      await gw.close();
      for (const s of servers) await closeServer(s);
    }
  });

  test('names host and path in handshake rejections and requests, and logs each tunnel opening at debug', async () => {
    const ws = await startWsBackend();
    const log = new LogCapture('debug');
    const gw = await startGateway(
      table({ virtualHosts: [vhost('chat.test', httpRoute({ route: 'default/chat', path: '/ws', backends: [backend('b', ws.port)] }))] }),
      { log: log.logger },
    );
    try {
      await rawExchange(gw.http.port, handshake({ host: 'chat.test', path: '/nowhere' }));
      const rejected = await log.waitFor((l) => l.msg === 'handshake rejected', 'handshake rejected');
      assert.equal(rejected['host'], 'chat.test');
      assert.equal(rejected['path'], '/nowhere');
      assert.equal(rejected['status'], 404);
      await rawExchange(gw.http.port, 'GET /page HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n');
      const request = await log.waitFor((l) => l.msg === 'request', 'request');
      assert.equal(request['host'], 'other.test');
      assert.equal(request['path'], '/page');
      const c = await openClient(`${gw.wsUrl}/ws`, [], { headers: { Host: 'chat.test' } });
      assert.equal((await roundTrip(c, 'hi')).data.toString(), 'hi');
      const opened = await log.waitFor((l) => l.msg === 'tunnel opened', 'tunnel opened');
      assert.equal(opened['route'], 'default/chat');
      c.ws.close();
      await c.closed;
    } finally {
      await stopGateway(gw);
      await ws.close();
    }
  });

  test('rate-limits the log lines a flood of junk requests causes, and counts what it drops', async () => {
    const log = new LogCapture('info');
    const gw = await startGateway(catchAll([await closedPort()]), { log: log.logger });
    try {
      const startedAt = performance.now();
      const N = 200;
      await Promise.all(Array.from({ length: N }, () => rawExchange(gw.http.port, 'GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')));
      const seconds = Math.ceil((performance.now() - startedAt) / 1000) + 1;
      const written = log.lines.filter((l) => l.msg === 'malformed request').length;
      const suppressed = await gw.metric('wsgate_log_lines_suppressed_total', { message: 'malformed request' });
      assert.ok(written <= 20 * seconds, `${written} lines in at most ${seconds} s`);
      assert.equal(written + suppressed, N);
    } finally {
      await gw.close();
    }
  });
});

describe('deleted routes leave nothing behind', () => {
  test('removes the metric series and round-robin cursor of a route once it has left the table', async () => {
    const ws = await startWsBackend();
    const gone = table({
      virtualHosts: [
        vhost('*', httpRoute({ route: 'default/gone', id: 'gone', backends: [backend('b', ws.port)], policy: { loadBalancing: { policy: 'RoundRobin' } } })),
      ],
    });
    const gw = await startGateway(gone);
    try {
      const c = await openClient(gw.wsUrl);
      await roundTrip(c, 'x');
      c.ws.close();
      await c.closed;
      await converge(async () => (await gw.metric('wsgate_connections_total', { route: 'default/gone' })) === 1, 'counted');
      await gw.gateway.apply(catchAll([ws.port], undefined, 'default/stays'));
      const text = await gw.metrics.registry.metrics();
      await converge(async () => !(await gw.metrics.registry.metrics()).includes('route="default/gone"'), 'series of the deleted route removed');
      assert.ok(text.length > 0);
      assert.equal(gw.gateway.balancer.cursors, 0);
    } finally {
      await stopGateway(gw);
      await ws.close();
    }
  });

  test('keeps a deleted route series while one of its tunnels lives, and removes it when the tunnel ends', async () => {
    const ws = await startWsBackend();
    const gw = await startGateway(catchAll([ws.port], undefined, 'default/going'));
    try {
      const c = await openClient(gw.wsUrl);
      await gw.gateway.apply(catchAll([ws.port], undefined, 'default/stays'));
      assert.equal(await gw.metric('wsgate_connections_active', { route: 'default/going' }), 1);
      c.ws.close();
      await c.closed;
      await converge(async () => !(await gw.metrics.registry.metrics()).includes('route="default/going"'), 'series removed after the last tunnel');
    } finally {
      await stopGateway(gw);
      await ws.close();
    }
  });
});

describe('a stop in the middle of a handshake', () => {
  test('never lets a handshake that completes during the final close become a tunnel, and stop() returns', async () => {
    const raw = await startRawBackend();
    const gw = await startGateway(catchAll([raw.port]));
    try {
      const client = await rawConnect(gw.http.port);
      const got = collect(client);
      client.write(handshake());
      const peer = await raw.accepted.shift();
      assert.equal(gw.gateway.registry.pendingSize, 1);
      // The stop begins while the backend has not answered; the grace period is 0, so the close comes at once.
      const stopped = gw.gateway.stop(0);
      peer.socket.write(switchingProtocols(peer.head));
      await stopped;
      await got.closed;
      await closeOf(peer.socket);
      assert.equal(gw.gateway.registry.size, 0);
      assert.equal(gw.gateway.registry.pendingSize, 0);
      assert.equal(await gw.metric('wsgate_connections_active'), 0);
      assert.equal(await gw.metric('wsgate_connections_total', { outcome: 'shutdown' }), 1);
    } finally {
      await raw.close();
    }
  });

  test('lets a handshake in flight during the drain finish as a tunnel, then closes it with 1001 and its close handshake', async () => {
    const raw = await startRawBackend();
    const gw = await startGateway(catchAll([raw.port]));
    try {
      const client = await rawConnect(gw.http.port);
      const got = collect(client);
      client.write(handshake());
      const peer = await raw.accepted.shift();
      const stopped = gw.gateway.stop(60_000);
      const answer = switchingProtocols(peer.head);
      peer.socket.write(answer);
      // The tunnel exists, in the registry: the drain closes it with Going Away (it came late, it goes first).
      await converge(() => got.bytes().length >= answer.length + 4, '101 and a close frame relayed during the drain');
      const frame = got.bytes().subarray(answer.length);
      assert.equal(frame[0], 0x88, 'a close frame, unmasked (from the server side)');
      assert.equal(frame.readUInt16BE(2), 1001);
      // The client answers the close; the backend gets that answer, and closes its TCP connection.
      client.write(encodeFrame(0x8, Buffer.from([0x03, 0xe9]), true));
      const backendGot: Buffer[] = [];
      peer.socket.on('data', (c: Buffer) => backendGot.push(c));
      await converge(() => Buffer.concat(backendGot).length >= 8, 'the client close reached the backend');
      peer.socket.end();
      await stopped;
      await got.closed;
      assert.equal(gw.gateway.registry.size, 0);
      assert.equal(await gw.metric('wsgate_connections_total', { outcome: 'shutdown' }), 1);
    } finally {
      await raw.close();
    }
  });
});

