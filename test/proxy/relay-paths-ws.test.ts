// WebSocket tunnels and the native relay (issue 13): a route with inspectFrames: false is a byte pipe, so its
// tunnels are spliced like L4 ones; a route that inspects frames keeps its tunnels on the JavaScript relay, where the
// frame tracker sees the bytes. Real peers: the ws package on both ends of a Gateway.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { nativeTunnels } from '../../src/proxy/native-relay.ts';
import { catchAll } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';

let backend: WsBackend;
before(async () => {
  backend = await startWsBackend();
});
after(() => backend.close());

describe('WebSocket tunnels on the native relay', () => {
  let gw: TestGateway;
  after(() => gw.close());

  test('a route that does not inspect frames: messages both ways intact, the close handshake passed through, bytes counted', async () => {
    gw = await startGateway(catchAll([backend.port], { inspectFrames: false }));
    const before = nativeTunnels();
    const c = await openClient(`${gw.wsUrl}/pipe`);
    await converge(() => nativeTunnels() === before + 1, 'the tunnel is on the native relay');
    const big = randomBytes(1 << 20);
    assert.ok((await roundTrip(c, big)).data.equals(big), '1 MiB message intact');
    for (let i = 0; i < 50; i++) assert.equal((await roundTrip(c, `message ${i}`)).data.toString(), `message ${i}`);
    c.ws.close(4001, 'done here');
    assert.deepEqual(await c.closed, { code: 4001, reason: 'done here' });
    await gw.gateway.registry.drained();
    assert.equal(nativeTunnels(), before);
    assert.equal(await gw.metric('wsgate_connections_total', { layer: 'l7', outcome: 'completed' }), 1);
    // Frames carry a few bytes of header each; the payloads alone are a lower bound.
    assert.ok((await gw.metric('wsgate_tunnel_bytes_total', { direction: 'upstream' })) > big.length);
    assert.ok((await gw.metric('wsgate_tunnel_bytes_total', { direction: 'downstream' })) > big.length);
  });

  test('a route that inspects frames (the default) keeps its tunnels on the JavaScript relay', async () => {
    await gw.close();
    gw = await startGateway(catchAll([backend.port]));
    const before = nativeTunnels();
    const c = await openClient(`${gw.wsUrl}/tracked`);
    assert.equal((await roundTrip(c, 'hello')).data.toString(), 'hello');
    assert.equal(nativeTunnels(), before);
    assert.equal(gw.gateway.registry.size, 1);
    c.ws.close(1000);
    await c.closed;
  });
});
