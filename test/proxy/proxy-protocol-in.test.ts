// The real client address behind a load balancer (issue 12), with Debian's HAProxy as the balancer: it sends PROXY
// protocol v1 (`send-proxy`) and v2 (`send-proxy-v2`) to wsgate's HTTP, HTTPS and tunnel listeners, and, in HTTP mode,
// X-Forwarded-For (`option forwardfor`) to a wsgate that trusts it. Clients connect to HAProxy from 127.0.0.2 and
// 127.0.0.9 (Linux routes all of 127.0.0.0/8 to loopback), HAProxy to wsgate from 127.0.0.1: the allow-lists and
// the headers the backend gets must see 127.0.0.2, never the balancer.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { parseProxyHeader } from '../../src/proxy/client-address.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, tunnelRoute, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closeOf, converge, startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';

const HAPROXY = '/usr/sbin/haproxy';

let ca: TestCA;
let ws: WsBackend;
/** Raw TCP backend of the tunnel: records what each connection started with. */
let tcp: net.Server;
const tcpFirst: Buffer[] = [];
let behindProxy: TestGateway;
let behindHttp: TestGateway;
let haproxy: ChildProcess;
let dir: string;
const fe = { v1: 0, v2: 0, tlsV2: 0, tunnelV2: 0, xff: 0 };
let tunnelPort = 0;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

before(async () => {
  ca = createTestCA();
  ws = await startWsBackend();
  tcp = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      tcpFirst.push(d);
      s.end('tunnel ok');
    });
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  tunnelPort = await freePort();
  const b = backend('default/echo:80', ws.port);
  const only2 = { allowedSourceRanges: ['127.0.0.2/32'] };
  behindProxy = await startGateway(
    table({
      virtualHosts: [vhost('chat.test', httpRoute({ route: 'default/chat', backends: [b], policy: only2 }))],
      certificates: [{ secret: 'default/chat-tls', hostnames: ['chat.test'], ...ca.issue(['chat.test']) }],
      tunnels: [
        tunnelRoute({
          port: tunnelPort,
          backends: [backend('default/tcp:80', (tcp.address() as AddressInfo).port)],
          proxyProtocol: 'V1',
          allowedSourceRanges: ['127.0.0.2/32'],
        }),
      ],
    }),
    { edge: { proxyProtocol: true, trustedProxies: ['127.0.0.1/32'] } },
  );
  behindHttp = await startGateway(table({ virtualHosts: [vhost('chat.test', httpRoute({ route: 'default/chat', backends: [b], policy: only2 }))] }), {
    edge: { trustedProxies: ['127.0.0.1/32'] },
  });
  for (const k of Object.keys(fe) as (keyof typeof fe)[]) fe[k] = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'wsgate-haproxy-'));
  const cfg = `global
    nbthread 1
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s
frontend v1
    mode tcp
    bind 127.0.0.1:${fe.v1}
    default_backend wsgate_v1
backend wsgate_v1
    mode tcp
    server w 127.0.0.1:${behindProxy.http.port} send-proxy
frontend v2
    mode tcp
    bind 127.0.0.1:${fe.v2}
    default_backend wsgate_v2
backend wsgate_v2
    mode tcp
    server w 127.0.0.1:${behindProxy.http.port} send-proxy-v2
frontend tls_v2
    mode tcp
    bind 127.0.0.1:${fe.tlsV2}
    default_backend wsgate_tls_v2
backend wsgate_tls_v2
    mode tcp
    server w 127.0.0.1:${behindProxy.https.port} send-proxy-v2
frontend tunnel_v2
    mode tcp
    bind 127.0.0.1:${fe.tunnelV2}
    default_backend wsgate_tunnel_v2
backend wsgate_tunnel_v2
    mode tcp
    server w 127.0.0.1:${tunnelPort} send-proxy-v2
frontend xff
    mode http
    option forwardfor
    bind 127.0.0.1:${fe.xff}
    default_backend wsgate_xff
backend wsgate_xff
    mode http
    server w 127.0.0.1:${behindHttp.http.port}
`;
  writeFileSync(join(dir, 'haproxy.cfg'), cfg);
  haproxy = spawn(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
  // Ready when every frontend accepts.
  await converge(
    async () => {
      for (const port of Object.values(fe)) {
        const ok = await new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.destroy();
            resolve(true);
          });
          s.on('error', () => resolve(false));
        });
        if (!ok) return false;
      }
      return true;
    },
    'HAProxy listening',
    1,
    10_000,
  );
});

after(async () => {
  if (haproxy.exitCode === null) {
    haproxy.kill('SIGTERM');
    await new Promise((r) => haproxy.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
  await stopGateway(behindProxy);
  await stopGateway(behindHttp);
  await ws.close();
  await new Promise<void>((r) => tcp.close(() => r()));
  ca.dispose();
});

/** A handshake through HAProxy's frontend `port`, from `from`; 101 with what the backend saw, or the status. */
async function handshakeVia(port: number, from: string, tls = false): Promise<{ status: number; realIP?: string; forwardedFor?: string }> {
  const before = ws.tcpConnections();
  const status = await new Promise<number>((resolve, reject) => {
    const c = new WebSocket(`${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/`, {
      headers: { Host: 'chat.test' },
      localAddress: from,
      ...(tls ? { ca: ca.certPem, servername: 'chat.test' } : {}),
    });
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
  if (status !== 101) {
    assert.equal(ws.tcpConnections(), before, 'a refused handshake reached the backend');
    return { status };
  }
  const conn = await ws.connections.shift();
  return {
    status,
    realIP: conn.req.headers['x-real-ip'] as string,
    forwardedFor: conn.req.headers['x-forwarded-for'] as string,
  };
}

describe('PROXY protocol from HAProxy', { timeout: 30_000 }, () => {
  for (const version of ['v1', 'v2'] as const) {
    test(`${version}: the allow-list and the backend see the real client, not the balancer`, async () => {
      const ok = await handshakeVia(fe[version], '127.0.0.2');
      assert.deepEqual(ok, { status: 101, realIP: '127.0.0.2', forwardedFor: '127.0.0.2' });
      assert.equal((await handshakeVia(fe[version], '127.0.0.9')).status, 403);
    });
  }

  test('v2 on the TLS listener: the PROXY header comes before the ClientHello', async () => {
    assert.deepEqual(await handshakeVia(fe.tlsV2, '127.0.0.2', true), { status: 101, realIP: '127.0.0.2', forwardedFor: '127.0.0.2' });
    assert.equal((await handshakeVia(fe.tlsV2, '127.0.0.9', true)).status, 403);
  });

  test('v2 on a tunnel listener: the source ranges see the real client, and the PROXY header sent on names it', async () => {
    const send = async (from: string): Promise<string> => {
      const s = net.connect({ host: '127.0.0.1', port: fe.tunnelV2, localAddress: from });
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('error', () => {});
      s.write('hello');
      await closeOf(s);
      return got;
    };
    const before = tcpFirst.length;
    assert.equal(await send('127.0.0.2'), 'tunnel ok');
    const first = tcpFirst[before]!;
    const header = parseProxyHeader(first);
    assert.equal(header.state, 'ok');
    assert.equal(header.state === 'ok' && header.source?.address, '127.0.0.2');
    // Refused at once: HAProxy sees the close, and nothing reaches the backend.
    assert.equal(await send('127.0.0.9'), '');
    assert.equal(tcpFirst.length, before + 1);
    assert.ok((await behindProxy.metric('wsgate_handshake_rejections_total', { reason: 'source_denied' })) >= 1);
  });

  test('closes a connection that does not start with a PROXY header', async () => {
    const s = net.connect(behindProxy.http.port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: chat.test\r\n\r\n');
    await closeOf(s);
    assert.equal(got, '');
    assert.ok((await behindProxy.metric('wsgate_handshake_rejections_total', { reason: 'bad_proxy_header' })) >= 1);
  });

  test('closes a connection from outside --trusted-proxies, whatever PROXY header it sends', async () => {
    const s = net.connect({ host: '127.0.0.1', port: behindProxy.http.port, localAddress: '127.0.0.3' });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', () => {});
    s.write('PROXY TCP4 127.0.0.2 127.0.0.1 5555 80\r\nGET / HTTP/1.1\r\nHost: chat.test\r\n\r\n');
    await closeOf(s);
    assert.equal(got, '');
    assert.ok((await behindProxy.metric('wsgate_handshake_rejections_total', { reason: 'proxy_not_trusted' })) >= 1);
  });
});

describe('X-Forwarded-For from HAProxy in HTTP mode', { timeout: 30_000 }, () => {
  test("believes a trusted balancer's X-Forwarded-For: the allow-list sees the client, the backend gets it in X-Real-IP", async () => {
    const ok = await handshakeVia(fe.xff, '127.0.0.2');
    assert.equal(ok.status, 101);
    assert.equal(ok.realIP, '127.0.0.2');
    // The hop wsgate heard it from is appended, as every proxy does.
    assert.equal(ok.forwardedFor, '127.0.0.2, 127.0.0.1');
    assert.equal((await handshakeVia(fe.xff, '127.0.0.9')).status, 403);
  });

  test('believes no X-Forwarded-For from a client that is not a trusted hop', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get(
          { host: '127.0.0.1', port: behindHttp.http.port, localAddress: '127.0.0.9', headers: { Host: 'chat.test', 'X-Forwarded-For': '127.0.0.2' }, agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
        .on('error', reject);
    });
    assert.equal(status, 403);
  });
});
