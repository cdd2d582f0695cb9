// Properties of the frame tracker over random valid frame streams cut at random places (down to 1-byte chunks),
// and fuzzing with random and mutated bytes. Seeded (test/helpers/prng.ts): a failure names the seed to replay.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FrameTracker, Opcode, RSV1, StopOn, type Failure } from '../../src/proxy/ws-frames.ts';
import { prng } from '../helpers/prng.ts';
import { closePayload, cut, encodeFrame, relay, type FrameSpec } from './testdata/ws-frame-streams.ts';

const OWN_PONG = Buffer.from('wsgate-ka');

interface Stream {
  fromClient: boolean;
  deflate: boolean;
  frames: FrameSpec[];
  bytes: Buffer;
  /** Offsets in `bytes` where a frame starts or the stream ends. */
  boundaries: Set<number>;
}

/** Lengths around the edges of the three length forms, and small ones most of the time. */
function dataLength(rand: () => number): number {
  const r = rand();
  if (r < 0.02) return [65535, 65536, 65537][Math.floor(rand() * 3)]!;
  if (r < 0.2) return [0, 1, 124, 125, 126, 127, 128][Math.floor(rand() * 7)]!;
  return Math.floor(rand() * 300);
}

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

function controlSpec(rand: () => number, masked: boolean): FrameSpec {
  const key = (): [number, number, number, number] => [0, 0, 0, 0].map(() => Math.floor(rand() * 256)) as [number, number, number, number];
  const r = rand();
  if (r < 0.15) return { opcode: Opcode.PONG, masked, key: key(), payload: OWN_PONG };
  const opcode = r < 0.6 ? Opcode.PING : Opcode.PONG;
  const n = rand() < 0.2 ? 125 : Math.floor(rand() * 20);
  return { opcode, masked, key: key(), payload: randomBytes(rand, n) };
}

/** A valid stream: messages of 1–4 fragments with control frames between them, maybe a close at the end. */
function randomStream(rand: () => number): Stream {
  const fromClient = rand() < 0.5;
  const deflate = rand() < 0.5;
  const frames: FrameSpec[] = [];
  const key = (): [number, number, number, number] => [0, 0, 0, 0].map(() => Math.floor(rand() * 256)) as [number, number, number, number];
  const messages = 1 + Math.floor(rand() * 8);
  for (let m = 0; m < messages; m++) {
    const fragments = 1 + Math.floor(rand() * (rand() < 0.5 ? 1 : 4));
    const opcode = rand() < 0.5 ? Opcode.TEXT : Opcode.BINARY;
    for (let f = 0; f < fragments; f++) {
      while (rand() < 0.25) frames.push(controlSpec(rand, fromClient));
      const n = dataLength(rand);
      frames.push({
        opcode: f === 0 ? opcode : Opcode.CONTINUATION,
        fin: f === fragments - 1,
        rsv: f === 0 && deflate && rand() < 0.5 ? RSV1 : 0,
        masked: fromClient,
        key: key(),
        payload: Buffer.alloc(n, 0x5a),
      });
    }
  }
  if (rand() < 0.3) {
    const code = [1000, 1001, 1008, 1011, 3000, 4999][Math.floor(rand() * 6)]!;
    frames.push({ opcode: Opcode.CLOSE, masked: fromClient, key: key(), payload: closePayload(code, rand() < 0.5 ? 'bye ✓' : '') });
  }
  const encoded = frames.map(encodeFrame);
  const boundaries = new Set<number>([0]);
  let at = 0;
  for (const e of encoded) boundaries.add((at += e.length));
  return { fromClient, deflate, frames, bytes: Buffer.concat(encoded), boundaries };
}

const MAX_CHUNKS = [1, 2, 3, 7, 13, 64, 1000, 70000];
const STREAMS = 150;

describe('frame tracker properties over valid streams', () => {
  test(`${STREAMS} random streams, each under ${MAX_CHUNKS.length} cuttings: same frames, same counts, same bytes`, () => {
    for (let s = 0; s < STREAMS; s++) {
      const seed = 0xf7a3e + s;
      const rand = prng(seed);
      const stream = randomStream(rand);
      const where = `seed ${seed}`;
      const make = (): FrameTracker => new FrameTracker({ fromClient: stream.fromClient, allowedRsv: stream.deflate ? RSV1 : 0 });
      const expectedHeaders = stream.frames.map((f) => ({
        opcode: f.opcode,
        fin: f.fin ?? true,
        rsv: f.rsv ?? 0,
        length: f.payload?.length ?? 0,
      }));
      const controls = stream.frames.filter((f) => f.opcode >= Opcode.CLOSE);
      const expectedControls = controls.map((f) => ({ opcode: f.opcode, payload: f.payload ?? Buffer.alloc(0) }));
      const close = stream.frames.find((f) => f.opcode === Opcode.CLOSE);
      const dataFrames = stream.frames.filter((f) => f.opcode < Opcode.CLOSE);
      const counts = {
        messages: dataFrames.filter((f) => f.fin ?? true).length,
        dataFrames: dataFrames.length,
        pings: controls.filter((f) => f.opcode === Opcode.PING).length,
        pongs: controls.filter((f) => f.opcode === Opcode.PONG).length,
        closes: close === undefined ? 0 : 1,
      };
      const withoutOwnPongs = Buffer.concat(
        stream.frames.filter((f) => !(f.opcode === Opcode.PONG && f.payload === OWN_PONG)).map(encodeFrame),
      );

      for (const maxChunk of MAX_CHUNKS) {
        const chunks = cut(stream.bytes, rand, maxChunk);
        const label = `${where}, chunks ≤ ${maxChunk}`;

        // Plain tracking: counters only, every byte relayed, boundaries where the frames are.
        const plain = make();
        const r = relay(plain, chunks, {
          pause: () => rand() < 0.2,
          afterChunk: (written, atBoundary) => {
            if (atBoundary !== stream.boundaries.has(written)) assert.fail(`${label}: atFrameBoundary ${atBoundary} after ${written} bytes`);
          },
        });
        assert.equal(r.failure, null, label);
        assert.ok(r.out.equals(stream.bytes), `${label}: relayed bytes differ from the input`);
        const got = { messages: plain.messages, dataFrames: plain.dataFrames, pings: plain.pings, pongs: plain.pongs, closes: plain.closes };
        assert.deepEqual(got, counts, label);
        if (close !== undefined) {
          assert.equal(plain.closeCode, close.payload!.readUInt16BE(0), label);
          assert.equal(plain.closeReason, close.payload!.subarray(2).toString(), label);
        }
        for (const p of r.pauses) assert.ok(stream.boundaries.has(p), `${label}: paused at ${p}, not a frame boundary`);

        // Full reporting: every header and control payload, own pongs dropped.
        const full = make();
        full.stopOn = StopOn.HEADERS | StopOn.PING | StopOn.PONG | StopOn.CLOSE;
        const rf = relay(full, chunks, { drop: (op, payload) => op === Opcode.PONG && payload.equals(OWN_PONG) });
        assert.equal(rf.failure, null, label);
        assert.deepEqual(rf.headers, expectedHeaders, label);
        assert.deepEqual(rf.controls, expectedControls, label);
        assert.ok(rf.out.equals(withoutOwnPongs), `${label}: output after dropping own pongs`);
      }
    }
  });
});

// ── fuzz ───────────────────────────────────────────────────────────────────────────────────────────────────
const FAILURES: readonly (Failure | null)[] = [
  null, 'rsv_bits', 'reserved_opcode', 'unexpected_continuation', 'expected_continuation', 'fragmented_control_frame',
  'control_frame_too_long', 'unmasked_client_frame', 'masked_server_frame', 'bad_close_payload', 'bad_close_code',
  'bad_close_reason', 'message_too_big', 'unsupported_payload_length',
];

/** Feeds `data` whole and in random chunks; both must agree, end in a known state, and keep the bytes. */
function fuzzOne(data: Buffer, rand: () => number, label: string): Failure | null {
  const opts = { fromClient: rand() < 0.5, allowedRsv: rand() < 0.5 ? RSV1 : 0, maxMessageBytes: rand() < 0.3 ? Math.floor(rand() * 500) : 0 };
  const stopOn = rand() < 0.5 ? StopOn.HEADERS | StopOn.PONG | StopOn.PING | StopOn.CLOSE : 0;
  const run = (chunks: Buffer[], lenient: boolean) => {
    const t = new FrameTracker(opts);
    t.stopOn = stopOn;
    return relay(t, chunks, { lenient });
  };
  const whole = run([data], false);
  const pieces = run(cut(data, rand, 1 + Math.floor(rand() * 40)), false);
  assert.ok(FAILURES.includes(whole.failure), `${label}: ${whole.failure}`);
  assert.equal(pieces.failure, whole.failure, `${label}: the failure depends on the cutting`);
  assert.equal(pieces.failedAt, whole.failedAt, `${label}: where it fails depends on the cutting`);
  assert.ok(pieces.out.equals(whole.out), `${label}: output depends on the cutting`);
  if (whole.failure === null) {
    // Everything is relayed but an incomplete header or control frame at the end, which stays held.
    assert.ok(whole.out.equals(data.subarray(0, whole.out.length)), label);
    assert.ok(data.length - whole.out.length <= 130, `${label}: ${data.length - whole.out.length} bytes held`);
  } else assert.ok(whole.out.equals(data.subarray(0, whole.failedAt)), `${label}: a failed frame was partly relayed`);
  const lenient = run(cut(data, rand, 1 + Math.floor(rand() * 40)), true);
  assert.ok(lenient.out.equals(whole.failure === null ? whole.out : data), `${label}: a lenient relay passes every byte`);
  return whole.failure;
}

describe('frame tracker fuzz', () => {
  test('10,000 random byte strings never throw or loop, and end in ok or one failure', () => {
    const rand = prng(0xbadf00d);
    for (let i = 0; i < 10000; i++) {
      const n = Math.floor(rand() * 200);
      // Bias the first byte towards real opcodes and FIN so parsing goes past the first header sometimes.
      const data = randomBytes(rand, n);
      if (n > 0 && rand() < 0.7) data[0] = (data[0]! & 0x8f) | (rand() < 0.5 ? 0x80 : 0);
      fuzzOne(data, rand, `random #${i}`);
    }
  });

  test('10,000 mutated valid streams never throw or loop, and end in ok or one failure', () => {
    const rand = prng(0x5eed5);
    const seen = new Set<Failure | null>();
    const bases = Array.from({ length: 200 }, (_, i) => randomStream(prng(i)).bytes.subarray(0, 3000));
    for (let i = 0; i < 10000; i++) {
      const data = Buffer.from(bases[i % bases.length]!);
      const mutations = 1 + Math.floor(rand() * 3);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(rand() * data.length);
        if (rand() < 0.5) data[at] = data[at]! ^ (1 << Math.floor(rand() * 8));
        else data[at] = Math.floor(rand() * 256);
      }
      seen.add(fuzzOne(data, rand, `mutated #${i}`));
    }
    // The mutations must reach most failure kinds, or this fuzz says little.
    assert.ok(seen.size >= 8, `failures seen: ${[...seen].join(', ')}`);
  });
});
