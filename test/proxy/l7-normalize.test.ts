// Requests are normalised before routing, and the backend receives what was routed on (issue 9, items 1 and 2):
// dot segments, percent-encoding, encoded slashes and backslashes, and absolute-form targets, for plain HTTP and
// for WebSocket handshakes. The backends are raw HTTP servers that report the request line and Host they got.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closeServer, handshake, listen, rawExchange, startRawBackend, switchingProtocols, type RawBackend } from '../helpers/l7-peers.ts';

/** A backend that answers every request with `<name> <request-target> host=<Host>`. */
async function reporter(name: string): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => res.end(`${name} ${req.url} host=${req.headers.host}`));
  return { port: await listen(server), server };
}

let pub: { port: number; server: http.Server };
let priv: { port: number; server: http.Server };
let internal: { port: number; server: http.Server };
let gw: TestGateway;

before(async () => {
  pub = await reporter('public');
  priv = await reporter('private');
  internal = await reporter('internal');
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('internal.test', httpRoute({ route: 'default/internal', backends: [backend('i', internal.port)] })),
        vhost(
          'public.test',
          httpRoute({ route: 'default/public', path: '/public', backends: [backend('p', pub.port)] }),
          httpRoute({ route: 'default/rest', path: '/', backends: [backend('r', priv.port)] }),
        ),
      ],
    }),
  );
});

after(async () => {
  await gw.close();
  for (const s of [pub, priv, internal]) {
    s.server.closeAllConnections();
    await closeServer(s.server);
  }
});

async function get(target: string, host = 'public.test'): Promise<{ status: number; body: string }> {
  const res = await rawExchange(gw.http.port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return { status: res.status, body: res.body.toString() };
}

describe('request-targets are normalised before routing', () => {
  for (const [target, expected] of [
    ['/public/../x', 'private /x host=public.test'],
    ['/public/%2e%2e/x', 'private /x host=public.test'],
    ['/public/%2E%2e/x?q=/../y', 'private /x?q=/../y host=public.test'],
    ['/public/..;/x', 'private /x host=public.test'],
    ['/x/../public/a', 'public /public/a host=public.test'],
    ['/public/./a/%7euser', 'public /public/a/~user host=public.test'],
    ['/public/caf%c3%a9', 'public /public/caf%C3%A9 host=public.test'],
    ['/public/%252e%252e/x', 'public /public/%252e%252e/x host=public.test'],
    ['/../../public', 'public /public host=public.test'],
  ] as const) {
    test(`routes ${target} as the normalised path, and the backend receives that path`, async () => {
      const r = await get(target);
      assert.equal(r.status, 200);
      assert.equal(r.body, expected);
    });
  }

  for (const [target, what] of [
    ['/public/..%2fx', 'an encoded slash'],
    ['/public/%5c..%5cx', 'an encoded backslash'],
    ['/public\\..\\x', 'a backslash'],
    ['/public/%zz', 'an invalid escape'],
    ['/public/%00', 'an encoded NUL'],
    ['/public#frag', 'a fragment'],
  ] as const) {
    test(`answers 400 to a target with ${what}, and never reaches a backend`, async () => {
      const r = await get(target);
      assert.equal(r.status, 400);
    });
  }

  test('refuses a WebSocket handshake whose target carries an encoded slash with 400 bad_request', async () => {
    const before = await gw.metric('wsgate_handshake_rejections_total', { reason: 'bad_request' });
    const res = await rawExchange(gw.http.port, handshake({ host: 'public.test', path: '/public/..%2F..%2Fx' }));
    assert.equal(res.status, 400);
    assert.equal(await gw.metric('wsgate_handshake_rejections_total', { reason: 'bad_request' }), before + 1);
  });
});

describe('absolute-form request-targets', () => {
  test('are routed by their authority, not the Host header, and reach the backend in origin-form with that Host', async () => {
    const r = await get('http://internal.test/secret', 'public.test');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'internal /secret host=internal.test');
  });

  test('with an upper-case authority and a port, and no path, route like their normalised form', async () => {
    const r = await get('http://PUBLIC.test:8080', 'ignored.test');
    assert.equal(r.body, 'private / host=public.test:8080');
  });

  test('with userinfo are refused with 400', async () => {
    const r = await get('http://user@internal.test/secret', 'public.test');
    assert.equal(r.status, 400);
  });
});

describe('WebSocket handshakes', () => {
  let raw: RawBackend;
  let ws: TestGateway;
  before(async () => {
    raw = await startRawBackend();
    ws = await startGateway(
      table({
        virtualHosts: [
          vhost('internal.test', httpRoute({ route: 'default/internal', backends: [backend('i', raw.port)] })),
          vhost('public.test', httpRoute({ route: 'default/public', path: '/public', backends: [backend('p', 1)] })),
        ],
      }),
    );
  });
  after(async () => {
    await ws.gateway.registry.closeAll();
    await ws.close();
    await raw.close();
  });

  test('send the backend the normalised target, and the authority of an absolute-form target as Host', async () => {
    const client = (await import('node:net')).connect(ws.http.port, '127.0.0.1');
    client.on('error', () => {});
    client.write(handshake({ host: 'public.test', path: 'http://internal.test/a/./b/../chat?room=1' }));
    const peer = await raw.accepted.shift();
    const [requestLine] = peer.head.split('\r\n');
    assert.equal(requestLine, 'GET /a/chat?room=1 HTTP/1.1');
    assert.match(peer.head, /\r\nHost: internal\.test\r\n/);
    peer.socket.write(switchingProtocols(peer.head));
    client.destroy();
    peer.socket.destroy();
  });
});
