// TLS termination on the L7 listener: the certificate is chosen by SNI, clients without SNI get the default one,
// and a certificate swapped by apply() serves new connections while open ones keep theirs.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import type { Certificate, RoutingTable } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { openClient, roundTrip, startWsBackend, stopGateway, type BackendConnection, type Client, type WsBackend } from '../helpers/l7-peers.ts';

let ca: TestCA;
let echo: WsBackend;
let gw: TestGateway;
let certA: Certificate;
let certB: Certificate;

function tableWith(certificates: Certificate[]): RoutingTable {
  const b = backend('default/echo:80', echo.port);
  return table({
    virtualHosts: [
      vhost('a.test', httpRoute({ route: 'default/a', backends: [b] })),
      vhost('b.test', httpRoute({ route: 'default/b', backends: [b] })),
    ],
    certificates,
  });
}

before(async () => {
  ca = createTestCA();
  echo = await startWsBackend();
  certA = { secret: 'default/a-tls', hostnames: ['a.test'], ...ca.issue(['a.test']) };
  certB = { secret: 'default/b-tls', hostnames: ['b.test'], ...ca.issue(['b.test']) };
  gw = await startGateway(tableWith([certA, certB]));
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
  ca.dispose();
});

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function peerCertificate(c: Client): ReturnType<TLSSocket['getPeerCertificate']> {
  return (c.response.socket as TLSSocket).getPeerCertificate();
}

/** A wss:// client to `host`, sending it as SNI and Host, trusting only the test CA; and the backend's side. */
async function wss(host: string): Promise<[Client, BackendConnection]> {
  const c = await openClient(`wss://127.0.0.1:${gw.https.port}/`, [], { servername: host, ca: ca.certPem, headers: { Host: host } });
  return [c, await echo.connections.shift()];
}

describe('TLS termination', { timeout: 15_000 }, () => {
  test('serves each host its own certificate by SNI and proxies wss:// end to end', async () => {
    for (const [host, cert] of [['a.test', certA], ['b.test', certB]] as const) {
      const [c] = await wss(host);
      assert.equal(peerCertificate(c).fingerprint256, fingerprint(cert.certPem));
      assert.equal((await roundTrip(c, `over tls to ${host}`)).data.toString(), `over tls to ${host}`);
      c.ws.close();
      await c.closed;
    }
  });

  test('tells the backend the client came over https', async () => {
    const [c, { req }] = await wss('a.test');
    assert.equal(req.headers['x-forwarded-proto'], 'https');
    assert.equal(req.headers['x-forwarded-port'], String(gw.https.port));
    c.ws.close();
    await c.closed;
  });

  test('serves the default certificate to a client that sends no SNI', async () => {
    // An IP address in the URL and no servername: Node sends no SNI.
    const c = await openClient(`wss://127.0.0.1:${gw.https.port}/`, [], { rejectUnauthorized: false, headers: { Host: 'a.test' } });
    await echo.connections.shift();
    const cert = peerCertificate(c);
    assert.equal(cert.subject.CN, 'wsgate test default');
    assert.notEqual(cert.fingerprint256, fingerprint(certA.certPem));
    c.ws.close();
    await c.closed;
  });

  test('a certificate swapped by apply() serves new connections while an open one keeps echoing', async () => {
    const [open] = await wss('a.test');
    assert.equal(peerCertificate(open).fingerprint256, fingerprint(certA.certPem));
    const renewed: Certificate = { secret: 'default/a-tls', hostnames: ['a.test'], ...ca.issue(['a.test']) };
    const { certificateErrors } = await gw.gateway.apply(tableWith([renewed, certB]));
    assert.deepEqual(certificateErrors, []);
    assert.equal((await roundTrip(open, 'after the swap')).data.toString(), 'after the swap');
    const [fresh] = await wss('a.test');
    assert.equal(peerCertificate(fresh).fingerprint256, fingerprint(renewed.certPem));
    assert.notEqual(fingerprint(renewed.certPem), fingerprint(certA.certPem));
    assert.equal((await roundTrip(fresh, 'new cert')).data.toString(), 'new cert');
    assert.equal((await roundTrip(open, 'old one still fine')).data.toString(), 'old one still fine');
    for (const c of [open, fresh]) {
      c.ws.close();
      await c.closed;
    }
  });
});
