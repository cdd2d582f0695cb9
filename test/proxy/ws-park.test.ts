// A quiet WebSocket's frame trackers are parked (ws-session.ts): the sweep lets them go when the tunnel relayed
// nothing since the last one, and new ones are made when bytes come. What must hold, between raw peers through a
// real gateway that sweeps every 50 ms: a tracker inside a message is kept; once both are parked, everything a
// tracker was told still applies to the new ones: the message size limit, the message rate, the RSV bits the 101
// negotiated, and the pongs to swallow after a keepalive ping.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { Opcode } from '../../src/proxy/ws-frames.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, encodeFrame, startRawBackend, stopGateway, type Frame, type RawBackend } from '../helpers/l7-peers.ts';
import { closeRawTunnel, openRawTunnel, type Collector, type RawTunnel } from '../helpers/raw-tunnel.ts';

/** Keepalive off where a test is not about it: its pings would be frames the test did not send. */
const NO_KEEPALIVE = { intervalSeconds: 0, timeoutSeconds: 30, toBackend: false };

let gw: TestGateway;
let raw: RawBackend;
let open: RawTunnel[] = [];

before(async () => {
  raw = await startRawBackend();
  const route = (name: string, policy: Parameters<typeof httpRoute>[0]['policy']) =>
    httpRoute({ route: `default/${name}`, path: `/${name}`, backends: [backend(`default/${name}:80`, raw.port)], policy });
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost(
          '*',
          route('plain', { keepalive: NO_KEEPALIVE }),
          route('limits', { keepalive: NO_KEEPALIVE, maxMessageBytes: 1000, maxMessagesPerSecond: 3, onExceed: 'Close' }),
          route('keepalive', { keepalive: { intervalSeconds: 1, timeoutSeconds: 2, toBackend: true } }),
        ),
      ],
    }),
    { sweepIntervalMs: 50 },
  );
});

afterEach(async () => {
  for (const t of open) await closeRawTunnel(t);
  open = [];
  await converge(() => gw.gateway.registry.size === 0, 'every tunnel ended');
});

after(async () => {
  await stopGateway(gw);
  await raw.close();
});

async function tunnel(path: string, extensions?: string): Promise<RawTunnel> {
  const t = await openRawTunnel(gw.http.port, raw, { path, ...(extensions ? { extensions } : {}) });
  open.push(t);
  return t;
}

const trackers = (): { live: number; parked: number } => gw.gateway.registry.frameTrackers();
const dataFrames = (c: Collector): Frame[] => c.frames().filter((f) => f.opcode < Opcode.CLOSE);
const closeCode = (c: Collector): number | undefined => c.frames().find((f) => f.opcode === Opcode.CLOSE)?.payload.readUInt16BE(0);

/** One message each way, so that both trackers exist, then both parked. */
async function exchangeThenPark(t: RawTunnel): Promise<void> {
  const up = dataFrames(t.atBackend).length;
  const down = dataFrames(t.atClient).length;
  t.client.write(encodeFrame(Opcode.TEXT, 'up', true));
  t.backend.write(encodeFrame(Opcode.TEXT, 'down', false));
  await t.atBackend.until((c) => dataFrames(c).length > up, 'a message at the backend');
  await t.atClient.until((c) => dataFrames(c).length > down, 'a message at the client');
  await converge(() => trackers().parked === 2, 'both trackers parked');
}

describe('frame trackers of a quiet tunnel are parked', { timeout: 30_000 }, () => {
  test('a tracker inside a message is kept; both are parked once the message has ended and the tunnel is quiet', async () => {
    const t = await tunnel('/plain');
    t.client.write(encodeFrame(Opcode.TEXT, 'first fragment', true, false));
    t.backend.write(encodeFrame(Opcode.TEXT, 'down', false));
    await t.atBackend.until((c) => c.frames().length === 1, 'the first fragment at the backend');
    await t.atClient.until((c) => c.frames().length === 1, 'the message at the client');
    // Many sweeps later the client → backend tracker is still there: it knows a message is open.
    await converge(() => trackers().live === 1 && trackers().parked === 1, 'the tracker inside a message kept, the other parked', 5);
    // The continuation is accepted (a tracker made afresh would have refused it: unexpected_continuation, 1002).
    t.client.write(encodeFrame(Opcode.CONTINUATION, 'last fragment', true, true));
    await t.atBackend.until((c) => c.frames().length === 2, 'the last fragment at the backend');
    await converge(() => trackers().parked === 2, 'both parked after the message');
    // Parked trackers come back with the next bytes, and relay them unchanged.
    t.client.write(encodeFrame(Opcode.BINARY, Buffer.from([1, 2, 3]), true));
    t.backend.write(encodeFrame(Opcode.BINARY, Buffer.from([4, 5, 6]), false));
    await t.atBackend.until((c) => c.frames().length === 3, 'a message after parking');
    await t.atClient.until((c) => c.frames().length === 2, 'a message after parking');
    assert.deepEqual(
      t.atBackend.frames().map((f) => [f.opcode, f.fin, f.payload.toString('hex')]),
      [
        [Opcode.TEXT, false, Buffer.from('first fragment').toString('hex')],
        [Opcode.CONTINUATION, true, Buffer.from('last fragment').toString('hex')],
        [Opcode.BINARY, true, '010203'],
      ],
    );
    assert.deepEqual(t.atClient.frames().map((f) => [f.opcode, f.payload.toString('hex')]), [[Opcode.TEXT, Buffer.from('down').toString('hex')], [Opcode.BINARY, '040506']]);
    assert.equal(await gw.metric('wsgate_ws_protocol_errors_total', { route: 'default/plain' }), 0);
  });

  test('after parking, a message over maxMessageBytes still gets 1009', async () => {
    const t = await tunnel('/limits');
    await exchangeThenPark(t);
    t.client.write(encodeFrame(Opcode.BINARY, Buffer.alloc(1001, 7), true));
    await t.atClient.until((c) => closeCode(c) !== undefined, 'a close frame at the client');
    assert.equal(closeCode(t.atClient), 1009);
    assert.equal(dataFrames(t.atBackend).length, 1, 'none of the message over the limit reached the backend');
  });

  test('after parking, a client over maxMessagesPerSecond still gets 1008', async () => {
    const t = await tunnel('/limits');
    await exchangeThenPark(t);
    // The bucket holds 3; one was taken by the exchange. Ten at once cannot all have a token.
    t.client.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => encodeFrame(Opcode.TEXT, `m${i}`, true))));
    await t.atClient.until((c) => closeCode(c) !== undefined, 'a close frame at the client');
    assert.equal(closeCode(t.atClient), 1008);
    assert.ok(dataFrames(t.atBackend).length <= 4, `${dataFrames(t.atBackend).length} messages passed a bucket of 3`);
  });

  test('after parking, the RSV1 bit permessage-deflate negotiated is still allowed', async () => {
    const t = await tunnel('/plain', 'permessage-deflate');
    await exchangeThenPark(t);
    const compressed = encodeFrame(Opcode.TEXT, Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), true);
    compressed[0]! |= 0x40; // RSV1: a compressed message
    t.client.write(compressed);
    await t.atBackend.until((c) => dataFrames(c).length === 2, 'the compressed message at the backend');
    assert.ok(t.atBackend.bytes().subarray(-compressed.length).equals(compressed), 'relayed unchanged');
    assert.equal(closeCode(t.atClient), undefined);
  });

  test("after parking, the pongs answering wsgate's keepalive pings are still swallowed, both ways", async () => {
    const t = await tunnel('/keepalive');
    await exchangeThenPark(t);
    const isPing = (f: Frame): boolean => f.opcode === Opcode.PING;
    await t.atClient.until((c) => c.frames().some(isPing), "wsgate's ping at the client");
    await t.atBackend.until((c) => c.frames().some(isPing), "wsgate's ping at the backend");
    t.client.write(encodeFrame(Opcode.PONG, t.atClient.frames().find(isPing)!.payload, true));
    t.backend.write(encodeFrame(Opcode.PONG, t.atBackend.frames().find(isPing)!.payload, false));
    // A message each way after the pongs: what arrives before it is all that was relayed.
    t.client.write(encodeFrame(Opcode.TEXT, 'after the pong', true));
    t.backend.write(encodeFrame(Opcode.TEXT, 'after the pong', false));
    await t.atBackend.until((c) => dataFrames(c).length === 2, 'the message after the pong at the backend');
    await t.atClient.until((c) => dataFrames(c).length === 2, 'the message after the pong at the client');
    assert.deepEqual(t.atBackend.frames().filter((f) => f.opcode === Opcode.PONG), [], 'the backend never sees the client answering wsgate');
    assert.deepEqual(t.atClient.frames().filter((f) => f.opcode === Opcode.PONG), [], 'the client never sees the backend answering wsgate');
  });
});
