// TLS termination configured through files: a WebSocketRoute's spec.tls.secretName and a kubernetes.io/tls Secret.
// Rotating the Secret's certificate changes what new connections are served, and leaves open ones alone.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { converge, roundTrip, startWsBackend, type Client, type WsBackend } from '../helpers/l7-peers.ts';
import {
  backendService,
  createConfigDir,
  startServe,
  tlsSecret,
  openWithHost,
  webSocketRoute,
  type ConfigDir,
  type ServeHarness,
} from '../helpers/serve-harness.ts';

const HOST = 'secure.test';

let ca: TestCA;
let echo: WsBackend;
let dir: ConfigDir;
let h: ServeHarness;
const clients: Client[] = [];

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/**
 * Opens wss:// to the TLS listener with SNI and Host `HOST`, trusting only the test CA (so the certificate is
 * verified as a browser would); returns the client and the fingerprint of the certificate the server presented.
 */
async function openSecure(): Promise<{ client: Client; served: string }> {
  const client = await openWithHost(`wss://127.0.0.1:${h.httpsPort}/chat`, HOST, { servername: HOST, ca: ca.certPem });
  clients.push(client);
  return { client, served: (client.response.socket as TLSSocket).getPeerCertificate().fingerprint256 };
}

async function close(c: Client): Promise<void> {
  c.ws.close();
  await c.closed;
}

before(async () => {
  ca = createTestCA();
  echo = await startWsBackend();
  dir = createConfigDir();
  dir.write('10-echo.yaml', [
    ...backendService('echo', echo.port),
    webSocketRoute('chat', { hostnames: [HOST], tlsSecret: 'chat-tls', rules: [{ path: '/chat', backends: [{ service: 'echo' }] }] }),
  ]);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await h?.close();
  await echo?.close();
  dir?.dispose();
  ca?.dispose();
});

describe('TLS termination from a kubernetes.io/tls Secret file', { timeout: 30_000 }, () => {
  test('serves the Secret certificate for the route host, and a rotated one to new connections only', async () => {
    const first = ca.issue([HOST]);
    dir.write('20-secret.yaml', [tlsSecret('chat-tls', first)]);
    h = await startServe(dir.path);
    await h.awaitTable((_hosts, t) => t.certificates.some((c) => c.secret === 'default/chat-tls'), 'the certificate in the live table');

    const { client: open, served } = await openSecure();
    assert.equal(served, fingerprint(first.certPem), 'the first certificate is served');
    assert.equal((await roundTrip(open, 'over tls')).data.toString(), 'over tls');

    // Rotate: the Secret file is rewritten with a new certificate for the same host.
    const second = ca.issue([HOST]);
    assert.notEqual(fingerprint(second.certPem), fingerprint(first.certPem));
    dir.write('20-secret.yaml', [tlsSecret('chat-tls', second)]);
    await converge(
      async () => {
        const { client, served: now } = await openSecure();
        await close(client);
        return now === fingerprint(second.certPem);
      },
      'new connections served the rotated certificate',
      3,
      10_000,
    );

    // The connection opened before the rotation is untouched.
    assert.equal(open.ws.readyState, open.ws.OPEN);
    assert.equal((await roundTrip(open, 'still over tls')).data.toString(), 'still over tls');
    const { client: fresh, served: freshCert } = await openSecure();
    assert.equal(freshCert, fingerprint(second.certPem));
    assert.equal((await roundTrip(fresh, 'fresh')).data.toString(), 'fresh');
    await close(fresh);
    await close(open);
  });
});
