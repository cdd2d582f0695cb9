// Changes to live routes through a real API server, with connections open: an update applies to new connections
// and drops none of 100 open ones, a delete makes new connections 404, and a TLS Secret replaced in the API server
// is served to new handshakes while an open wss connection carries on. No restart anywhere: one controller.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect as connectTLS } from 'node:tls';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  condition,
  endpointSlice,
  eventually,
  exchange,
  holdConnection,
  readRoute,
  service,
  startTestController,
  tlsSecret,
  webSocketRoute,
  type Apis,
  type HeldConnection,
  type TestController,
  awaitReadyLeader,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'updates';
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };
const HELD = 100;

/** The SHA-256 fingerprint of the certificate a new TLS handshake with `servername` gets (verified against `ca`). */
async function servedFingerprint(port: number, servername: string, ca: string): Promise<string> {
  const socket = connectTLS({ host: '127.0.0.1', port, servername, ca });
  try {
    await once(socket, 'secureConnect', { signal: AbortSignal.timeout(3000) });
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    socket.destroy();
  }
}

describe('route changes while connections are open', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  let httpsPort: number;
  let ca: TestCA;
  const backends: { stop(): Promise<void> }[] = [];

  before(async () => {
    ca = createTestCA();
    cp = await startControlPlane();
    net = createPodNetwork(4);
    backends.push(await net.startEchoBackend(net.podIP(0), 8080, 'blue'));
    backends.push(await net.startEchoBackend(net.podIP(1), 8080, 'green'));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    for (const [i, name] of ['blue', 'green'].entries()) {
      await api.core.createNamespacedService({ namespace: NS, body: service(NS, name) });
      await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, name, [net.podIP(i)]) });
    }
    t = await startTestController(cp.kubeConfig(), {
      namespace: NS,
      leaseName: 'updates-test',
      httpsAddr: { host: '127.0.0.1', port: 0 },
    });
    httpsPort = t.controller.gateway.addresses().https?.port ?? 0;
    await awaitReadyLeader(t);
  });

  after(async () => {
    await t?.controller.stop();
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
    ca?.dispose();
  });

  /** Each held connection still answers, from `backend`, and none was closed. */
  async function assertAllServed(held: readonly HeldConnection[], backend: string, round: string): Promise<void> {
    const closed = (): string[] => held.flatMap((h, i) => (h.closed === undefined ? [] : [`#${i} ${h.closed}`]));
    assert.deepEqual(closed(), [], 'no open connection was closed');
    const answers = await Promise.all(held.map((h, i) => h.echo(`${round}-${i}`)));
    answers.forEach((a, i) => assert.equal(a, `${backend}:${round}-${i}`));
    assert.deepEqual(closed(), [], 'no open connection was closed');
  }

  it(`applies an update to new connections and drops none of ${HELD} open ones; after a delete, new ones get 404`, async () => {
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'live', {
        host: 'live.test',
        service: 'blue',
        // Keep: the open tunnels outlive the route's deletion (the default, Close, spreads 1001s over 60 s).
        policy: { onRemoval: { action: 'Keep' } },
      }) });
    await eventually('the route to serve', async () => ((await exchange(t.httpPort, 'live.test', '/chat', 'a')) === 'blue:a' ? true : undefined));
    const held = await Promise.all(Array.from({ length: HELD }, () => holdConnection(`ws://127.0.0.1:${t.httpPort}/chat`, 'live.test')));
    try {
      await assertAllServed(held, 'blue', 'before');

      // The update: another path, another backend. Both are visible to a new connection.
      const current = (await api.custom.getNamespacedCustomObject({ ...WSR, name: 'live' })) as ReturnType<typeof webSocketRoute>;
      current.spec.rules = [{ path: { type: 'Prefix', value: '/v2' }, backends: [{ service: 'green', port: 80 }] }];
      await api.custom.replaceNamespacedCustomObject({ ...WSR, name: 'live', body: current });
      await eventually('new connections to follow the update', async () =>
        (await exchange(t.httpPort, 'live.test', '/v2/chat', 'b')) === 'green:b' &&
        (await exchange(t.httpPort, 'live.test', '/chat', 'b')) === 'HTTP 404'
          ? true
          : undefined,
      );
      await eventually('status for generation 2', async () => {
        const r = await readRoute(api, NS, 'live');
        return r.status?.observedGeneration === 2 && condition(r, 'Accepted')?.status === 'True' ? true : undefined;
      }, { times: 1 });
      // The open connections keep the route and backend they were given.
      await assertAllServed(held, 'blue', 'updated');

      await api.custom.deleteNamespacedCustomObject({ ...WSR, name: 'live' });
      await eventually('new connections to get 404 after the delete', async () =>
        (await exchange(t.httpPort, 'live.test', '/v2/chat', 'c')) === 'HTTP 404' ? true : undefined,
      );
      // A delete closes nothing either (the data plane never closes a connection on a table swap).
      await assertAllServed(held, 'blue', 'deleted');
    } finally {
      for (const h of held) h.close();
    }
  });

  it('serves a TLS Secret rotated in the API server to new handshakes, while an open wss connection keeps working', async () => {
    const first = ca.issue(['secure.test']);
    const second = ca.issue(['secure.test']);
    const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
    assert.notEqual(fingerprint(first.certPem), fingerprint(second.certPem));
    await api.core.createNamespacedSecret({ namespace: NS, body: tlsSecret(NS, 'secure-tls', first) });
    await api.custom.createNamespacedCustomObject({
      ...WSR,
      body: webSocketRoute(NS, 'secure', { host: 'secure.test', service: 'blue', tlsSecret: 'secure-tls' }),
    });
    await eventually('the first certificate to be served', async () =>
      (await servedFingerprint(httpsPort, 'secure.test', ca.certPem)) === fingerprint(first.certPem) ? true : undefined,
    );
    const tls = { ca: ca.certPem, servername: 'secure.test' };
    const held = await holdConnection(`wss://127.0.0.1:${httpsPort}/`, 'secure.test', tls);
    try {
      assert.equal(await held.echo('one'), 'blue:one');
      const syncsBefore = t.controller.syncs;

      await api.core.replaceNamespacedSecret({ namespace: NS, name: 'secure-tls', body: tlsSecret(NS, 'secure-tls', second) });
      await eventually('new handshakes to get the rotated certificate', async () =>
        (await servedFingerprint(httpsPort, 'secure.test', ca.certPem)) === fingerprint(second.certPem) ? true : undefined,
      );
      assert.ok(t.controller.syncs > syncsBefore, 'the rotation was applied by a sync, not a restart');
      assert.equal(await held.echo('two'), 'blue:two');
      assert.equal(held.closed, undefined, 'the open wss connection was not closed');
      // A new wss connection works with the new certificate end to end.
      const fresh = await holdConnection(`wss://127.0.0.1:${httpsPort}/`, 'secure.test', tls);
      assert.equal(await fresh.echo('three'), 'blue:three');
      fresh.close();
    } finally {
      held.close();
    }
  });
});
