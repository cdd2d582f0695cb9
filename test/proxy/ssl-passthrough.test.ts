// ingress-nginx's ssl-passthrough on wsgate's TLS listener (issue 12, --enable-ssl-passthrough): a ClientHello whose
// server name is a passthrough host is not terminated but passed, undecrypted, to that host's backend (the client
// sees the backend's own certificate); any other name is terminated by wsgate as usual. Without the flag nothing is
// passed through.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import type { RoutingTable } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';

let ca: TestCA;
let tlsBackend: tls.Server;
let backendCert: { certPem: string; keyPem: string };
let ws: WsBackend;
let gw: TestGateway;
let off: TestGateway;

before(async () => {
  ca = createTestCA();
  backendCert = ca.issue(['pass.test']);
  tlsBackend = tls.createServer({ cert: backendCert.certPem, key: backendCert.keyPem }, (s) => {
    s.on('data', (d: Buffer) => s.write(`backend:${d.toString()}`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => tlsBackend.listen(0, '127.0.0.1', r));
  ws = await startWsBackend();
  const t: RoutingTable = table({
    virtualHosts: [vhost('terminated.test', httpRoute({ route: 'default/web', backends: [backend('default/web:80', ws.port)] }))],
    certificates: [{ secret: 'default/terminated', hostnames: ['terminated.test'], ...ca.issue(['terminated.test']) }],
  });
  const withPassthrough: RoutingTable = {
    ...t,
    passthrough: [
      {
        id: 'Ingress/default/pass#passthrough:pass.test',
        route: 'default/pass',
        hostname: 'pass.test',
        backends: [backend('default/pass:443', (tlsBackend.address() as AddressInfo).port)],
        connectTimeoutSeconds: 5,
        idleTimeoutSeconds: 0,
        allowedSourceRanges: [],
        deniedSourceRanges: [],
      },
    ],
  };
  gw = await startGateway(withPassthrough, { edge: { sslPassthrough: true } });
  off = await startGateway(withPassthrough);
});

after(async () => {
  await stopGateway(gw);
  await stopGateway(off);
  await ws.close();
  await new Promise<void>((r) => tlsBackend.close(() => r()));
  ca.dispose();
});

function connect(port: number, servername: string): Promise<{ fingerprint: string; reply: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca: ca.certPem, rejectUnauthorized: false }, () => {
      const fingerprint = new X509Certificate(s.getPeerX509Certificate()!.raw).fingerprint256;
      s.write('ping');
      s.once('data', (d: Buffer) => {
        resolve({ fingerprint, reply: d.toString() });
        s.end();
      });
    });
    s.on('error', reject);
  });
}

describe('ssl-passthrough on the TLS listener', { timeout: 20_000 }, () => {
  test("passes a passthrough host's TLS to its backend undecrypted: the client sees the backend's certificate", async () => {
    const r = await connect(gw.https.port, 'pass.test');
    assert.equal(r.fingerprint, new X509Certificate(backendCert.certPem).fingerprint256);
    assert.equal(r.reply, 'backend:ping');
  });

  test('terminates every other name itself', async () => {
    const s = tls.connect({ host: '127.0.0.1', port: gw.https.port, servername: 'terminated.test', ca: ca.certPem });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', () => resolve());
      s.once('error', reject);
    });
    assert.equal(s.authorized, true);
    assert.deepEqual(s.getPeerX509Certificate()?.subjectAltName, 'DNS:terminated.test');
    s.destroy();
  });

  test('passes nothing through without --enable-ssl-passthrough', async () => {
    const s = tls.connect({ host: '127.0.0.1', port: off.https.port, servername: 'pass.test', rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', () => resolve());
      s.once('error', reject);
    });
    assert.notEqual(new X509Certificate(s.getPeerX509Certificate()!.raw).fingerprint256, new X509Certificate(backendCert.certPem).fingerprint256);
    s.destroy();
  });
});
