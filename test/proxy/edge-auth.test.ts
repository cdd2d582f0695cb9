// External auth (issue 12: auth-url) against a small real auth server: a 2xx lets the handshake or request through
// with the answer's headers, a 401/403 goes to the client, a timeout or another answer gives 503 (or 500 by policy).
// The auth server records every sub-request: it must never see Upgrade, Connection: upgrade or Sec-WebSocket-*.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { DEFAULT_POLICY, type ExternalAuth } from '../../src/model/table.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';

let authServer: http.Server;
let authPort: number;
/** Every sub-request the auth server got: its path and headers. */
const asked: { path: string; headers: http.IncomingHttpHeaders }[] = [];
/** Responses held by /slow, ended in after(). */
const held: http.ServerResponse[] = [];
let ws: WsBackend;
let web: http.Server;
let webPort: number;
const webSaw: http.IncomingHttpHeaders[] = [];
let gw: TestGateway;

function auth(path: string, o: Partial<ExternalAuth> = {}): ExternalAuth {
  return { ...DEFAULT_POLICY.externalAuth, url: `http://127.0.0.1:${authPort}${path}`, responseHeaders: ['x-user'], timeoutSeconds: 1, ...o };
}

before(async () => {
  authServer = http.createServer((req, res) => {
    asked.push({ path: req.url ?? '', headers: req.headers });
    if (req.url === '/ok') {
      res.writeHead(200, { 'X-User': 'alice', 'X-Other': 'not copied' });
      res.end();
    } else if (req.url === '/deny') {
      res.writeHead(401, { 'WWW-Authenticate': 'Bearer realm="chat"' });
      res.end('no');
    } else if (req.url === '/forbid') {
      res.writeHead(403);
      res.end();
    } else if (req.url === '/broken') {
      res.writeHead(502);
      res.end();
    } else {
      held.push(res); // /slow: never answers
    }
  });
  await new Promise<void>((r) => authServer.listen(0, '127.0.0.1', r));
  authPort = (authServer.address() as AddressInfo).port;
  ws = await startWsBackend();
  web = http.createServer((req, res) => {
    webSaw.push(req.headers);
    res.end('ok');
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  webPort = (web.address() as AddressInfo).port;
  const wsRoute = (host: string, a: ExternalAuth) => vhost(host, httpRoute({ route: `default/${host}`, backends: [backend('default/ws:80', ws.port)], policy: { externalAuth: a } }));
  const webRoute = (host: string, a: ExternalAuth) => vhost(host, httpRoute({ route: `default/${host}`, backends: [backend('default/web:80', webPort)], policy: { externalAuth: a } }));
  gw = await startGateway(
    table({
      virtualHosts: [
        wsRoute('ok.test', auth('/ok')),
        wsRoute('deny.test', auth('/deny')),
        wsRoute('forbid.test', auth('/forbid')),
        wsRoute('slow.test', auth('/slow')),
        wsRoute('slow500.test', auth('/slow', { failureStatus: 500 })),
        wsRoute('broken.test', auth('/broken')),
        webRoute('web-ok.test', auth('/ok')),
        webRoute('web-deny.test', auth('/deny')),
        webRoute('web-cached.test', auth('/ok', { cacheSeconds: 60 })),
      ],
    }),
  );
});

after(async () => {
  await stopGateway(gw);
  for (const r of held) r.destroy();
  await new Promise<void>((r) => authServer.close(() => r()));
  authServer.closeAllConnections();
  await ws.close();
  await new Promise<void>((r) => web.close(() => r()));
});

/** A handshake with credentials: 101 (and what the backend saw), or the refusal. */
function handshake(host: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const c = new WebSocket(`ws://127.0.0.1:${gw.http.port}/room?id=7`, {
      headers: { Host: host, Authorization: 'Bearer t0ken', Cookie: 'sid=abc', 'X-User': 'mallory' },
    });
    c.once('open', () => {
      resolve({ status: 101, headers: {} });
      c.close();
    });
    c.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    c.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

function get(host: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: gw.http.port, path: '/page?x=1', headers: { Host: host, Authorization: 'Bearer t0ken', 'X-User': 'mallory' }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
  });
}

/** The sub-requests made while `f` ran. */
async function during<T>(f: () => Promise<T>): Promise<{ result: T; subRequests: typeof asked }> {
  const before = asked.length;
  const result = await f();
  return { result, subRequests: asked.slice(before) };
}

describe('external auth on WebSocket handshakes', { timeout: 20_000 }, () => {
  test('lets a handshake through on 2xx, with the copied header replacing the client\'s, and the auth server sees no Upgrade', async () => {
    const { result, subRequests } = await during(() => handshake('ok.test'));
    assert.equal(result.status, 101);
    const conn = await ws.connections.shift();
    assert.equal(conn.req.headers['x-user'], 'alice');
    assert.equal(conn.req.headers['x-other'], undefined);
    assert.equal(subRequests.length, 1);
    const h = subRequests[0]!.headers;
    assert.equal(h.upgrade, undefined);
    assert.doesNotMatch(String(h.connection ?? ''), /upgrade/i);
    assert.equal(h['sec-websocket-key'], undefined);
    assert.equal(h.authorization, 'Bearer t0ken');
    assert.equal(h.cookie, 'sid=abc');
    assert.equal(h['x-original-method'], 'GET');
    assert.equal(h['x-original-url'], 'http://ok.test/room?id=7');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
  });

  test('returns a 401 to the client with the challenge, and a 403 as it is, and the backend sees neither', async () => {
    const before = ws.tcpConnections();
    const denied = await handshake('deny.test');
    assert.equal(denied.status, 401);
    assert.equal(denied.headers['www-authenticate'], 'Bearer realm="chat"');
    assert.equal((await handshake('forbid.test')).status, 403);
    assert.equal(ws.tcpConnections(), before);
    assert.ok((await gw.metric('wsgate_handshake_rejections_total', { reason: 'auth_denied' })) >= 2);
  });

  test('answers 503 when the auth service does not answer in time, or 500 by policy', async () => {
    assert.equal((await handshake('slow.test')).status, 503);
    assert.equal((await handshake('slow500.test')).status, 500);
    assert.ok((await gw.metric('wsgate_handshake_rejections_total', { reason: 'auth_unavailable' })) >= 2);
  });

  test('answers 503 when the auth service answers something else than 2xx, 401 or 403', async () => {
    assert.equal((await handshake('broken.test')).status, 503);
  });
});

describe('external auth on plain HTTP', { timeout: 20_000 }, () => {
  test('forwards on 2xx with the copied header, and returns a 401', async () => {
    const { result, subRequests } = await during(() => get('web-ok.test'));
    assert.equal(result.status, 200);
    assert.equal(webSaw.at(-1)?.['x-user'], 'alice');
    assert.equal(subRequests[0]?.headers['x-original-url'], 'http://web-ok.test/page?x=1');
    assert.equal((await get('web-deny.test')).status, 401);
  });

  test('asks on every request unless cacheSeconds is set, then reuses the answer for the same credentials', async () => {
    const uncached = await during(async () => {
      await get('web-ok.test');
      await get('web-ok.test');
    });
    assert.equal(uncached.subRequests.length, 2);
    const cached = await during(async () => {
      await get('web-cached.test');
      await get('web-cached.test');
    });
    assert.equal(cached.subRequests.length, 1);
  });
});
