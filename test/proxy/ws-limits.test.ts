// Message limits on WebSocket tunnels (issue 10), with real `ws` peers through a real gateway (keepalive off: no
// frame but the peers' and the limits' own):
//  - maxMessageBytes / maxBackendMessageBytes: a message over the limit (the sum of its fragments, bytes on the
//    wire) gets its sender a 1009 close and the peer a 1001, counted in wsgate_ws_limit_closes_total{limit=
//    "message_size"}; a message at the limit passes;
//  - maxMessagesPerSecond with onExceed Throttle: a flooding client is slowed to the rate (a token bucket: never more
//    than rate × elapsed + burst messages), loses nothing, and the throttled time is counted; with onExceed Close,
//    it gets 1008 and the backend 1001.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/model/table.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, startWsBackend, stopGateway, type Client, type WsBackend } from '../helpers/l7-peers.ts';

const MiB = 1024 * 1024;
const NO_KEEPALIVE = { intervalSeconds: 0, timeoutSeconds: 30, toBackend: false };
/** maxMessagesPerSecond of the rate routes; the bucket holds one second's worth (the burst). */
const RATE = 25;
/** Messages the flooding client sends: four seconds' worth beyond the burst. */
const FLOOD = 5 * RATE;
/** A rate slow enough that a small flood keeps the client throttled for longer than keepalive's verdict. */
const SLOW_RATE = 2;

let gw: TestGateway;
let echo: WsBackend;

before(async () => {
  echo = await startWsBackend({ perMessageDeflate: false, maxPayload: 0 });
  const route = (name: string, policy: Partial<Policy>) =>
    httpRoute({ route: `default/${name}`, path: `/${name}`, backends: [backend(`default/${name}:80`, echo.port)], policy: { keepalive: NO_KEEPALIVE, ...policy } });
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost(
          '*',
          route('size', { maxMessageBytes: MiB, maxBackendMessageBytes: MiB }),
          route('backend-size', { maxMessageBytes: 4 * MiB, maxBackendMessageBytes: MiB }),
          route('rate', { maxMessagesPerSecond: RATE }),
          route('rate-close', { maxMessagesPerSecond: RATE, onExceed: 'Close' }),
          route('rate-keepalive', { maxMessagesPerSecond: SLOW_RATE, keepalive: { intervalSeconds: 1, timeoutSeconds: 2, toBackend: false } }),
        ),
      ],
    }),
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
});

async function connect(path: string): Promise<[Client, Awaited<ReturnType<typeof echo.connections.shift>>]> {
  const c = await openClient(`${gw.wsUrl}/${path}`, [], { perMessageDeflate: false, maxPayload: 0 });
  return [c, await echo.connections.shift()];
}

const limitCloses = (route: string, limit: string): Promise<number> => gw.metric('wsgate_ws_limit_closes_total', { route: `default/${route}`, limit });

describe('message size limits', { timeout: 30_000 }, () => {
  test('a message at maxMessageBytes passes both ways, whole or in fragments', async () => {
    const [c, conn] = await connect('size');
    for (const n of [MiB - 1, MiB]) {
      const m = randomBytes(n);
      assert.ok((await roundTrip(c, m)).data.equals(m), `${n} bytes echoed`);
    }
    const echoed = c.messages.shift();
    c.ws.send(Buffer.alloc(MiB / 2, 1), { fin: false });
    c.ws.send(Buffer.alloc(MiB / 2, 2), { fin: true });
    assert.equal((await echoed).data.length, MiB);
    c.ws.close(1000);
    assert.equal((await conn.closed).code, 1000);
    assert.equal(await limitCloses('size', 'message_size'), 0);
  });

  test('a 2 MiB message against maxMessageBytes 1 MiB: 1009 to the client, 1001 to the backend, none of it relayed', async () => {
    const before = await limitCloses('size', 'message_size');
    const [c, conn] = await connect('size');
    assert.equal((await roundTrip(c, 'small first')).data.toString(), 'small first');
    c.ws.send(randomBytes(2 * MiB));
    assert.equal((await c.closed).code, 1009);
    assert.equal((await conn.closed).code, 1001);
    assert.equal(conn.messages.length, 1, 'the backend got only the small message');
    await converge(async () => (await limitCloses('size', 'message_size')) === before + 1, 'the limit close counted');
    assert.equal(await gw.metric('wsgate_ws_closes_total', { route: 'default/size', initiator: 'wsgate', code: '1009' }), 1);
    assert.equal(await gw.metric('wsgate_connections_total', { route: 'default/size', outcome: 'limit_exceeded' }), 1);
  });

  test('fragments that add up to more than maxMessageBytes: the same, at the fragment that goes over', async () => {
    const [c, conn] = await connect('size');
    c.ws.send(Buffer.alloc(600 * 1024, 1), { fin: false });
    c.ws.send(Buffer.alloc(600 * 1024, 2), { fin: true });
    assert.equal((await c.closed).code, 1009);
    assert.equal((await conn.closed).code, 1001);
    assert.equal(conn.messages.length, 0);
  });

  test('a 2 MiB message from the backend against maxBackendMessageBytes 1 MiB: 1009 to the backend, 1001 to the client', async () => {
    const before = await limitCloses('backend-size', 'message_size');
    const [c, conn] = await connect('backend-size');
    // The client's 2 MiB is within its own limit (4 MiB); the backend's echo of it is over the backend's.
    c.ws.send(randomBytes(2 * MiB));
    assert.equal((await conn.closed).code, 1009);
    assert.equal((await c.closed).code, 1001);
    assert.equal(c.messages.length, 0, 'the client got none of the echo');
    await converge(async () => (await limitCloses('backend-size', 'message_size')) === before + 1, 'the limit close counted');
  });
});

describe('message rate limit', { timeout: 30_000 }, () => {
  test(`a client flooding ${FLOOD} messages is slowed to ${RATE}/s (rate × elapsed + burst at most), and loses none`, async () => {
    // Before the handshake: the bucket (full: one second's worth) was filled after this instant.
    const startedAt = performance.now();
    const [c, conn] = await connect('rate');
    const arrivals: number[] = [];
    conn.ws.on('message', () => arrivals.push(performance.now()));
    for (let i = 0; i < FLOOD; i++) c.ws.send(`message ${i}`);
    // The echoes come back as the messages get through: the last one means all got through.
    for (let i = 0; i < FLOOD; i++) assert.equal((await c.messages.shift()).data.toString(), `message ${i}`);
    assert.equal(arrivals.length, FLOOD);
    for (let i = 0; i < FLOOD; i++) {
      // By the time the (i+1)-th message arrived, at most RATE per second since the start plus the burst got through.
      const allowed = RATE * ((arrivals[i]! - startedAt) / 1000) + RATE;
      assert.ok(i + 1 <= allowed + 1, `message ${i + 1} arrived ${Math.round(arrivals[i]! - startedAt)} ms after the start: more than ${allowed.toFixed(1)} allowed`);
    }
    const received = (await Promise.all(Array.from({ length: conn.messages.length }, () => conn.messages.shift()))).map((m) => m.data.toString());
    assert.deepEqual(received, Array.from({ length: FLOOD }, (_, i) => `message ${i}`), 'every message, in order');
    c.ws.close(1000);
    await c.closed;
    await converge(async () => (await gw.metric('wsgate_ws_throttled_seconds_total', { route: 'default/rate' })) > 0, 'throttled time counted');
    assert.equal(await limitCloses('rate', 'message_rate'), 0, 'Throttle closes nothing');
  });

  test('a throttled client whose messages are fragmented and large still loses nothing', async () => {
    const [c, conn] = await connect('rate');
    const big = randomBytes(200_000);
    const n = RATE + 10;
    for (let i = 0; i < n; i++) {
      c.ws.send(big.subarray(0, 100_000), { fin: false });
      c.ws.send(big.subarray(100_000), { fin: true });
      if (!c.ws.isPaused && c.ws.bufferedAmount > 4 * MiB) await once(c.ws, 'drain').catch(() => undefined);
    }
    for (let i = 0; i < n; i++) assert.ok((await c.messages.shift()).data.equals(big), `echo ${i}`);
    c.ws.close(1000);
    assert.equal((await conn.closed).code, 1000);
  });

  test('a client throttled for longer than keepalive interval + timeout is not taken for dead', async () => {
    // 16 messages at 2/s: the client waits about 7 s for wsgate to read them all, while keepalive (1 s + 2 s)
    // would find a client that sent nothing dead within 4 s. It did send: wsgate is not reading.
    const n = 8 * SLOW_RATE;
    const [c, conn] = await connect('rate-keepalive');
    for (let i = 0; i < n; i++) c.ws.send(`message ${i}`);
    const cut = c.closed.then((e) => assert.fail(`closed with ${e.code} ${e.reason}`));
    for (let i = 0; i < n; i++) assert.equal((await Promise.race([c.messages.shift(), cut])).data.toString(), `message ${i}`);
    assert.equal(c.ws.readyState, c.ws.OPEN);
    assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route: 'default/rate-keepalive' }), 0);
    c.ws.close(1000);
    assert.equal((await conn.closed).code, 1000);
  });

  test('with onExceed Close, a client over the rate gets 1008 and the backend 1001', async () => {
    const [c, conn] = await connect('rate-close');
    for (let i = 0; i < 3 * RATE; i++) c.ws.send(`message ${i}`);
    assert.equal((await c.closed).code, 1008);
    assert.equal((await conn.closed).code, 1001);
    assert.ok(conn.messages.length <= RATE + 1, `${conn.messages.length} messages got through a bucket of ${RATE}`);
    await converge(async () => (await limitCloses('rate-close', 'message_rate')) === 1, 'the rate close counted');
    assert.equal(await gw.metric('wsgate_ws_closes_total', { route: 'default/rate-close', initiator: 'wsgate', code: '1008' }), 1);
  });
});
