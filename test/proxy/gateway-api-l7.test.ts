// [issue 14] The data plane of Gateway API listener ports, from routing-table fixtures: a port of its own with its
// own routes, matches on method, headers and query, the four filters on plain HTTP and on WebSocket handshakes,
// shares per backend, invalid backends, the request timeout (never a tunnel's), HTTPS by SNI, and a port that goes
// away while a WebSocket on it stays open.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { connect as connectTLS } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Backend, HttpRoute, ListenerPort, RouteFilters, RoutingTable } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closedPort, closeServer, listen, openClient, roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';

/** An echo origin: answers 200 with what it saw as JSON; `?delay=MS` waits first; `X-Echo-Set-Header: k:v` sets k. */
async function startOrigin(name: string): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const delay = Number(url.searchParams.get('delay') ?? 0);
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Backend': name, 'X-Origin-Header': 'from-origin' });
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers }));
    }, delay);
  });
  return { port: await listen(server), server };
}

interface Seen {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: { name: string; method: string; url: string; headers: Record<string, string> } | undefined;
}

async function get(port: number, host: string, path: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Seen> {
  const req = http.request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: { host, ...o.headers }, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  let body: Seen['body'];
  try {
    body = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as Seen['body']) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

function gwRoute(o: { path?: string; pathType?: 'Exact' | 'Prefix'; backends: Backend[]; match?: HttpRoute['match']; filters?: RouteFilters; id?: string; requestTimeoutSeconds?: number }): HttpRoute {
  return {
    ...httpRoute({ route: 'apps/web', path: o.path ?? '/', pathType: o.pathType ?? 'Prefix', backends: o.backends, id: o.id ?? `HTTPRoute/apps/web#${o.path ?? '/'}` }),
    weightPerBackend: true,
    ...(o.match ? { match: o.match } : {}),
    ...(o.filters ? { filters: o.filters } : {}),
    ...(o.requestTimeoutSeconds ? { requestTimeoutSeconds: o.requestTimeoutSeconds } : {}),
  };
}

function withListeners(listeners: ListenerPort[], base: RoutingTable = table({})): RoutingTable {
  return { ...base, listeners };
}

describe('Gateway API listener ports (plain HTTP and WebSocket)', () => {
  let gw: TestGateway;
  let port: number;
  let a: { port: number; server: http.Server };
  let b: { port: number; server: http.Server };
  let ws: WsBackend;
  let refused: number;

  before(async () => {
    a = await startOrigin('a');
    b = await startOrigin('b');
    ws = await startWsBackend();
    refused = await closedPort();
    port = await closedPort();
    const A = backend('apps/a:80', a.port);
    const B = backend('apps/b:80', b.port);
    const W = backend('apps/ws:80', ws.port);
    const routes: HttpRoute[] = [
      gwRoute({ path: '/exact', pathType: 'Exact', backends: [B] }),
      gwRoute({ path: '/m', backends: [B], match: { method: 'POST', headers: [], queryParams: [] }, id: 'm-post' }),
      gwRoute({ path: '/m', backends: [B], match: { headers: [{ name: 'x-version', type: 'Exact', value: '2' }], queryParams: [] }, id: 'm-header' }),
      gwRoute({ path: '/m', backends: [B], match: { headers: [], queryParams: [{ name: 'animal', type: 'Exact', value: 'whale' }] }, id: 'm-query' }),
      gwRoute({ path: '/m', backends: [A], id: 'm-rest' }),
      gwRoute({
        path: '/headers',
        backends: [A],
        filters: {
          requestHeaders: { set: [['X-Set', 'set']], add: [['X-Add', 'added']], remove: ['x-remove'] },
          responseHeaders: { set: [['X-Response', 'yes']], add: [], remove: ['x-origin-header'] },
        },
      }),
      gwRoute({ path: '/redirect', backends: [], filters: { redirect: { statusCode: 301, scheme: 'https', hostname: 'other.test', path: { type: 'ReplacePrefixMatch', value: '/moved' } } } }),
      gwRoute({ path: '/rewrite', backends: [A], filters: { rewrite: { hostname: 'internal.test', path: { type: 'ReplacePrefixMatch', value: '/v2' } } } }),
      gwRoute({ path: '/invalid', backends: [], filters: { directStatus: 500 } }),
      gwRoute({ path: '/weighted', backends: [{ ...A, weight: 3 }, { ...B, weight: 1, endpoints: [...B.endpoints, { address: '127.0.0.1', port: refused }] }] }),
      gwRoute({ path: '/half-invalid', backends: [{ ...A, weight: 1 }, { name: 'apps/gone:80', weight: 1, endpoints: [], invalid: true }] }),
      gwRoute({ path: '/slow', backends: [A], requestTimeoutSeconds: 0.3 }),
      gwRoute({ path: '/ws', backends: [W], filters: { requestHeaders: { set: [['X-Set', 'on-handshake']], add: [], remove: [] }, rewrite: { path: { type: 'ReplaceFullPath', value: '/socket' } } }, requestTimeoutSeconds: 0.3 }),
      gwRoute({ path: '/ws-redirect', backends: [W], filters: { redirect: { statusCode: 302, path: { type: 'ReplaceFullPath', value: '/elsewhere' } } } }),
    ];
    gw = await startGateway(
      withListeners([
        { port, protocol: 'HTTP', certificates: [], virtualHosts: [vhost('app.test', ...routes), vhost('*.deep.test', gwRoute({ path: '/', backends: [A], id: 'deep' }))] },
      ]),
    );
  });

  after(async () => {
    await gw?.close();
    for (const s of [a?.server, b?.server]) if (s) await closeServer(s);
    await ws?.close();
  });

  test("serves a listener port's routes there, and not on the main listener", async () => {
    assert.equal((await get(port, 'app.test', '/m')).body?.name, 'a');
    assert.equal((await get(gw.http.port, 'app.test', '/m')).status, 404);
  });

  test('an Exact path matches only itself', async () => {
    assert.equal((await get(port, 'app.test', '/exact')).body?.name, 'b');
    assert.equal((await get(port, 'app.test', '/exact/more')).status, 404);
  });

  test('method, header and query parameter matches pick their rule; a request with none of them falls through', async () => {
    assert.equal((await get(port, 'app.test', '/m', { method: 'POST' })).body?.name, 'b');
    assert.equal((await get(port, 'app.test', '/m', { headers: { 'X-Version': '2' } })).body?.name, 'b');
    assert.equal((await get(port, 'app.test', '/m?animal=whale&x=1')).body?.name, 'b');
    assert.equal((await get(port, 'app.test', '/m?animal=dolphin', { headers: { 'X-Version': '3' } })).body?.name, 'a');
  });

  test('a wildcard host covers names of any depth on a listener port', async () => {
    assert.equal((await get(port, 'a.b.deep.test', '/')).body?.name, 'a');
    assert.equal((await get(port, 'deep.test', '/')).status, 404);
  });

  test('RequestHeaderModifier sets, appends and removes what the backend sees; ResponseHeaderModifier what the client sees', async () => {
    const r = await get(port, 'app.test', '/headers', { headers: { 'X-Set': 'client', 'X-Add': 'client', 'X-Remove': 'client' } });
    assert.equal(r.body?.headers['x-set'], 'set');
    assert.equal(r.body?.headers['x-add'], 'client, added');
    assert.equal(r.body?.headers['x-remove'], undefined);
    assert.equal(r.headers['x-response'], 'yes');
    assert.equal(r.headers['x-origin-header'], undefined);
  });

  test('RequestRedirect answers with its status and a Location of the new scheme, host and path, the query kept', async () => {
    const r = await get(port, 'app.test', '/redirect/x?q=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://other.test/moved/x?q=1');
  });

  test('URLRewrite changes the path and the Host the backend sees', async () => {
    const r = await get(port, 'app.test', '/rewrite/x?q=1');
    assert.equal(r.body?.url, '/v2/x?q=1');
    assert.equal(r.body?.headers.host, 'internal.test');
  });

  test('a rule with no usable backend answers 500', async () => {
    assert.equal((await get(port, 'app.test', '/invalid')).status, 500);
  });

  test('weights are shares per backend, whatever each backend has of endpoints (3:1 over 40 requests)', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const r = await get(port, 'app.test', '/weighted');
      const name = r.body?.name ?? `status ${r.status}`;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(counts), { a: 30, b: 10 });
  });

  test("an invalid backendRef's share answers 500, the valid one's is served", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(port, 'app.test', '/half-invalid')).status);
    assert.equal(statuses.filter((s) => s === 500).length, 5);
    assert.equal(statuses.filter((s) => s === 200).length, 5);
  });

  test('timeouts.request answers 504 to a slow plain HTTP exchange', async () => {
    assert.equal((await get(port, 'app.test', '/slow')).status, 200);
    assert.equal((await get(port, 'app.test', '/slow?delay=2000')).status, 504);
  });

  test('a WebSocket handshake gets the rewrite and header changes, and its tunnel outlives the request timeout', async () => {
    const client = await openClient(`ws://127.0.0.1:${port}/ws`, undefined, { headers: { host: 'app.test' } });
    const conn = await ws.connections.shift();
    assert.equal(conn.req.url, '/socket');
    assert.equal(conn.req.headers['x-set'], 'on-handshake');
    // Longer than the rule's 0.3 s request timeout: wait for the backend to see an idle gap of that much first.
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 600);
      t.unref();
      client.ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    assert.equal(client.ws.readyState, client.ws.OPEN, 'the tunnel is still open past timeouts.request');
    assert.equal((await roundTrip(client, 'still here')).data.toString(), 'still here');
    client.ws.close();
    await client.closed;
  });

  test('a WebSocket handshake on a redirecting rule gets the redirect', async () => {
    await assert.rejects(openClient(`ws://127.0.0.1:${port}/ws-redirect`, undefined, { headers: { host: 'app.test' }, followRedirects: false }), /unexpected response 302/);
  });
});

describe('an HTTPS listener port', () => {
  let ca: TestCA;
  let gw: TestGateway;
  let port: number;
  let origin: { port: number; server: http.Server };
  const certs: Record<string, { certPem: string; keyPem: string }> = {};

  before(async () => {
    ca = createTestCA();
    certs['default'] = ca.issue(['default.test']);
    certs['exact'] = ca.issue(['exact.test']);
    certs['wild'] = ca.issue(['*.wild.test']);
    origin = await startOrigin('tls-origin');
    port = await closedPort();
    const O = backend('apps/o:80', origin.port);
    gw = await startGateway(
      withListeners([
        {
          port,
          protocol: 'HTTPS',
          certificates: [
            { secret: 'apps/default', hostnames: ['*'], ...certs['default'] },
            { secret: 'apps/exact', hostnames: ['exact.test'], ...certs['exact'] },
            { secret: 'apps/wild', hostnames: ['*.wild.test'], ...certs['wild'] },
          ],
          virtualHosts: [vhost('*', gwRoute({ backends: [O] }))],
        },
      ]),
    );
  });

  after(async () => {
    await gw?.close();
    if (origin) await closeServer(origin.server);
    ca?.dispose();
  });

  async function servedName(servername: string | undefined): Promise<string> {
    const socket = connectTLS({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), ca: ca.certPem, rejectUnauthorized: false });
    try {
      await once(socket, 'secureConnect');
      return new X509Certificate(socket.getPeerX509Certificate()!.raw).subject;
    } finally {
      socket.destroy();
    }
  }

  test('chooses the certificate by SNI: exact, then a wildcard of any depth, then the default', async () => {
    assert.match(await servedName('exact.test'), /CN=exact\.test/);
    assert.match(await servedName('a.b.wild.test'), /CN=\*\.wild\.test/);
    assert.match(await servedName('other.test'), /CN=default\.test/);
    assert.match(await servedName(undefined), /CN=default\.test/);
  });

  test('terminates TLS and serves the port routes', async () => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', servername: 'exact.test', headers: { host: 'exact.test' }, ca: ca.certPem, agent: false });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    res.resume();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-backend'], 'tls-origin');
  });
});

describe('a listener port that leaves the table', () => {
  test('stops accepting, and a WebSocket open on it carries on (no drop on reconfiguration)', async () => {
    const ws = await startWsBackend();
    const port = await closedPort();
    const route = gwRoute({ backends: [backend('apps/ws:80', ws.port)] });
    const gw = await startGateway(withListeners([{ port, protocol: 'HTTP', certificates: [], virtualHosts: [vhost('*', route)] }]));
    try {
      const client = await openClient(`ws://127.0.0.1:${port}/`);
      // The same route now on another port: the old port closes, the route (same id) stays.
      const other = await closedPort();
      await gw.gateway.apply(withListeners([{ port: other, protocol: 'HTTP', certificates: [], virtualHosts: [vhost('*', route)] }]));
      assert.equal((await roundTrip(client, 'after the swap')).data.toString(), 'after the swap');
      await assert.rejects(get(port, 'x.test', '/'), /ECONNREFUSED/);
      assert.equal((await get(other, 'x.test', '/')).status, 426, 'the new port serves (a plain GET to a WebSocket backend)');
      client.ws.close();
      await client.closed;
    } finally {
      await gw.close();
      await ws.close();
    }
  });
});
