// The frame-aware relay through a real gateway (issue 10, "Tests (real peers)"): random valid frame streams — every
// opcode, fragmented messages with control frames between the fragments, lengths at the 125/126 and 65535/65536
// edges of the length forms, RSV1 when permessage-deflate was negotiated in the 101 — written by a raw client and by
// a raw backend at the same time, in random chunks down to one byte (cut most densely around frame headers). The
// other side must receive exactly the bytes sent: wsgate tracks the frames but changes nothing. wsgate's own pings
// are off here (keepalive intervalSeconds 0); what it injects is tested in ws-keepalive, ws-limits, ws-violations.
// Then fuzz: random and mutated byte streams never crash wsgate, and the peer gets a prefix of them, followed at most
// by wsgate's 1001 close when they broke the protocol. Seeded (test/helpers/prng.ts): a failure names the seed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Opcode, RSV1 } from '../../src/proxy/ws-frames.ts';
import { catchAll } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, startRawBackend, stopGateway, type RawBackend } from '../helpers/l7-peers.ts';
import { prng } from '../helpers/prng.ts';
import { closeRawTunnel, openRawTunnel, writeChunks } from '../helpers/raw-tunnel.ts';
import { closePayload, encodeFrame, type FrameSpec } from './testdata/ws-frame-streams.ts';

const ROUTE = 'default/relay-property';
/** Tunnels, each carrying one random stream each way; half of them negotiate permessage-deflate. */
const TUNNELS = 12;

let gw: TestGateway;
let raw: RawBackend;

before(async () => {
  raw = await startRawBackend();
  gw = await startGateway(catchAll([raw.port], { keepalive: { intervalSeconds: 0, timeoutSeconds: 30, toBackend: false } }, ROUTE));
});

after(async () => {
  await stopGateway(gw);
  await raw.close();
});

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

function bytes(rand: Rand, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** Mostly small lengths; often the edges of the 7-bit, 16-bit and 64-bit forms. */
function dataLength(rand: Rand): number {
  const r = rand();
  if (r < 0.08) return pick(rand, [65535, 65536, 65537]);
  if (r < 0.35) return pick(rand, [0, 1, 124, 125, 126, 127, 128, 65534]);
  return Math.floor(rand() * 400);
}

function key(rand: Rand): [number, number, number, number] {
  return [0, 0, 0, 0].map(() => Math.floor(rand() * 256)) as [number, number, number, number];
}

function control(rand: Rand, masked: boolean): FrameSpec {
  const opcode = rand() < 0.5 ? Opcode.PING : Opcode.PONG;
  // 125 is the largest control payload; 'w' + 4 bytes looks like wsgate's own ping payload, which must pass here
  // (wsgate has no ping outstanding: a pong is swallowed only when it answers wsgate's own ping).
  const payload = rand() < 0.2 ? bytes(rand, 125) : rand() < 0.2 ? Buffer.from([0x77, 0, 0, 0, 1]) : bytes(rand, Math.floor(rand() * 20));
  return { opcode, masked, key: key(rand), payload };
}

/** A valid stream: messages of 1-5 fragments, control frames before and between fragments, maybe a close last. */
function randomStream(rand: Rand, fromClient: boolean, deflate: boolean): { frames: FrameSpec[]; bytes: Buffer } {
  const frames: FrameSpec[] = [];
  const messages = 2 + Math.floor(rand() * 8);
  for (let m = 0; m < messages; m++) {
    const fragments = rand() < 0.5 ? 1 : 2 + Math.floor(rand() * 4);
    const opcode = rand() < 0.5 ? Opcode.TEXT : Opcode.BINARY;
    for (let f = 0; f < fragments; f++) {
      while (rand() < 0.3) frames.push(control(rand, fromClient));
      frames.push({
        opcode: f === 0 ? opcode : Opcode.CONTINUATION,
        fin: f === fragments - 1,
        // RFC 7692: RSV1 on the first frame of a compressed message only. The payload is not really deflated:
        // wsgate never looks inside, and the receiving raw peer does not inflate.
        rsv: f === 0 && deflate && rand() < 0.6 ? RSV1 : 0,
        masked: fromClient,
        key: key(rand),
        payload: bytes(rand, dataLength(rand)),
      });
    }
  }
  if (rand() < 0.5) {
    const code = pick(rand, [1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999]);
    frames.push({ opcode: Opcode.CLOSE, masked: fromClient, key: key(rand), payload: closePayload(code, rand() < 0.5 ? 'bye ✓' : '') });
  }
  return { frames, bytes: Buffer.concat(frames.map(encodeFrame)) };
}

/**
 * Cuts a stream into chunks: around every frame start, one cut per byte through the longest header (14 bytes)
 * with high probability, so that headers arrive a byte at a time; elsewhere a cut every 1..70,000 bytes.
 */
function cutStream(rand: Rand, frames: FrameSpec[], data: Buffer): Buffer[] {
  const cuts = new Set<number>();
  let at = 0;
  for (const f of frames) {
    const dense = rand() < 0.7;
    for (let k = 1; k <= 14; k++) if (dense && rand() < 0.8) cuts.add(at + k);
    at += encodeFrame(f).length;
    cuts.add(at);
  }
  for (let p = 0; p < data.length; ) {
    p += 1 + Math.floor(rand() * pick(rand, [3, 200, 70_000]));
    cuts.add(p);
  }
  const sorted = [...cuts].filter((c) => c > 0 && c < data.length).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...sorted, data.length]) {
    chunks.push(Buffer.from(data.subarray(prev, c)));
    prev = c;
  }
  return chunks;
}

describe('the frame-aware relay through wsgate, between raw peers', { timeout: 120_000 }, () => {
  test(`relays ${TUNNELS} random valid streams each way unchanged, cut down to 1-byte writes`, async () => {
    const expected = new Map<string, number>();
    const count = (direction: string, frames: FrameSpec[]): void => {
      for (const f of frames) {
        const kind = f.opcode === Opcode.PING ? 'ping' : f.opcode === Opcode.PONG ? 'pong' : f.opcode === Opcode.CLOSE ? 'close' : 'data';
        expected.set(`${direction} ${kind}`, (expected.get(`${direction} ${kind}`) ?? 0) + 1);
        if (f.opcode < Opcode.CLOSE && (f.fin ?? true)) expected.set(`${direction} messages`, (expected.get(`${direction} messages`) ?? 0) + 1);
      }
    };
    for (let i = 0; i < TUNNELS; i++) {
      const seed = 0x10a0 + i;
      const rand = prng(seed);
      const deflate = i % 2 === 1;
      const up = randomStream(rand, true, deflate);
      const down = randomStream(rand, false, deflate);
      count('upstream', up.frames);
      count('downstream', down.frames);
      const t = await openRawTunnel(gw.http.port, raw, deflate ? { extensions: 'permessage-deflate' } : {});
      try {
        if (deflate) assert.match(t.requestHead, /^sec-websocket-extensions: permessage-deflate\r$/im);
        // Both directions at once, as real peers do.
        await Promise.all([
          writeChunks(t.client, cutStream(rand, up.frames, up.bytes)),
          writeChunks(t.backend, cutStream(rand, down.frames, down.bytes)),
          t.atBackend.until((c) => c.length >= up.bytes.length, `seed ${seed}: ${up.bytes.length} bytes at the backend`),
          t.atClient.until((c) => c.length >= down.bytes.length, `seed ${seed}: ${down.bytes.length} bytes at the client`),
        ]);
        assert.ok(t.atBackend.bytes().equals(up.bytes), `seed ${seed}: the backend received other bytes than the client sent`);
        assert.ok(t.atClient.bytes().equals(down.bytes), `seed ${seed}: the client received other bytes than the backend sent`);
        assert.equal(gw.gateway.registry.size, 1, `seed ${seed}: the tunnel is still open (nothing was refused)`);
      } finally {
        await closeRawTunnel(t);
      }
    }
    // The frames were tracked, not only relayed: every frame and message is counted (flushed when a tunnel ends).
    const counted = async (): Promise<Map<string, number>> => {
      const m = new Map<string, number>();
      for (const direction of ['upstream', 'downstream']) {
        for (const kind of ['data', 'ping', 'pong', 'close']) {
          const n = await gw.metric('wsgate_ws_frames_total', { route: ROUTE, direction, kind });
          if (n > 0) m.set(`${direction} ${kind}`, n);
        }
        m.set(`${direction} messages`, await gw.metric('wsgate_ws_messages_total', { route: ROUTE, direction }));
      }
      return m;
    };
    const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => a.localeCompare(b));
    await converge(() => gw.gateway.registry.size === 0, 'every tunnel ended');
    assert.deepEqual(sorted(await counted()), sorted(expected));
    assert.equal(await gw.metric('wsgate_ws_protocol_errors_total', { route: ROUTE }), 0, 'no violation seen in valid streams');
  });
});

/** The close frame wsgate sends the peer of a side that broke the protocol: 1001, no reason. */
function isGoingAway(frameBytes: Buffer, masked: boolean): boolean {
  if (frameBytes.length !== (masked ? 8 : 4) || frameBytes[0] !== 0x88 || frameBytes[1] !== (masked ? 0x82 : 0x02)) return false;
  const code = masked ? Buffer.from([frameBytes[6]! ^ frameBytes[2]!, frameBytes[7]! ^ frameBytes[3]!]) : frameBytes.subarray(2, 4);
  return code.readUInt16BE(0) === 1001;
}

describe('the frame-aware relay through wsgate, fuzzed', { timeout: 120_000 }, () => {
  const FUZZ = 40;
  test(`${FUZZ} random and mutated streams never crash it: the peer gets a prefix, then at most a 1001 close`, async () => {
    for (let i = 0; i < FUZZ; i++) {
      const seed = 0xf022 + i;
      const rand = prng(seed);
      const fromClient = i % 2 === 0;
      let data: Buffer;
      if (rand() < 0.3) {
        data = bytes(rand, Math.floor(rand() * 600));
        if (data.length > 0) data[0] = (data[0]! & 0x8f) | 0x80;
      } else {
        const valid = randomStream(rand, fromClient, false);
        data = Buffer.from(valid.bytes.subarray(0, 1 + Math.floor(rand() * Math.min(valid.bytes.length, 3000))));
        for (let m = 1 + Math.floor(rand() * 3); m > 0; m--) {
          const at = Math.floor(rand() * data.length);
          data[at] = rand() < 0.5 ? data[at]! ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
        }
      }
      const t = await openRawTunnel(gw.http.port, raw);
      try {
        const [sender, at] = fromClient ? [t.client, t.atBackend] : [t.backend, t.atClient];
        const chunks: Buffer[] = [];
        for (let p = 0; p < data.length; ) {
          const n = 1 + Math.floor(rand() * pick(rand, [1, 7, 64, 4096]));
          chunks.push(data.subarray(p, p + n));
          p += n;
        }
        await writeChunks(sender, chunks);
        // The sender's end (or wsgate's close) ends what the peer receives.
        if (!sender.destroyed) sender.end();
        await Promise.race([
          at.untilEnded(),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`seed ${seed}: the peer's stream never ended`)), 10_000).unref()),
        ]);
        const got = at.bytes();
        const prefix = (b: Buffer): boolean => b.length <= data.length && data.subarray(0, b.length).equals(b);
        const closeLength = fromClient ? 8 : 4;
        const ok = prefix(got) || (got.length >= closeLength && prefix(got.subarray(0, got.length - closeLength)) && isGoingAway(got.subarray(got.length - closeLength), fromClient));
        assert.ok(ok, `seed ${seed}: the ${fromClient ? 'backend' : 'client'} got ${got.length} bytes that are not a prefix of the ${data.length} sent (+ a 1001)`);
      } finally {
        await closeRawTunnel(t);
      }
    }
    // wsgate still serves.
    const t = await openRawTunnel(gw.http.port, raw);
    try {
      const frame = encodeFrame({ opcode: Opcode.TEXT, masked: true, payload: Buffer.from('still alive') });
      t.client.write(frame);
      await t.atBackend.until((c) => c.length >= frame.length, 'a frame after the fuzz');
      assert.ok(t.atBackend.bytes().equals(frame));
    } finally {
      await closeRawTunnel(t);
    }
  });
});
