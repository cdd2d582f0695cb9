// The first request head of a connection is read before http.Server (handshake-front.ts, issue 13): a WebSocket
// handshake goes to the upgrade path directly, anything else to http.Server with its bytes put back. What a client
// sees must not change either way: these cases pin the edges of that split with raw sockets and a raw backend (the
// same file passes against the code before the front existed).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import {
  closeOf,
  encodeFrame,
  frame,
  handshake,
  httpHead,
  parseResponse,
  rawConnect,
  rawExchange,
  readUntil,
  startRawBackend,
  stopGateway,
  switchingProtocols,
  type RawBackend,
} from '../helpers/l7-peers.ts';
import { writeChunks } from '../helpers/raw-tunnel.ts';

const HANDSHAKE_TIMEOUT_MS = 1_000;

let raw: RawBackend;
let plain: http.Server;
let gw: TestGateway;

before(async () => {
  raw = await startRawBackend();
  plain = http.createServer((req, res) => res.end(`plain ${req.method} ${req.url}`));
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  const plainPort = (plain.address() as AddressInfo).port;
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('plain.test', httpRoute({ route: 'default/plain', backends: [backend('default/plain:80', plainPort)] })),
        vhost('proto.test', httpRoute({ route: 'default/proto', backends: [backend('default/proto:80', raw.port)], policy: { subprotocols: ['b'] } })),
        vhost('*', httpRoute({ route: 'default/raw', backends: [backend('default/raw:80', raw.port)] })),
      ],
    }),
    { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
  );
});

after(async () => {
  await stopGateway(gw);
  await raw.close();
  plain.closeAllConnections();
  plain.close();
});

/** Everything the server writes until it closes the connection. */
async function collect(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await closeOf(socket);
  return Buffer.concat(chunks).toString('latin1');
}

describe('a WebSocket handshake read before http.Server', { timeout: 15_000 }, () => {
  test('is taken when its head arrives one byte per segment', async () => {
    const client = await rawConnect(gw.http.port);
    const head = handshake({ path: '/split?x=1', headers: { 'X-Test': 'split' } });
    const answer = readUntil(client, httpHead);
    await writeChunks(client, [...Buffer.from(head)].map((b) => Buffer.from([b])));
    const peer = await raw.accepted.shift();
    assert.match(peer.head, /^GET \/split\?x=1 HTTP\/1\.1\r\n/);
    assert.match(peer.head, /\r\nX-Test: split\r\n/);
    assert.match(peer.head, /\r\nUpgrade: websocket\r\n/);
    peer.socket.write(switchingProtocols(peer.head));
    assert.match((await answer).value, /^HTTP\/1\.1 101 /);
    client.destroy();
    peer.socket.destroy();
  });

  test('gives the backend every byte after the head, a pipelined request included, in order', async () => {
    const client = await rawConnect(gw.http.port);
    const pipelined = 'GET /next HTTP/1.1\r\nHost: example.test\r\n\r\n';
    const f = encodeFrame(0x1, 'after the head', true);
    client.write(Buffer.concat([Buffer.from(handshake()), Buffer.from(pipelined), f]));
    const peer = await raw.accepted.shift();
    const got = await readUntil(peer.socket, (buf) => (buf.length >= pipelined.length + f.length ? { value: buf, used: buf.length } : undefined), peer.rest);
    assert.equal(got.value.subarray(0, pipelined.length).toString('latin1'), pipelined);
    assert.deepEqual(got.value.subarray(pipelined.length, pipelined.length + f.length), f);
    assert.equal(frame(got.value.subarray(pipelined.length))?.value.payload.toString(), 'after the head');
    client.destroy();
    peer.socket.destroy();
  });

  test('reads duplicate header lines as http.Server does (Sec-WebSocket-Protocol lines joined)', async () => {
    const client = await rawConnect(gw.http.port);
    const head = handshake({ host: 'proto.test' }).replace('\r\n\r\n', '\r\nSec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n\r\n');
    client.write(head);
    const peer = await raw.accepted.shift();
    // The offer is "a, b"; the route allows b only, so b alone is forwarded.
    assert.match(peer.head, /\r\nSec-WebSocket-Protocol: b\r\n/);
    assert.doesNotMatch(peer.head, /Sec-WebSocket-Protocol: a/);
    client.destroy();
    peer.socket.destroy();
  });

  test('an HTTP/1.0 handshake reaches the backend, as through http.Server', async () => {
    const client = await rawConnect(gw.http.port);
    client.write(handshake().replace('HTTP/1.1', 'HTTP/1.0'));
    const peer = await raw.accepted.shift();
    assert.match(peer.head, /^GET \/ HTTP\/1\.1\r\n/);
    client.destroy();
    peer.socket.destroy();
  });
});

describe('what http.Server answers before a head is complete is answered the same', { timeout: 15_000 }, () => {
  test('a handshake head over the header size limit gets 431 and never reaches a backend', async () => {
    const before = raw.tcpConnections();
    const res = await rawExchange(gw.http.port, handshake({ headers: { 'X-Big': 'x'.repeat(20_000) } }));
    assert.equal(res.status, 431);
    assert.equal(raw.tcpConnections(), before);
  });

  test('a plain GET head over the size limit gets 431 too', async () => {
    const res = await rawExchange(gw.http.port, `GET / HTTP/1.1\r\nHost: plain.test\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    assert.equal(res.status, 431);
  });

  test('a head that does not complete in time gets 408', async () => {
    const client = await rawConnect(gw.http.port);
    const text = collect(client);
    client.write('GET / HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n');
    const t = await text;
    assert.match(t, /^HTTP\/1\.1 408 /);
    assert.match(t, /\r\nConnection: close\r\n/i);
  });

  test('a client that ends its side in the middle of a head gets 400', async () => {
    const client = await rawConnect(gw.http.port, true);
    const text = collect(client);
    client.end('GET / HTTP/1.1\r\nHost: example.test\r\nUpg');
    assert.match(await text, /^HTTP\/1\.1 400 /);
  });

  test('a client that ends its side after two bytes gets 400', async () => {
    const client = await rawConnect(gw.http.port, true);
    const text = collect(client);
    client.end('GE');
    assert.match(await text, /^HTTP\/1\.1 400 /);
  });

  test('a client that ends its side before sending anything is closed without an answer', async () => {
    const client = await rawConnect(gw.http.port, true);
    const text = collect(client);
    client.end();
    assert.equal(await text, '');
  });

  test('a malformed request line gets 400', async () => {
    const res = await rawExchange(gw.http.port, 'GET /a b c HTTP/1.1\r\nHost: example.test\r\n\r\n');
    assert.equal(res.status, 400);
  });
});

describe('connections that are not WebSocket handshakes go to http.Server as they came', { timeout: 15_000 }, () => {
  test('two keep-alive GETs on one connection are both answered', async () => {
    const client = await rawConnect(gw.http.port);
    const req = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: plain.test\r\n\r\n`;
    let buf: Buffer = Buffer.alloc(0);
    const responses: string[] = [];
    const two = new Promise<void>((resolve) => {
      client.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        for (;;) {
          const r = parseResponse(buf);
          const len = Number(r?.headers['content-length'] ?? -1);
          if (r === undefined || len < 0 || r.body.length < len) break;
          responses.push(r.body.subarray(0, len).toString());
          buf = r.body.subarray(len);
        }
        if (responses.length === 2) resolve();
      });
    });
    // Both in one write: the second is pipelined behind the first, which the front read.
    client.write(req('/one') + req('/two'));
    await two;
    assert.deepEqual(responses, ['plain GET /one', 'plain GET /two']);
    client.destroy();
  });

  test('a plain GET over TLS is handed over once decrypted, and answered', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      // The gateway's default certificate is self-signed: this test is about the bytes after the TLS handshake.
      const req = https.request({ host: '127.0.0.1', port: gw.https.port, path: '/tls', headers: { Host: 'plain.test' }, rejectUnauthorized: false, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, 'plain GET /tls');
  });

  test('a POST with a body is forwarded whole', async () => {
    const res = await rawExchange(gw.http.port, 'POST /p HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'plain POST /p');
  });

  test('a handshake with another method is refused with 405', async () => {
    const res = await rawExchange(gw.http.port, handshake({ method: 'POST' }));
    assert.equal(res.status, 405);
  });

  test('an Upgrade that is not websocket (h2c) is served as plain HTTP/1.1', async () => {
    const res = await rawExchange(gw.http.port, 'GET /h2c HTTP/1.1\r\nHost: plain.test\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'plain GET /h2c');
  });
});
