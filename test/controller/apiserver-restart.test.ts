// The API server going away never touches the data plane: kube-apiserver is stopped for 30 s (etcd keeps running,
// so the data survive) and started again by the harness (ControlPlane.stopApiServer/startApiServer: same arguments,
// port, certificates and etcd). Traffic flows the whole time, on a connection opened before and on new ones; the
// informers count their errors, reconnect with backoff, and a change made after the restart is applied.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setInterval } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  endpointSlice,
  eventually,
  exchange,
  service,
  startTestController,
  webSocketRoute,
  type Apis,
  type TestController,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'outage';
/**
 * [WSGATE_OUTAGE_MS=30000] How long the API server stays away, in milliseconds: the 30 s. A shorter one
 * (e.g. 5000) is handy locally; the backoff cap of the test controller (1 s) makes 5 s enough to see restarts.
 */
const OUTAGE_MS = Number(process.env.WSGATE_OUTAGE_MS ?? 30_000);
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };

describe('the API server stopped and started again', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  let backend: { stop(): Promise<void> } | undefined;

  before(async () => {
    cp = await startControlPlane();
    net = createPodNetwork(2);
    backend = await net.startEchoBackend(net.podIP(0), 8080, 'a');
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'echo') });
    await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, 'echo', [net.podIP(0)]) });
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'before', { host: 'before.test', service: 'echo' }) });
    t = await startTestController(cp.kubeConfig(), { leaseName: 'outage-test' });
    await eventually('the route to serve', async () => ((await exchange(t.httpPort, 'before.test', '/', 'hi')) === 'a:hi' ? true : undefined));
  });

  after(async () => {
    await t?.controller.stop();
    await backend?.stop();
    net?.destroy();
    await cp?.stop();
  });

  it('keeps serving while the API server is away, and applies a change made after it returns', async (ctx) => {
    // A connection opened before the outage, kept open through it.
    const held = new WebSocket(`ws://127.0.0.1:${t.httpPort}/`, { headers: { host: 'before.test' } });
    await once(held, 'open');
    let heldClosed: string | undefined;
    held.once('close', (code) => { heldClosed = `closed with ${code}`; });
    const heldEcho = async (m: string): Promise<string> => {
      const reply = once(held, 'message', { signal: AbortSignal.timeout(3000) });
      held.send(m);
      return String((await reply)[0]);
    };
    assert.equal(await heldEcho('one'), 'a:one');

    const errorsBefore = await watchErrors(t);
    // SIGKILL: a graceful stop waits for open watches to end; a crash is the harder case anyway.
    await cp.stopApiServer({ signal: 'SIGKILL' });
    const stoppedAt = Date.now();

    // While it is away, every new connection is served and the held one keeps echoing: any failure fails the test
    // (a paced loop, 10 connections a second, not a wait for anything). The informers notice and back off.
    let served = 0;
    const ticker = setInterval(100);
    try {
      while (Date.now() - stoppedAt < OUTAGE_MS) {
        assert.equal(await exchange(t.httpPort, 'before.test', '/', `n${served}`), `a:n${served}`);
        if (served % 50 === 0) assert.equal(await heldEcho(`held${served}`), `a:held${served}`);
        served++;
        await ticker.next();
      }
    } finally {
      await ticker.return?.();
    }
    assert.ok(served >= OUTAGE_MS / 1000, `${served} connections served during the outage`);
    assert.ok((await watchErrors(t)) >= errorsBefore + 3, 'the informers saw the API server go away');
    assert.equal(t.controller.gateway.notReady(), undefined, 'still ready: the data plane does not depend on the API server');

    // Back, with the same etcd: startApiServer() returns once /readyz is 200 and custom resources are listable.
    const startedAt = Date.now();
    await cp.startApiServer();
    ctx.diagnostic(`${served} connections served during the outage; API server ready again in ${Date.now() - startedAt} ms`);
    assert.ok(Date.now() - stoppedAt >= OUTAGE_MS, `the API server was away for ${OUTAGE_MS} ms`);
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'after', { host: 'after.test', service: 'echo' }) });
    await eventually('the route made after the restart to serve', async () =>
      (await exchange(t.httpPort, 'after.test', '/', 'x')) === 'a:x' ? true : undefined,
    { timeoutMs: 60_000 });
    assert.equal(await heldEcho('three'), 'a:three');
    assert.equal(await exchange(t.httpPort, 'before.test', '/', 'y'), 'a:y');
    assert.equal(heldClosed, undefined, 'the connection opened before the outage was never closed');
    held.close();
  });
});

async function watchErrors(t: TestController): Promise<number> {
  const { values } = await t.metrics.controllerWatchErrors.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

