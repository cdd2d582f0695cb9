// The edge policy on the L7 listeners (issue 12), with real clients and backends: the HTTPS redirect, source ranges,
// the request rate, HSTS, the request body limit and CORS, each for a WebSocket handshake and a plain HTTP request.
// Clients connect from addresses of 127.0.0.0/8 other than 127.0.0.1 (Linux routes the whole /8 to loopback), so
// that source ranges and per-client rates see different clients.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { DEFAULT_POLICY, type Policy } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { openClient, roundTrip, startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';

/** What a handshake got: 101, or the refusal's status and headers. */
interface HandshakeAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A `ws` handshake to the gateway, from `localAddress`, for `host` and `path`. */
function handshake(port: number, o: { host: string; path?: string; from?: string; tls?: { ca: string } }): Promise<HandshakeAnswer> {
  return new Promise((resolve, reject) => {
    const scheme = o.tls ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://127.0.0.1:${port}${o.path ?? '/'}`, {
      headers: { Host: o.host },
      ...(o.from ? { localAddress: o.from } : {}),
      ...(o.tls ? { ca: o.tls.ca, servername: o.host } : {}),
      followRedirects: false,
    });
    ws.once('open', () => {
      resolve({ status: 101, headers: {}, body: '' });
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/** A plain HTTP request to the gateway. */
function request(
  port: number,
  o: { host: string; path?: string; from?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<HandshakeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        headers: { Host: o.host, ...o.headers },
        ...(o.from ? { localAddress: o.from } : {}),
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

let ca: TestCA;
let ws: WsBackend;
let web: http.Server;
let webPort: number;
/** What the plain HTTP backend saw: X-Real-IP and the body length of each request. */
const seen: { realIP: string | undefined; forwardedFor: string | undefined; bodyBytes: number }[] = [];
let gw: TestGateway;

function route(host: string, policy: Partial<Policy>, path = '/') {
  return vhost(host, httpRoute({ route: `default/${host}`, path, backends: [backend('default/echo:80', ws.port)], policy }));
}

function webRoute(host: string, policy: Partial<Policy>) {
  return vhost(host, httpRoute({ route: `default/${host}`, backends: [backend('default/web:80', webPort)], policy }));
}

before(async () => {
  ca = createTestCA();
  ws = await startWsBackend();
  web = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      seen.push({ realIP: req.headers['x-real-ip'] as string | undefined, forwardedFor: req.headers['x-forwarded-for'] as string | undefined, bodyBytes: n });
      res.end('backend says hi');
    });
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
  const always = { ...DEFAULT_POLICY.httpsRedirect, mode: 'Always' as const };
  const tlsCert = ca.issue(['tls.test']);
  gw = await startGateway(
    table({
      virtualHosts: [
        route('tls.test', { httpsRedirect: { ...always, mode: 'IfTLS' }, hsts: { maxAgeSeconds: 600, includeSubDomains: true, preload: false } }),
        route('notls.test', { httpsRedirect: { ...always, mode: 'IfTLS' } }),
        route('always.test', { httpsRedirect: always }),
        route('follow.test', { httpsRedirect: { ...always, webSocket: 'Redirect', statusCode: 301 } }),
        route('allow.test', { allowedSourceRanges: ['127.0.0.2/32', '::1/128'], deniedSourceRanges: ['127.0.0.3/32'] }),
        route('rate.test', { rateLimit: { requestsPerSecond: 1, burst: 2 } }),
        webRoute('web-allow.test', { allowedSourceRanges: ['127.0.0.2/32'] }),
        webRoute('web-tls.test', { httpsRedirect: { ...always, mode: 'IfTLS' }, hsts: { maxAgeSeconds: 600, includeSubDomains: true, preload: false } }),
        webRoute('web-rate.test', { rateLimit: { requestsPerSecond: 1, burst: 1 } }),
        webRoute('web-body.test', { maxRequestBodyBytes: 1024 }),
        webRoute('web-cors.test', { cors: { ...DEFAULT_POLICY.cors, allowOrigins: ['https://app.test'] } }),
      ],
      certificates: [
        { secret: 'default/tls', hostnames: ['tls.test'], ...tlsCert },
        { secret: 'default/web-tls', hostnames: ['web-tls.test'], ...ca.issue(['web-tls.test']) },
      ],
    }),
    { edge: { redirectHttpsPort: 8443 } },
  );
});

after(async () => {
  await stopGateway(gw);
  await ws.close();
  await new Promise<void>((r) => web.close(() => r()));
  ca.dispose();
});

describe('the HTTPS redirect', { timeout: 20_000 }, () => {
  test('answers plain HTTP on a host with TLS 308 to its https:// URL, query kept', async () => {
    const before = seen.length;
    const r = await request(gw.http.port, { host: 'web-tls.test', path: '/a/b?c=1' });
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, 'https://web-tls.test:8443/a/b?c=1');
    assert.equal(seen.length, before, 'the backend saw the request');
  });

  test('answers a WebSocket handshake on a host with TLS 426 naming the wss:// URL, and never reaches the backend', async () => {
    const before = ws.tcpConnections();
    const r = await handshake(gw.http.port, { host: 'tls.test', path: '/chat' });
    assert.equal(r.status, 426);
    assert.match(r.body, /wss:\/\/tls\.test:8443\/chat/);
    assert.equal(ws.tcpConnections(), before);
  });

  test('serves the same handshake over TLS, with no redirect there', async () => {
    const r = await handshake(gw.https.port, { host: 'tls.test', tls: { ca: ca.certPem } });
    assert.equal(r.status, 101);
  });

  test('leaves a host without a certificate on plain HTTP under IfTLS', async () => {
    const c = await openClient(`ws://127.0.0.1:${gw.http.port}/`, [], { headers: { Host: 'notls.test' } });
    assert.equal((await roundTrip(c, 'still plain')).data.toString(), 'still plain');
    c.ws.close();
  });

  test('redirects every host under Always, and a handshake with webSocket: Redirect gets the redirect status', async () => {
    assert.equal((await handshake(gw.http.port, { host: 'always.test' })).status, 426);
    const r = await handshake(gw.http.port, { host: 'follow.test', path: '/ws' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://follow.test:8443/ws');
  });

  test('adds Strict-Transport-Security to responses over TLS', async () => {
    const r = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = httpsGet(gw.https.port, 'web-tls.test', ca.certPem, resolve);
      req.on('error', reject);
    });
    r.resume();
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['strict-transport-security'], 'max-age=600; includeSubDomains');
  });
});

function httpsGet(port: number, host: string, caPem: string, cb: (res: http.IncomingMessage) => void): http.ClientRequest {
  return https.get({ host: '127.0.0.1', port, servername: host, headers: { Host: host }, ca: caPem, agent: false }, cb);
}

describe('source ranges', { timeout: 20_000 }, () => {
  test('admits a handshake from an allowed address and refuses others with 403, denied ranges first', async () => {
    assert.equal((await handshake(gw.http.port, { host: 'allow.test', from: '127.0.0.2' })).status, 101);
    assert.equal((await handshake(gw.http.port, { host: 'allow.test', from: '127.0.0.4' })).status, 403);
    assert.equal((await handshake(gw.http.port, { host: 'allow.test', from: '127.0.0.3' })).status, 403);
    assert.ok((await gw.metric('wsgate_handshake_rejections_total', { reason: 'source_denied' })) >= 2);
  });

  test('refuses plain HTTP from outside the allowed range with 403, and the backend never sees it', async () => {
    const before = seen.length;
    assert.equal((await request(gw.http.port, { host: 'web-allow.test', from: '127.0.0.5' })).status, 403);
    assert.equal(seen.length, before);
    const ok = await request(gw.http.port, { host: 'web-allow.test', from: '127.0.0.2' });
    assert.equal(ok.status, 200);
    assert.equal(seen.at(-1)?.realIP, '127.0.0.2');
  });
});

describe('the request rate per client', { timeout: 20_000 }, () => {
  test('answers handshakes over the burst 429 with Retry-After, per client address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await handshake(gw.http.port, { host: 'rate.test', from: '127.0.0.6' })).status);
    // A burst of 2 at 1/s: at most one token can come back while four handshakes are made.
    assert.deepEqual(statuses.slice(0, 2), [101, 101]);
    assert.ok(statuses.slice(2).includes(429), `statuses ${statuses.join(',')}`);
    const limited = await handshake(gw.http.port, { host: 'rate.test', from: '127.0.0.6' });
    if (limited.status === 429) assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);
    // Another client has a bucket of its own.
    assert.equal((await handshake(gw.http.port, { host: 'rate.test', from: '127.0.0.7' })).status, 101);
    assert.ok((await gw.metric('wsgate_handshake_rejections_total', { reason: 'rate_limited' })) >= 1);
  });

  test('answers plain HTTP over the rate 429 with Retry-After', async () => {
    const first = await request(gw.http.port, { host: 'web-rate.test', from: '127.0.0.8' });
    const second = await request(gw.http.port, { host: 'web-rate.test', from: '127.0.0.8' });
    const third = await request(gw.http.port, { host: 'web-rate.test', from: '127.0.0.8' });
    assert.equal(first.status, 200);
    const limited = [second, third].find((r) => r.status === 429);
    assert.ok(limited, 'no 429');
    assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);
  });
});

describe('the request body limit', { timeout: 20_000 }, () => {
  test('answers 413 to a Content-Length over the limit without reaching the backend, and passes one under it', async () => {
    const before = seen.length;
    assert.equal((await request(gw.http.port, { host: 'web-body.test', method: 'POST', body: Buffer.alloc(2048) })).status, 413);
    assert.equal(seen.length, before);
    const ok = await request(gw.http.port, { host: 'web-body.test', method: 'POST', body: Buffer.alloc(512) });
    assert.equal(ok.status, 200);
    assert.equal(seen.at(-1)?.bodyBytes, 512);
  });

  test('answers 413 to a chunked body that grows over the limit', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: gw.http.port, method: 'POST', headers: { Host: 'web-body.test' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      // No Content-Length: Node sends the chunks as they come.
      for (let i = 0; i < 8; i++) req.write(Buffer.alloc(512));
      req.end();
    });
    assert.equal(r, 413);
  });
});

describe('CORS', { timeout: 20_000 }, () => {
  test('answers a preflight from an allowed origin itself, and adds the allow header to the response', async () => {
    const before = seen.length;
    const pre = await request(gw.http.port, {
      host: 'web-cors.test',
      method: 'OPTIONS',
      headers: { Origin: 'https://app.test', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.test');
    assert.equal(seen.length, before, 'the preflight reached the backend');
    const r = await request(gw.http.port, { host: 'web-cors.test', headers: { Origin: 'https://app.test' } });
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.test');
    const other = await request(gw.http.port, { host: 'web-cors.test', headers: { Origin: 'https://evil.test' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });
});

describe('source ranges over IPv6', { timeout: 20_000 }, () => {
  test('admits a client in an allowed IPv6 range and refuses one in a denied one (a gateway on ::1)', async () => {
    const b = backend('default/echo:80', ws.port);
    const v6 = await startGateway(
      table({
        virtualHosts: [
          vhost('in.test', httpRoute({ route: 'default/in', backends: [b], policy: { allowedSourceRanges: ['::1/128'] } })),
          vhost('out.test', httpRoute({ route: 'default/out', backends: [b], policy: { allowedSourceRanges: ['2001:db8::/32'] } })),
          vhost('denied.test', httpRoute({ route: 'default/denied', backends: [b], policy: { deniedSourceRanges: ['::/0'] } })),
        ],
      }),
      { host: '::1' },
    );
    try {
      const at = (host: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const c = new WebSocket(`ws://[::1]:${v6.http.port}/`, { headers: { Host: host } });
          c.once('open', () => {
            resolve(101);
            c.close();
          });
          c.once('unexpected-response', (_req, res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          c.once('error', (err) => {
            if (!/Unexpected server response/.test(err.message)) reject(err);
          });
        });
      assert.equal(await at('in.test'), 101);
      assert.equal(await at('out.test'), 403);
      assert.equal(await at('denied.test'), 403);
    } finally {
      await stopGateway(v6);
    }
  });
});
