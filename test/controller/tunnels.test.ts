// TCPTunnels created through a real API server reach their backends: a plain one (bytes both ways), and two on one
// port routed by the ClientHello's SNI to TLS servers that hold their own certificates (passthrough: the client
// verifies the backend's certificate, so wsgate cannot have terminated TLS). Backends are TCP and TLS echo
// servers at TEST-NET-3 addresses in a network namespace (pod-network.ts).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectTCP } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as connectTLS, type TLSSocket } from 'node:tls';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  condition,
  endpointSlice,
  eventually,
  freePort,
  readRoute,
  service,
  startTestController,
  tcpTunnel,
  type Apis,
  type TestController,
  awaitReadyLeader,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'tunnels';
const TCPT = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'tcptunnels' };

/** Writes `message` on a fresh socket to 127.0.0.1:port and resolves with the first answer (3 s at most). */
async function tcpExchange(port: number, message: string): Promise<string> {
  const socket = connectTCP({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect', { signal: AbortSignal.timeout(3000) });
    socket.write(message);
    const [data] = (await once(socket, 'data', { signal: AbortSignal.timeout(3000) })) as [Buffer];
    return data.toString();
  } finally {
    socket.destroy();
  }
}

/** A verified TLS connection to 127.0.0.1:port with `servername`; resolves with the peer's CN and the echo. */
async function tlsExchange(port: number, servername: string, ca: string, message: string): Promise<{ cn: string; answer: string }> {
  const socket: TLSSocket = connectTLS({ host: '127.0.0.1', port, servername, ca });
  try {
    await once(socket, 'secureConnect', { signal: AbortSignal.timeout(3000) });
    const cn = String(socket.getPeerCertificate().subject.CN);
    socket.write(message);
    const [data] = (await once(socket, 'data', { signal: AbortSignal.timeout(3000) })) as [Buffer];
    return { cn, answer: data.toString() };
  } finally {
    socket.destroy();
  }
}

describe('TCPTunnels from a real API server', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  let ca: TestCA;
  const backends: { stop(): Promise<void> }[] = [];

  before(async () => {
    ca = createTestCA();
    cp = await startControlPlane();
    net = createPodNetwork(3);
    backends.push(await net.startEchoBackend(net.podIP(0), 8080, 'plain', { mode: 'tcp' }));
    backends.push(await net.startEchoBackend(net.podIP(1), 8080, 'alpha', { mode: 'tls', tls: ca.issue(['alpha.test']) }));
    backends.push(await net.startEchoBackend(net.podIP(2), 8080, 'beta', { mode: 'tls', tls: ca.issue(['beta.test']) }));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    for (const [i, name] of ['plain', 'alpha', 'beta'].entries()) {
      await api.core.createNamespacedService({ namespace: NS, body: service(NS, name) });
      await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, name, [net.podIP(i)]) });
    }
    t = await startTestController(cp.kubeConfig(), { namespace: NS, leaseName: 'tunnels-test' });
    await awaitReadyLeader(t);
  });

  after(async () => {
    await t?.controller.stop();
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
    ca?.dispose();
  });

  it('forwards a plain TCPTunnel to its backend, and says Accepted and ResolvedRefs', async () => {
    const port = await freePort();
    await api.custom.createNamespacedCustomObject({ ...TCPT, body: tcpTunnel(NS, 'plain', { port, service: 'plain' }) });
    await eventually('the echo through the tunnel', async () => ((await tcpExchange(port, 'ping')) === 'plain:ping' ? true : undefined));
    const r = await eventually('status on the tunnel', async () => {
      const r = await readRoute(api, NS, 'plain', 'tcptunnels');
      return condition(r, 'ResolvedRefs') ? r : undefined;
    }, { times: 1 });
    assert.deepEqual(r.status?.conditions?.map((c) => [c.type, c.status]), [['Accepted', 'True'], ['ResolvedRefs', 'True']]);
    assert.equal(r.status?.observedGeneration, r.metadata.generation);
  });

  it('routes TLS by SNI to the backend that holds the certificate, without terminating it', async () => {
    const port = await freePort();
    await api.custom.createNamespacedCustomObject({ ...TCPT, body: tcpTunnel(NS, 'alpha', { port, service: 'alpha', sniHostnames: ['alpha.test'] }) });
    await api.custom.createNamespacedCustomObject({ ...TCPT, body: tcpTunnel(NS, 'beta', { port, service: 'beta', sniHostnames: ['beta.test'] }) });
    await eventually('both SNI names to reach their backends', async () => {
      const a = await tlsExchange(port, 'alpha.test', ca.certPem, 'x');
      const b = await tlsExchange(port, 'beta.test', ca.certPem, 'y');
      return a.answer === 'alpha:x' && b.answer === 'beta:y' ? [a, b] : undefined;
    });
    // The certificates are the backends' own (verified against the test CA, for the name asked): passthrough.
    const a = await tlsExchange(port, 'alpha.test', ca.certPem, 'again');
    assert.deepEqual(a, { cn: 'alpha.test', answer: 'alpha:again' });
    const b = await tlsExchange(port, 'beta.test', ca.certPem, 'again');
    assert.deepEqual(b, { cn: 'beta.test', answer: 'beta:again' });
    // A name no tunnel on the port lists gets no backend: the connection is closed before any handshake.
    await assert.rejects(tlsExchange(port, 'gamma.test', ca.certPem, 'z'), (err: Error) => {
      assert.match(String((err as { code?: string }).code ?? err.message), /ECONNRESET|socket disconnected|EPIPE/i);
      return true;
    });
    for (const name of ['alpha', 'beta']) {
      const r = await eventually(`status on ${name}`, async () => {
        const r = await readRoute(api, NS, name, 'tcptunnels');
        return condition(r, 'ResolvedRefs') ? r : undefined;
      }, { times: 1 });
      assert.equal(condition(r, 'Accepted')?.status, 'True');
    }
  });
});
