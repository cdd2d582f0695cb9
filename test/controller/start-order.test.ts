// Issue 9, item 11 for `wsgate controller`: nothing listens before it can route. The controller's data listeners
// bind with its first table (built once every informer has listed), not at start: a client that connects at the
// first instant the port accepts finds the routes the API server already held. The route has no endpoints, so a
// routed handshake is 503 (no_endpoint); a listener without a table would answer 404 (no_route).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { handshake, httpHead, readUntil } from '../helpers/l7-peers.ts';
import { apis, service, startTestController, webSocketRoute, type Apis } from './harness.ts';

const NS = 'order';
const HANDSHAKES = 50;

async function statusOn(socket: net.Socket): Promise<string> {
  socket.on('error', () => {});
  try {
    socket.write(handshake({ host: 'first.test', path: '/' }));
    return (await readUntil(socket, httpHead)).value.split(' ')[1] ?? '';
  } catch {
    return 'reset';
  } finally {
    socket.destroy();
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('wsgate controller: routes from the first connection it accepts', () => {
  let cp: ControlPlane;
  let api: Apis;

  before(async () => {
    cp = await startControlPlane();
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'echo') });
    await api.custom.createNamespacedCustomObject({
      group: 'wsgate.io',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'websocketroutes',
      body: webSocketRoute(NS, 'first', { host: 'first.test', service: 'echo' }),
    });
  });

  after(async () => {
    await cp?.stop();
  });

  for (const workers of [defaultWorkers(), 1]) {
    it(`with --workers ${workers}: answers the first handshake and ${HANDSHAKES} more from the route, never 404`, async () => {
      const t = await startTestController(cp.kubeConfig(), { leaseName: `order-${workers}`, workers, namespace: NS });
      try {
        // The port is known at start (probed); it accepts once the first table is live.
        const deadline = performance.now() + 30_000;
        let first: string | undefined;
        while (first === undefined) {
          try {
            first = await statusOn(await connect(t.httpPort));
          } catch {
            assert.ok(performance.now() < deadline, 'the port never accepted');
            await new Promise((r) => setImmediate(r));
          }
        }
        const statuses = [first];
        for (let i = 0; i < HANDSHAKES; i++) statuses.push(await statusOn(await connect(t.httpPort)));
        assert.deepEqual([...new Set(statuses)], ['503'], statuses.join(' '));
      } finally {
        await t.controller.stop();
      }
    });
  }
});
