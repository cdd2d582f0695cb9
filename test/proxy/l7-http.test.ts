// Plain HTTP requests through the L7 proxy: bodies streamed both ways, chunked uploads, keep-alive to backends,
// and the answers wsgate gives itself (404, 502, 503), counted in wsgate_http_requests_total{code}.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closedPort, closeServer, converge, listen, stopGateway } from '../helpers/l7-peers.ts';

let origin: http.Server;
let originConnections = 0;
let gw: TestGateway;
/** A client agent of our own, so that the test's connections to wsgate are not shared with other files. */
const agent = new http.Agent({ keepAlive: true });

before(async () => {
  // Echoes method, path and body; reports the headers it received in X-Seen-* response headers.
  origin = http.createServer((req, res) => {
    res.writeHead(200, {
      'Content-Type': 'application/octet-stream',
      'X-Seen-Method': req.method ?? '',
      'X-Seen-Path': req.url ?? '',
      'X-Seen-Transfer-Encoding': req.headers['transfer-encoding'] ?? 'none',
      'X-Seen-Forwarded-For': req.headers['x-forwarded-for'] ?? '',
    });
    req.pipe(res);
  });
  origin.on('connection', () => originConnections++);
  const port = await listen(origin);
  const refused = await closedPort();
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('app.test', httpRoute({ route: 'default/app', backends: [backend('default/app:80', port)] })),
        vhost('empty.test', httpRoute({ route: 'default/empty', backends: [backend('default/empty:80')] })),
        vhost('refused.test', httpRoute({ route: 'default/refused', backends: [backend('default/refused:80', refused)] })),
      ],
    }),
  );
});

after(async () => {
  agent.destroy();
  await stopGateway(gw);
  await closeServer(origin);
});

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request through wsgate; `body` is written in the chunks given (a chunked upload without Content-Length). */
async function request(host: string, o: { method?: string; path?: string; body?: Buffer[]; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  const req = http.request({
    host: '127.0.0.1',
    port: gw.http.port,
    method: o.method ?? 'GET',
    path: o.path ?? '/',
    headers: { Host: host, ...o.headers },
    agent,
  });
  const response = once(req, 'response') as Promise<[http.IncomingMessage]>;
  for (const chunk of o.body ?? []) {
    if (!req.write(chunk)) await once(req, 'drain');
  }
  req.end();
  const [res] = await response;
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('plain HTTP through wsgate', { timeout: 20_000 }, () => {
  test('proxies a GET with its path and query, adding X-Forwarded-For', async () => {
    const r = await request('app.test', { path: '/a/b?c=d' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-seen-method'], 'GET');
    assert.equal(r.headers['x-seen-path'], '/a/b?c=d');
    assert.equal(r.headers['x-seen-forwarded-for'], '127.0.0.1');
  });

  test('streams a 5 MiB POST body to the backend and its 5 MiB answer back', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const pieces: Buffer[] = [];
    for (let off = 0; off < body.length; off += 256 * 1024) pieces.push(body.subarray(off, off + 256 * 1024));
    const r = await request('app.test', { method: 'POST', body: pieces, headers: { 'Content-Length': body.length } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, body.length);
    assert.equal(sha(r.body), sha(body));
  });

  test('proxies a chunked request body as chunked', async () => {
    const pieces = [Buffer.from('first,'), Buffer.from('second,'), Buffer.from('third')];
    const r = await request('app.test', { method: 'PUT', body: pieces });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-seen-transfer-encoding'], 'chunked');
    assert.equal(r.body.toString(), 'first,second,third');
  });

  test('reuses keep-alive connections to the backend across sequential requests', async () => {
    const before = originConnections;
    for (let i = 0; i < 20; i++) {
      const r = await request('app.test', { path: `/seq/${i}` });
      assert.equal(r.headers['x-seen-path'], `/seq/${i}`);
    }
    const opened = originConnections - before;
    assert.ok(opened < 20, `20 sequential requests opened ${opened} backend connections`);
  });

  test('serves an h2c upgrade offer as plain HTTP/1.1, without the Upgrade reaching the backend', async () => {
    const r = await request('app.test', {
      path: '/h2c',
      headers: { Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-seen-path'], '/h2c');
    assert.equal(r.headers['upgrade'], undefined);
  });

  test('answers 404 for a host without a route', async () => {
    const before = await gw.metric('wsgate_http_requests_total', { route: '', code: '404' });
    const r = await request('nowhere.test');
    assert.equal(r.status, 404);
    assert.equal(await gw.metric('wsgate_http_requests_total', { route: '', code: '404' }), before + 1);
  });

  test('answers 503 for a route without endpoints', async () => {
    const before = await gw.metric('wsgate_http_requests_total', { route: 'default/empty', code: '503' });
    const r = await request('empty.test');
    assert.equal(r.status, 503);
    assert.equal(await gw.metric('wsgate_http_requests_total', { route: 'default/empty', code: '503' }), before + 1);
  });

  test('answers 502 when the backend refuses the connection', async () => {
    const before = await gw.metric('wsgate_http_requests_total', { route: 'default/refused', code: '502' });
    const r = await request('refused.test');
    assert.equal(r.status, 502);
    assert.equal(await gw.metric('wsgate_http_requests_total', { route: 'default/refused', code: '502' }), before + 1);
  });

  test("counts proxied answers by the backend's status code", async () => {
    const before = await gw.metric('wsgate_http_requests_total', { route: 'default/app', code: '200' });
    await request('app.test');
    await request('app.test');
    // The counter is incremented when the response closes, which may follow the client's last byte.
    await converge(
      async () => (await gw.metric('wsgate_http_requests_total', { route: 'default/app', code: '200' })) >= before + 2,
      'wsgate_http_requests_total{code="200"} +2',
    );
    assert.equal(await gw.metric('wsgate_http_requests_total', { route: 'default/app', code: '200' }), before + 2);
  });
});
