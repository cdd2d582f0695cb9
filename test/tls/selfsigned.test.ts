import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { integer, oid, x509Time } from '../../src/tls/der.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

function openssl(args: readonly string[], input: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('DER encoder', () => {
  it('encodes INTEGERs minimally, with a sign octet when the top bit is set', () => {
    assert.equal(integer(0n).toString('hex'), '020100');
    assert.equal(integer(127n).toString('hex'), '02017f');
    assert.equal(integer(128n).toString('hex'), '02020080');
    assert.equal(integer(Buffer.from([0, 0, 1])).toString('hex'), '020101');
  });

  it('encodes OIDs in base 128 with the first two arcs combined', () => {
    assert.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
  });

  it('encodes times before 2050 as UTCTime and from 2050 as GeneralizedTime', () => {
    assert.equal(x509Time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59))).toString('ascii', 2), '491231235959Z');
    assert.equal(x509Time(new Date(Date.UTC(2050, 0, 1, 0, 0, 0))).toString('ascii', 2), '20500101000000Z');
    assert.equal(x509Time(new Date(0))[0], 0x17);
    assert.equal(x509Time(new Date(Date.UTC(2050, 0, 1)))[0], 0x18);
  });
});

describe('generateSelfSigned', () => {
  it('produces a certificate that Node parses and whose signature verifies with its own key', () => {
    const { certPem, keyPem } = generateSelfSigned();
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.verify(x509.publicKey), true);
    assert.equal(x509.checkPrivateKey(createPrivateKey(keyPem)), true);
    assert.equal(x509.ca, false);
    assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  it('names the subject and the issuer "wsgate default certificate" by default, valid for 365 days', () => {
    const before = Date.now();
    const x509 = new X509Certificate(generateSelfSigned().certPem);
    assert.equal(x509.subject, 'CN=wsgate default certificate');
    assert.equal(x509.issuer, 'CN=wsgate default certificate');
    assert.equal(x509.subjectAltName, undefined);
    assert.ok(x509.validFromDate.getTime() <= before, 'valid from before it was made');
    const lifetime = x509.validToDate.getTime() - before;
    assert.ok(Math.abs(lifetime - 365 * DAY_MS) < 5000, `lifetime ${lifetime} ms`);
  });

  it('uses the common name, DNS names and lifetime it is given', () => {
    const before = Date.now();
    const { certPem } = generateSelfSigned({
      commonName: 'gate.example.com',
      dnsNames: ['gate.example.com', '*.ws.example.com'],
      days: 7,
    });
    const x509 = new X509Certificate(certPem);
    assert.equal(x509.subject, 'CN=gate.example.com');
    assert.equal(x509.subjectAltName, 'DNS:gate.example.com, DNS:*.ws.example.com');
    assert.equal(x509.checkHost('gate.example.com'), 'gate.example.com');
    assert.equal(x509.checkHost('a.ws.example.com'), '*.ws.example.com');
    assert.equal(x509.checkHost('other.example.com'), undefined);
    const lifetime = x509.validToDate.getTime() - before;
    assert.ok(Math.abs(lifetime - 7 * DAY_MS) < 5000, `lifetime ${lifetime} ms`);
  });

  it('marks the certificate for TLS server use only, with random positive serials', () => {
    const a = new X509Certificate(generateSelfSigned().certPem);
    const b = new X509Certificate(generateSelfSigned().certPem);
    assert.deepEqual(a.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.ok(Number.parseInt(a.serialNumber.slice(0, 2), 16) < 0x80, 'serial is positive');
  });

  it('refuses options that cannot make a valid certificate', () => {
    assert.throws(() => generateSelfSigned({ days: 0 }), RangeError);
    assert.throws(() => generateSelfSigned({ commonName: 'x'.repeat(65) }), RangeError);
    assert.throws(() => generateSelfSigned({ dnsNames: ['bad name'] }), RangeError);
  });

  it('is parsed by the openssl CLI with the expected extensions', () => {
    const { certPem } = generateSelfSigned({ dnsNames: ['gate.example.com'] });
    const text = openssl(['x509', '-noout', '-text'], certPem);
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(text, /Subject: CN ?= ?wsgate default certificate/);
    assert.match(text, /DNS:gate\.example\.com/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
  });

  describe('served by a real TLS server', () => {
    const { certPem, keyPem } = generateSelfSigned({ dnsNames: ['gate.example.com'] });
    const servers: Server[] = [];

    after(() => {
      for (const s of servers) s.close();
    });

    async function listen(): Promise<number> {
      const server = createServer({ cert: certPem, key: keyPem }, (socket) => socket.end('hello'));
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return (server.address() as AddressInfo).port;
    }

    it('completes a handshake with a client that trusts it as its CA', async () => {
      const port = await listen();
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'gate.example.com', ca: certPem });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true);
      assert.equal(socket.getPeerCertificate().subject.CN, 'wsgate default certificate');
      socket.setEncoding('utf8');
      let body = '';
      for await (const chunk of socket) body += chunk as string;
      assert.equal(body, 'hello');
    });

    it('fails the handshake for a server name outside its DNS names', async () => {
      const port = await listen();
      const socket = connect({ host: '127.0.0.1', port, servername: 'other.example.com', ca: certPem });
      const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    });
  });
});
