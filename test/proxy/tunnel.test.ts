// The TunnelRegistry on its own, with real loopback socket pairs: endings that depend on the order of events
// inside wsgate, which end-to-end tests cannot always force.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { TunnelRegistry } from '../../src/proxy/registry.ts';

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A connected pair of sockets on loopback: [the side wsgate holds, the peer]. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const ours = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await once(ours, 'connect');
  const [peer] = await accepted;
  return [ours, peer];
}

function registry(): { reg: TunnelRegistry; metrics: ReturnType<typeof createMetrics> } {
  const metrics = createMetrics('test', { defaultMetrics: false });
  const reg = new TunnelRegistry(metrics, silentLogger(), 60_000);
  // These endings are orders of events inside the JavaScript relay (relay.ts); the native relay's are in
  // relay-paths.test.ts.
  reg.relay = 'js';
  return { reg, metrics };
}

describe('TunnelRegistry endings', () => {
  test('ends a tunnel whose client errors after the upstream write side was already shut down', async () => {
    const { reg, metrics } = registry();
    const [client, clientPeer] = await socketPair();
    const [upstream, upstreamPeer] = await socketPair();
    clientPeer.on('error', () => {});
    upstreamPeer.on('error', () => {});
    reg.open({ route: 'ns/r', layer: 'l4', client, upstream, clientAddress: '127.0.0.1', backend: 'b', idleTimeoutMs: 0, startedAt: performance.now(), routeId: 'TCPTunnel/ns/r' });
    // The client's FIN is carried across: the upstream socket's write side is shut down.
    clientPeer.end();
    await once(upstreamPeer, 'end');
    assert.equal(upstream.writableEnded, true);
    // Now the client side fails. A reset can no longer be passed to the upstream (libuv refuses it once the write
    // side is shut down); the tunnel must end all the same.
    client.destroy(new Error('client failed'));
    upstreamPeer.end();
    await reg.drained();
    assert.equal(reg.size, 0);
    const active = await metrics.connectionsActive.get();
    assert.equal(active.values.reduce((s, v) => s + v.value, 0), 0);
    const total = await metrics.connectionsTotal.get();
    assert.deepEqual(total.values.map((v) => v.labels.outcome), ['client_abort']);
    reg.stop();
  });

  test('ends a tunnel whose client had already closed when the tunnel was opened', async () => {
    const { reg } = registry();
    const [client, clientPeer] = await socketPair();
    const [upstream, upstreamPeer] = await socketPair();
    upstreamPeer.on('error', () => {});
    clientPeer.destroy();
    client.destroy();
    await once(client, 'close');
    reg.open({ route: 'ns/r', layer: 'l7', client, upstream, clientAddress: '127.0.0.1', backend: 'b', idleTimeoutMs: 0, startedAt: performance.now(), routeId: 'TCPTunnel/ns/r' });
    upstreamPeer.end();
    await reg.drained();
    assert.equal(reg.size, 0);
    reg.stop();
  });
});
