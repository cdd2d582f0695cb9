// Keepalive seen byte by byte (issue 10), between raw peers through a real gateway (interval 1 s, timeout 2 s):
// what wsgate sends a quiet side (a ping, unmasked toward the client, masked toward the backend), where (only at
// frame boundaries, possibly between the fragments of a message), which pongs it swallows (those that answer its
// own pings, however late) and which it passes (the endpoints' own), and that a side busy receiving one long
// message is not taken for dead. Interop with real implementations: ws-keepalive.interop.test.ts, ws-chromium;
// dead peers: ws-dead-peer.test.ts.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { Opcode } from '../../src/proxy/ws-frames.ts';
import { catchAll } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, encodeFrame, startRawBackend, stopGateway, type Frame, type RawBackend } from '../helpers/l7-peers.ts';
import { closeRawTunnel, openRawTunnel, type Collector, type RawTunnel } from '../helpers/raw-tunnel.ts';

const ROUTE = 'default/keepalive';
const KEEPALIVE = { intervalSeconds: 1, timeoutSeconds: 2, toBackend: true };
/** Long enough for a ping and a dead-peer verdict if wsgate wanted to give one: interval + timeout + 2 sweeps. */
const VERDICT_MS = (KEEPALIVE.intervalSeconds + KEEPALIVE.timeoutSeconds + 2) * 1000;

let gw: TestGateway;
let raw: RawBackend;
let open: RawTunnel[] = [];

before(async () => {
  raw = await startRawBackend();
  gw = await startGateway(catchAll([raw.port], { keepalive: KEEPALIVE }, ROUTE));
});

// Each test's tunnels end with it: a raw peer that stops answering would otherwise be found dead during the next.
afterEach(async () => {
  for (const t of open) await closeRawTunnel(t);
  open = [];
});

after(async () => {
  await stopGateway(gw);
  await raw.close();
});

/**
 * A raw tunnel; unless told otherwise its backend answers wsgate's pings (as any WebSocket server does), so that
 * the tests about the client are not cut short by a backend found dead.
 */
async function tunnel(o: { backendAnswers?: boolean } = {}): Promise<RawTunnel> {
  const t = await openRawTunnel(gw.http.port, raw);
  open.push(t);
  if (o.backendAnswers ?? true) {
    let answered = 0;
    t.backend.on('data', () => {
      const pings = t.atBackend.frames().filter(isPing);
      for (; answered < pings.length; answered++) t.backend.write(encodeFrame(Opcode.PONG, pings[answered]!.payload, false));
    });
  }
  return t;
}

const isPing = (f: Frame): boolean => f.opcode === Opcode.PING;
const isPong = (f: Frame): boolean => f.opcode === Opcode.PONG;

/** Waits (bounded) for the n-th ping at a raw peer; returns it with the raw bytes of its header. */
async function nthPing(at: Collector, n: number, who: string): Promise<Frame> {
  await Promise.race([
    at.until((c) => c.frames().filter(isPing).length >= n, `ping ${n} at the ${who}`),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ping ${n} at the ${who} in ${VERDICT_MS} ms`)), VERDICT_MS * n).unref()),
  ]);
  return at.frames().filter(isPing)[n - 1]!;
}

/** The raw bytes of the n-th frame that `pred` selects, as received (to see the mask bit and the key). */
function rawFrameBytes(at: Collector, pred: (f: Frame) => boolean, n = 1): Buffer {
  let buf = at.bytes();
  let seen = 0;
  for (;;) {
    const f = decodeOne(buf);
    if (pred(f)) seen++;
    if (seen === n) return buf.subarray(0, f.size);
    buf = buf.subarray(f.size);
  }
}

function decodeOne(buf: Buffer): Frame {
  const len7 = buf[1]! & 0x7f;
  const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  const masked = (buf[1]! & 0x80) !== 0;
  const len = ext === 0 ? len7 : ext === 2 ? buf.readUInt16BE(2) : Number(buf.readBigUInt64BE(2));
  const size = 2 + ext + (masked ? 4 : 0) + len;
  return { fin: (buf[0]! & 0x80) !== 0, opcode: buf[0]! & 0x0f, payload: Buffer.alloc(0), size };
}

const counted = (direction: string, kind: string): Promise<number> => gw.metric('wsgate_ws_frames_total', { route: ROUTE, direction, kind });

describe('keepalive between raw peers', { timeout: 60_000 }, () => {
  test('pings a quiet client unmasked and a quiet backend masked, and swallows the pongs that answer them', async () => {
    const pingsDown0 = await counted('downstream', 'ping');
    const pingsUp0 = await counted('upstream', 'ping');
    const t = await tunnel({ backendAnswers: false });
    const [toClient, toBackend] = await Promise.all([nthPing(t.atClient, 1, 'client'), nthPing(t.atBackend, 1, 'backend')]);
    // RFC 6455 §5.1: a server never masks, a client always does; wsgate is the server of one and the client of the other.
    const clientBytes = rawFrameBytes(t.atClient, isPing);
    const backendBytes = rawFrameBytes(t.atBackend, isPing);
    assert.equal(clientBytes[0], 0x89, 'FIN + ping');
    assert.equal(clientBytes[1]! & 0x80, 0, 'toward the client: unmasked');
    assert.equal(backendBytes[1]! & 0x80, 0x80, 'toward the backend: masked');
    assert.equal(toClient.payload.length, 5);
    assert.equal(toClient.payload[0], 0x77, "wsgate's ping payload starts with 'w'");
    assert.equal(toBackend.payload[0], 0x77);

    t.client.write(encodeFrame(Opcode.PONG, toClient.payload, true));
    t.backend.write(encodeFrame(Opcode.PONG, toBackend.payload, false));
    // Both pongs reach wsgate and are counted; a data frame each way, sent after them, shows they were not relayed.
    t.client.write(encodeFrame(Opcode.TEXT, 'after the pong', true));
    t.backend.write(encodeFrame(Opcode.TEXT, 'after the pong', false));
    await t.atBackend.until((c) => c.frames().some((f) => f.opcode === Opcode.TEXT), 'the text at the backend');
    await t.atClient.until((c) => c.frames().some((f) => f.opcode === Opcode.TEXT), 'the text at the client');
    assert.deepEqual(t.atBackend.frames().filter(isPong), [], 'the backend never sees the client answering wsgate');
    assert.deepEqual(t.atClient.frames().filter(isPong), [], 'the client never sees the backend answering wsgate');
    // wsgate's own pings are frames on the wire too: counted in the direction they travel.
    await converge(async () => (await counted('downstream', 'ping')) > pingsDown0 && (await counted('upstream', 'ping')) > pingsUp0, 'pings counted', 2);
    assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route: ROUTE }), 0);
  });

  test("passes the endpoints' own pings and pongs, also while one of wsgate's pings is unanswered", async () => {
    const t = await tunnel();
    await nthPing(t.atClient, 1, 'client');
    // wsgate waits for its pong; the client's own ping and pong (other payloads) are not it.
    t.client.write(Buffer.concat([encodeFrame(Opcode.PING, 'client ping', true), encodeFrame(Opcode.PONG, 'client pong', true)]));
    t.backend.write(Buffer.concat([encodeFrame(Opcode.PING, 'backend ping', false), encodeFrame(Opcode.PONG, 'backend pong', false)]));
    const notWsgates = (f: Frame): boolean => f.opcode >= Opcode.PING && !(isPing(f) && f.payload[0] === 0x77);
    await t.atBackend.until((c) => c.frames().filter(notWsgates).length >= 2, 'the client ping and pong at the backend');
    await t.atClient.until((c) => c.frames().filter(isPong).length >= 1, 'the backend pong at the client');
    const atBackend = t.atBackend.frames().filter(notWsgates);
    assert.deepEqual(atBackend.map((f) => [f.opcode, f.payload.toString()]), [[Opcode.PING, 'client ping'], [Opcode.PONG, 'client pong']]);
    await t.atClient.until((c) => c.frames().some((f) => isPing(f) && f.payload.toString() === 'backend ping'), 'the backend ping at the client');
    assert.deepEqual(t.atClient.frames().filter(isPong).map((f) => f.payload.toString()), ['backend pong']);
  });

  test('swallows a pong that answers its ping after the client sent other frames', async () => {
    const t = await tunnel();
    const ping = await nthPing(t.atClient, 1, 'client');
    // The client speaks first, and answers only after a sweep has seen it speak (the data frame counted).
    const data0 = await counted('upstream', 'data');
    t.client.write(encodeFrame(Opcode.TEXT, 'busy', true));
    await converge(async () => (await counted('upstream', 'data')) > data0, 'a sweep saw the client speak', 1);
    t.client.write(encodeFrame(Opcode.PONG, ping.payload, true));
    t.client.write(encodeFrame(Opcode.TEXT, 'done', true));
    await t.atBackend.until((c) => c.frames().filter((f) => f.opcode === Opcode.TEXT).length >= 2, 'both texts at the backend');
    assert.deepEqual(t.atBackend.frames().filter(isPong).map((f) => f.payload.toString('hex')), [], 'a late pong for wsgate reached the backend');
  });

  test('swallows the pongs of two of its pings answered late, after the second ping', async () => {
    const t = await tunnel();
    const first = await nthPing(t.atClient, 1, 'client');
    // The client speaks instead of answering (which keeps it alive), then is quiet again: a second ping.
    t.client.write(encodeFrame(Opcode.TEXT, 'busy', true));
    const second = await nthPing(t.atClient, 2, 'client');
    // RFC 6455 §5.5.3 allows answering only the latest ping; a slow client may answer both, late.
    t.client.write(Buffer.concat([encodeFrame(Opcode.PONG, first.payload, true), encodeFrame(Opcode.PONG, second.payload, true)]));
    t.client.write(encodeFrame(Opcode.TEXT, 'done', true));
    await t.atBackend.until((c) => c.frames().filter((f) => f.opcode === Opcode.TEXT).length >= 2, 'both texts at the backend');
    assert.deepEqual(t.atBackend.frames().filter(isPong).map((f) => f.payload.toString('hex')), [], "pongs answering wsgate's pings reached the backend");
    assert.equal(t.atClient.ended, false);
  });

  test('injects its ping toward the client between the fragments of a message, never inside a frame', async () => {
    const t = await tunnel();
    // The backend starts a fragmented message and keeps the client waiting for the rest; the client is quiet.
    const first = encodeFrame(Opcode.TEXT, 'first fragment', false, false);
    t.backend.write(first);
    await nthPing(t.atClient, 1, 'client');
    const last = encodeFrame(Opcode.CONTINUATION, 'last fragment', false, true);
    t.backend.write(last);
    await t.atClient.until((c) => c.frames().some((f) => f.opcode === Opcode.CONTINUATION), 'the last fragment');
    const frames = t.atClient.frames();
    assert.deepEqual(frames.map((f) => f.opcode), [Opcode.TEXT, Opcode.PING, Opcode.CONTINUATION]);
    assert.ok(t.atClient.bytes().subarray(0, first.length).equals(first), 'the first fragment is relayed intact');
    assert.ok(t.atClient.bytes().subarray(t.atClient.length - last.length).equals(last), 'the last fragment is relayed intact');
  });

  test('does not take a client that is receiving one long message for dead: its ping waits for the frame to end', async () => {
    const t = await tunnel();
    // One 60,000-byte frame from the backend, dribbled out over longer than interval + timeout + sweeps; the client
    // reads it all (its kernel acknowledges) but has nothing to say, and wsgate cannot ping it inside the frame.
    const payload = Buffer.alloc(60_000, 0x61);
    const whole = encodeFrame(Opcode.BINARY, payload, false);
    const pieces = 30;
    const step = Math.ceil(whole.length / pieces);
    const startedAt = performance.now();
    for (let i = 0; i < pieces; i++) {
      t.backend.write(whole.subarray(i * step, (i + 1) * step));
      await new Promise((r) => setTimeout(r, Math.ceil((VERDICT_MS + 1000) / pieces)));
      assert.equal(t.atClient.ended, false, `the client was cut off ${Math.round(performance.now() - startedAt)} ms into the message`);
    }
    await t.atClient.until((c) => c.length >= whole.length, 'the whole message');
    assert.ok(t.atClient.bytes().subarray(0, whole.length).equals(whole));
    // Then the ping goes, and the tunnel lives on.
    const ping = await nthPing(t.atClient, 1, 'client');
    t.client.write(encodeFrame(Opcode.PONG, ping.payload, true));
    assert.deepEqual(t.atClient.frames().filter((f) => f.opcode === Opcode.CLOSE), [], 'no close frame');
    assert.equal(t.atClient.ended, false);
  });
});
