// TLS to backends (issue 12: backendTLS; ingress-nginx's backend-protocol: HTTPS): a wss:// backend and an https://
// backend with a certificate for the Service's DNS name, issued by a test CA. The right CA connects; a wrong CA,
// a name the certificate does not carry, or a CA Secret that did not resolve give 502 and a log line naming why;
// insecureSkipVerify connects whatever the chain.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { createLogger } from '../../src/log/logger.ts';
import { DEFAULT_POLICY, type BackendTLS } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, stopGateway } from '../helpers/l7-peers.ts';

let ca: TestCA;
let otherCA: TestCA;
let server: https.Server;
let port: number;
let gw: TestGateway;
const lines: Record<string, unknown>[] = [];

const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});

function tls(o: Partial<BackendTLS>): BackendTLS {
  return { ...DEFAULT_POLICY.backendTLS, enabled: true, ...o };
}

before(async () => {
  ca = createTestCA('backend CA');
  otherCA = createTestCA('some other CA');
  // The backend serves the Service's DNS name: chat.apps.svc.
  const leaf = ca.issue(['chat.apps.svc']);
  server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => res.end(`https backend: ${req.url}`));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (s) => s.on('message', (d, binary) => s.send(d, { binary })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  const b = backend('apps/chat:443', port);
  const route = (host: string, t: BackendTLS) => vhost(host, httpRoute({ route: `apps/${host}`, backends: [b], policy: { backendTLS: t } }));
  gw = await startGateway(
    table({
      virtualHosts: [
        route('right.test', tls({ caSecret: 'apps/backend-ca', caPem: ca.certPem })),
        route('wrong.test', tls({ caSecret: 'apps/other-ca', caPem: otherCA.certPem })),
        route('name.test', tls({ caSecret: 'apps/backend-ca', caPem: ca.certPem, sni: 'not-chat.apps.svc' })),
        route('unresolved.test', tls({ caSecret: 'apps/missing' })),
        route('skip.test', tls({ insecureSkipVerify: true })),
        vhost('plain.test', httpRoute({ route: 'apps/plain', backends: [b] })),
      ],
    }),
    { log: createLogger('info', sink) },
  );
});

after(async () => {
  await stopGateway(gw);
  await new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  ca.dispose();
  otherCA.dispose();
});

function handshakeStatus(host: string): Promise<number> {
  return openClient(`ws://127.0.0.1:${gw.http.port}/`, [], { headers: { Host: host } }).then(
    (c) => {
      c.ws.close();
      return 101;
    },
    (err: Error) => Number(/unexpected response (\d+)/.exec(err.message)?.[1] ?? 0),
  );
}

function get(host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: gw.http.port, path: '/page', headers: { Host: host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('TLS to backends', { timeout: 20_000 }, () => {
  test('carries a WebSocket to a wss:// backend whose certificate the CA verifies, for the Service name', async () => {
    const c = await openClient(`ws://127.0.0.1:${gw.http.port}/`, [], { headers: { Host: 'right.test' } });
    assert.equal((await roundTrip(c, 'over TLS')).data.toString(), 'over TLS');
    c.ws.close();
  });

  test('carries plain HTTP to an https:// backend the same way', async () => {
    assert.deepEqual(await get('right.test'), { status: 200, body: 'https backend: /page' });
  });

  test('answers 502 for a backend certificate a wrong CA cannot verify, with a log line naming the reason', async () => {
    assert.equal(await handshakeStatus('wrong.test'), 502);
    assert.equal((await get('wrong.test')).status, 502);
    assert.ok((await gw.metric('wsgate_handshake_rejections_total', { reason: 'upstream_tls_error' })) >= 1);
    assert.ok((await gw.metric('wsgate_upstream_connect_errors_total', { reason: 'tls' })) >= 2);
    await converge(() => lines.filter((l) => l['msg'] === 'backend TLS handshake failed').length >= 2, 'two TLS failure lines', 1);
    const line = lines.find((l) => l['msg'] === 'backend TLS handshake failed');
    assert.match(String(line?.['code']), /UNABLE_TO_VERIFY|SELF_SIGNED|ISSUER/);
    assert.equal(line?.['serverName'], 'chat.apps.svc');
  });

  test('answers 502 when the certificate does not name the server name asked for', async () => {
    assert.equal(await handshakeStatus('name.test'), 502);
    await converge(() => lines.some((l) => l['code'] === 'ERR_TLS_CERT_ALTNAME_INVALID'), 'an altname failure line', 1);
  });

  test('answers 502 when the CA Secret did not resolve, trusting nothing else', async () => {
    assert.equal(await handshakeStatus('unresolved.test'), 502);
    assert.equal((await get('unresolved.test')).status, 502);
  });

  test('connects with insecureSkipVerify whatever the chain', async () => {
    assert.equal(await handshakeStatus('skip.test'), 101);
    assert.equal((await get('skip.test')).status, 200);
  });

  test('fails a plain-TCP route to a TLS backend as a bad response, not a TLS error', async () => {
    assert.equal(await handshakeStatus('plain.test'), 502);
  });
});
