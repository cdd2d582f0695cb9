// Table tests of the frame tracker (src/proxy/ws-frames.ts): every frame shape and length form, every violation
// and where the tracker stops for it, held bytes across chunks, the relay's requests (boundary, control, header
// stops), and the frames wsgate builds, checked by ws's own Receiver.
import assert from 'node:assert/strict';
import type { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import * as wsModule from 'ws';
import {
  FAILURE_CLOSE_CODES,
  FrameTracker,
  Opcode,
  RSV1,
  Stop,
  StopOn,
  closeFrame,
  controlFrame,
  isValidCloseCode,
  pingFrame,
  pongMatches,
  type FrameTrackerOptions,
} from '../../src/proxy/ws-frames.ts';
import { closePayload, encodeFrame, relay, type FrameSpec } from './testdata/ws-frame-streams.ts';

const client = (o: Partial<FrameTrackerOptions> = {}): FrameTracker => new FrameTracker({ fromClient: true, ...o });
const server = (o: Partial<FrameTrackerOptions> = {}): FrameTracker => new FrameTracker({ fromClient: false, ...o });
const text = (n: number, o: Partial<FrameSpec> = {}): FrameSpec => ({ opcode: Opcode.TEXT, masked: true, payload: Buffer.alloc(n, 0x61), ...o });
const bytes = (...frames: FrameSpec[]): Buffer => Buffer.concat(frames.map(encodeFrame));

/** Feeds `data` whole, then byte by byte, and checks both relays agree; returns the whole-chunk result. */
function feedBothWays(make: () => FrameTracker, data: Buffer) {
  const whole = relay(make(), [data]);
  const single = relay(make(), [...data].map((b) => Buffer.from([b])));
  assert.deepEqual(single.out, whole.out, 'byte-by-byte output differs');
  assert.equal(single.failure, whole.failure);
  return whole;
}

describe('frame shapes', () => {
  const lengths = [0, 1, 125, 126, 127, 65535, 65536, 70000];
  for (const n of lengths) {
    for (const fromClient of [true, false]) {
      test(`tracks a ${n}-byte ${fromClient ? 'masked client' : 'unmasked server'} binary frame in any cutting`, () => {
        const data = bytes({ opcode: Opcode.BINARY, masked: fromClient, payload: Buffer.alloc(n, 7) });
        const make = (): FrameTracker => {
          const t = new FrameTracker({ fromClient });
          t.stopOn = StopOn.HEADERS;
          return t;
        };
        const r = feedBothWays(make, data);
        assert.equal(r.failure, null);
        assert.deepEqual(r.out, data);
        assert.deepEqual(r.headers, [{ opcode: Opcode.BINARY, fin: true, rsv: 0, length: n }]);
        const t = new FrameTracker({ fromClient });
        assert.equal(t.push(data), data.length);
        assert.equal(t.stop, Stop.END);
        assert.equal(t.dataFrames, 1);
        assert.equal(t.messages, 1);
        assert.equal(t.messageBytes, n);
        assert.equal(t.atFrameBoundary, true);
      });
    }
  }

  test('accepts the 16-bit and 64-bit length forms for small lengths (non-minimal, as ws does)', () => {
    const data = bytes(text(5, { lengthForm: 16 }), text(5, { lengthForm: 64 }), text(0, { lengthForm: 64 }));
    const t = client();
    t.stopOn = StopOn.HEADERS;
    const r = relay(t, [data]);
    assert.equal(r.failure, null);
    assert.deepEqual(r.headers.map((h) => h.length), [5, 5, 0]);
    assert.deepEqual(r.out, data);
  });

  test('accepts a 64-bit length of exactly 2^53-1 and skips it arithmetically', () => {
    const t = server();
    const head = encodeFrame({ opcode: Opcode.BINARY, masked: false, announce: Number.MAX_SAFE_INTEGER });
    assert.equal(t.push(head), head.length);
    assert.equal(t.failure, null);
    assert.equal(t.payloadLength, Number.MAX_SAFE_INTEGER);
    const chunk = Buffer.alloc(16384);
    for (let i = 0; i < 100; i++) assert.equal(t.push(chunk), chunk.length);
    assert.equal(t.atFrameBoundary, false);
  });

  test('counts a fragmented message once, and control frames between its fragments', () => {
    const data = bytes(
      text(3, { fin: false }),
      { opcode: Opcode.PING, masked: true, payload: Buffer.from('p') },
      { opcode: Opcode.CONTINUATION, masked: true, fin: false, payload: Buffer.alloc(200) },
      { opcode: Opcode.PONG, masked: true },
      { opcode: Opcode.CONTINUATION, masked: true, payload: Buffer.alloc(1) },
      { opcode: Opcode.CLOSE, masked: true, payload: closePayload(1000, 'bye') },
    );
    const t = client();
    let inMessageAfterPing = false;
    t.stopOn = StopOn.PING;
    let off = 0;
    for (;;) {
      off = t.push(data, off);
      assert.equal(t.takeReleased(), null);
      if (t.stop === Stop.END) break;
      assert.equal(t.stop, Stop.CONTROL);
      inMessageAfterPing = t.inMessage;
    }
    assert.equal(off, data.length);
    assert.equal(inMessageAfterPing, true, 'a ping between fragments is inside the message');
    assert.deepEqual(
      { messages: t.messages, dataFrames: t.dataFrames, pings: t.pings, pongs: t.pongs, closes: t.closes },
      { messages: 1, dataFrames: 3, pings: 1, pongs: 1, closes: 1 },
    );
    assert.equal(t.messageBytes, 204);
    assert.equal(t.inMessage, false);
    assert.equal(t.closeCode, 1000);
    assert.equal(t.closeReason, 'bye');
  });

  test('reads a close without payload as 1005, and a close with only a code as that code', () => {
    const t = server();
    t.push(bytes({ opcode: Opcode.CLOSE, masked: false }));
    assert.deepEqual([t.closeCode, t.closeReason], [1005, '']);
    t.push(bytes({ opcode: Opcode.CLOSE, masked: false, payload: closePayload(4001) }));
    assert.deepEqual([t.closeCode, t.closeReason, t.closes], [4001, '', 2]);
  });

  test('accepts RSV1 on the first frame of a message when deflate is negotiated', () => {
    const data = bytes(text(10, { rsv: RSV1, fin: false }), { opcode: 0, masked: true, payload: Buffer.alloc(4) }, text(1, { rsv: RSV1 }));
    const t = client({ allowedRsv: RSV1 });
    assert.equal(t.push(data), data.length);
    assert.equal(t.failure, null);
    assert.equal(t.messages, 2);
  });
});

describe('violations: each stops the tracker at the start of the offending frame', () => {
  const before = text(4); // a valid frame first, so the stop offset is not trivially 0
  const cases: [string, () => FrameTracker, FrameSpec[], string][] = [
    ['RSV1 without an extension', client, [text(1, { rsv: 0x40 })], 'rsv_bits'],
    ['RSV2 with deflate negotiated', () => client({ allowedRsv: RSV1 }), [text(1, { rsv: 0x20 })], 'rsv_bits'],
    ['RSV3', client, [text(1, { rsv: 0x10 })], 'rsv_bits'],
    ['RSV1 on a continuation', () => client({ allowedRsv: RSV1 }), [text(1, { fin: false }), { opcode: 0, masked: true, rsv: RSV1 }], 'rsv_bits'],
    ['RSV1 on a ping', () => client({ allowedRsv: RSV1 }), [{ opcode: Opcode.PING, masked: true, rsv: RSV1 }], 'rsv_bits'],
    ['opcode 3', client, [{ opcode: 3, masked: true }], 'reserved_opcode'],
    ['opcode 7', client, [{ opcode: 7, masked: true }], 'reserved_opcode'],
    ['opcode 0xB', client, [{ opcode: 0xb, masked: true }], 'reserved_opcode'],
    ['opcode 0xF', client, [{ opcode: 0xf, masked: true }], 'reserved_opcode'],
    ['a continuation with no message open', client, [{ opcode: 0, masked: true }], 'unexpected_continuation'],
    ['a continuation after a complete message', client, [text(1), { opcode: 0, masked: true }], 'unexpected_continuation'],
    ['a new message while one is open', client, [text(1, { fin: false }), text(1)], 'expected_continuation'],
    ['a binary frame while a text message is open', client, [text(1, { fin: false }), { opcode: 2, masked: true }], 'expected_continuation'],
    ['a ping without FIN', client, [{ opcode: Opcode.PING, masked: true, fin: false }], 'fragmented_control_frame'],
    ['a close without FIN', client, [{ opcode: Opcode.CLOSE, masked: true, fin: false }], 'fragmented_control_frame'],
    ['a ping of 126 bytes', client, [{ opcode: Opcode.PING, masked: true, payload: Buffer.alloc(126) }], 'control_frame_too_long'],
    ['a pong in the 64-bit form', client, [{ opcode: Opcode.PONG, masked: true, payload: Buffer.alloc(3), lengthForm: 64 }], 'control_frame_too_long'],
    ['an unmasked client frame', client, [text(1, { masked: false })], 'unmasked_client_frame'],
    ['an unmasked client ping', client, [{ opcode: Opcode.PING, masked: false }], 'unmasked_client_frame'],
    ['a masked server frame', server, [text(1, { masked: true })], 'masked_server_frame'],
    ['a close with a 1-byte payload', client, [{ opcode: Opcode.CLOSE, masked: true, payload: Buffer.from([3]) }], 'bad_close_payload'],
    ['a close reason that is not UTF-8', client, [{ opcode: Opcode.CLOSE, masked: true, payload: Buffer.concat([closePayload(1000), Buffer.from([0xc0, 0xaf])]) }], 'bad_close_reason'],
    ['a 64-bit length of 2^53', client, [text(0, { announce: 2 ** 53, lengthForm: 64 })], 'unsupported_payload_length'],
    ['a 64-bit length with the most significant bit set', client, [text(0, { announce: 2 ** 63, lengthForm: 64 })], 'unsupported_payload_length'],
  ];
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]) {
    cases.push([`close code ${code}`, client, [{ opcode: Opcode.CLOSE, masked: true, payload: closePayload(code) }], 'bad_close_code']);
  }
  for (const [what, make, frames, failure] of cases) {
    test(`${what}: ${failure}`, () => {
      const prefix = encodeFrame(before.masked === make().fromClient ? before : { ...before, masked: false });
      const data = Buffer.concat([prefix, bytes(...frames), encodeFrame(text(2))]);
      const r = feedBothWays(make, data);
      assert.equal(r.failure, failure);
      // The offending frame is the last of `frames`: everything before it was relayed, nothing of it.
      const bad = encodeFrame(frames[frames.length - 1]!);
      const badAt = data.length - encodeFrame(text(2)).length - bad.length;
      assert.equal(r.failedAt, badAt);
      assert.deepEqual(r.out, data.subarray(0, badAt));
      assert.ok([1002, 1007, 1009].includes(FAILURE_CLOSE_CODES[r.failure]));
    });
  }

  test('after a failure push() passes everything through, held bytes first, for a lenient relay', () => {
    const data = bytes(text(2), text(1, { masked: false }), text(3));
    for (let split = 1; split < data.length; split++) {
      const r = relay(client(), [data.subarray(0, split), data.subarray(split)], { lenient: true });
      assert.equal(r.failure, 'unmasked_client_frame');
      assert.deepEqual(r.out, data, `split at ${split}`);
    }
  });

  test('reports a failure once and stays failed', () => {
    const t = client();
    const bad = bytes(text(1, { masked: false }));
    assert.equal(t.push(bad), 0);
    assert.equal(t.stop, Stop.FAILED);
    assert.equal(t.push(bad), bad.length);
    assert.equal(t.stop, Stop.END);
    assert.equal(t.failure, 'unmasked_client_frame');
    assert.equal(t.atFrameBoundary, false);
  });

  test('the close codes ws accepts are exactly the ones isValidCloseCode accepts', () => {
    const allowed: number[] = [];
    for (let c = 0; c < 6000; c++) if (isValidCloseCode(c)) allowed.push(c);
    const ranges = [[1000, 1003], [1007, 1014], [3000, 4999]];
    assert.deepEqual(allowed, ranges.flatMap(([a, b]) => Array.from({ length: b! - a! + 1 }, (_, i) => a! + i)));
  });
});

describe('message size limit (maxMessageBytes)', () => {
  test('refuses a frame announcing more than the limit before relaying its header', () => {
    const data = bytes(text(100), text(101));
    const r = feedBothWays(() => client({ maxMessageBytes: 100 }), data);
    assert.equal(r.failure, 'message_too_big');
    assert.equal(FAILURE_CLOSE_CODES.message_too_big, 1009);
    assert.deepEqual(r.out, encodeFrame(text(100)));
  });

  test('sums fragments and stops at the header of the fragment that goes over', () => {
    const first = encodeFrame(text(60, { fin: false }));
    const ping = encodeFrame({ opcode: Opcode.PING, masked: true, payload: Buffer.alloc(125) }); // not counted
    const second = encodeFrame({ opcode: 0, masked: true, fin: false, payload: Buffer.alloc(40) });
    const third = encodeFrame({ opcode: 0, masked: true, payload: Buffer.alloc(1) });
    const data = Buffer.concat([first, ping, second, third]);
    const r = feedBothWays(() => client({ maxMessageBytes: 100 }), data);
    assert.equal(r.failure, 'message_too_big');
    assert.equal(r.failedAt, first.length + ping.length + second.length);
  });

  test('lets a message of exactly the limit through, and starts counting again at the next message', () => {
    const data = bytes(text(50, { fin: false }), { opcode: 0, masked: true, payload: Buffer.alloc(50) }, text(100));
    const r = feedBothWays(() => client({ maxMessageBytes: 100 }), data);
    assert.equal(r.failure, null);
    assert.deepEqual(r.out, data);
  });

  test('refuses a 2^53-1 frame under any limit without waiting for its payload', () => {
    const t = server({ maxMessageBytes: 1 << 20 });
    const head = encodeFrame({ opcode: Opcode.BINARY, masked: false, announce: 2 ** 53 - 1 });
    assert.equal(t.push(head), 0);
    assert.equal(t.failure, 'message_too_big');
  });
});

describe('bytes held across chunks', () => {
  test('holds a header split at every offset and releases it whole, valid, with the rest', () => {
    const frame = encodeFrame(text(70000));
    for (let split = 1; split < 14; split++) {
      const t = client();
      assert.equal(t.push(frame.subarray(0, split)), 0, `split ${split}: nothing relayable yet`);
      assert.equal(t.heldBytes, split);
      assert.equal(t.atFrameBoundary, true, 'the relayed bytes still end at a boundary');
      const rest = frame.subarray(split, 1000); // the header's end and part of the payload
      assert.equal(t.push(rest), rest.length);
      assert.deepEqual(t.takeReleased(), frame.subarray(0, split));
      assert.equal(t.heldBytes, 0);
      assert.equal(t.atFrameBoundary, false);
      assert.equal(t.payloadLength, 70000);
    }
  });

  test('holds a control frame until it is complete, then releases it', () => {
    const data = bytes(text(10), { opcode: Opcode.PING, masked: true, payload: Buffer.alloc(125, 1) }, text(10));
    const pingStart = encodeFrame(text(10)).length;
    const t = client();
    assert.equal(t.push(data.subarray(0, pingStart + 50)), pingStart);
    assert.equal(t.heldBytes, 50);
    assert.equal(t.pings, 0);
    assert.equal(t.push(data.subarray(pingStart + 50, pingStart + 100)), 0);
    assert.equal(t.heldBytes, 100);
    const last = data.subarray(pingStart + 100);
    assert.equal(t.push(last), last.length);
    assert.deepEqual(t.takeReleased(), data.subarray(pingStart, pingStart + 100));
    assert.equal(t.pings, 1);
  });

  test('works from any start offset, e.g. the frames that follow a 101 head in the same read', () => {
    const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\n\r\n');
    const pong = encodeFrame({ opcode: Opcode.PONG, masked: false, payload: Buffer.from('abc') });
    const t = server();
    t.stopOn = StopOn.PONG;
    const first = Buffer.concat([head, pong.subarray(0, 4)]);
    assert.equal(t.push(first, head.length), head.length, 'the pong start is held');
    const second = Buffer.concat([Buffer.from('xx'), pong.subarray(4), encodeFrame(text(1, { masked: false }))]);
    assert.equal(t.push(second, 2), 2, 'stops at the held pong: nothing of this chunk before it');
    assert.equal(t.stop, Stop.CONTROL);
    assert.equal(t.frameEnd, 2 + pong.length - 4);
    assert.equal(t.push(second, 2), second.length);
    assert.deepEqual(t.takeReleased(), pong.subarray(0, 4));
  });

  test('throws when the relay forgets to take released bytes', () => {
    const frame = encodeFrame(text(3));
    const t = client();
    t.push(frame.subarray(0, 1));
    t.push(frame.subarray(1));
    assert.throws(() => t.push(frame), /takeReleased/);
  });

  test('holds at most 131 bytes whatever the cutting', () => {
    const data = bytes({ opcode: Opcode.PONG, masked: true, payload: Buffer.alloc(125) }, text(1));
    const t = client();
    let max = 0;
    for (const b of data) {
      t.push(Buffer.from([b]));
      t.takeReleased();
      max = Math.max(max, t.heldBytes);
    }
    assert.equal(max, 130); // the 131st byte completes the frame
    assert.equal(t.pongs, 1);
  });
});

describe('relay requests', () => {
  test('pauseAtBoundary stops at once when the relayed bytes end at a boundary', () => {
    const t = server();
    t.pauseAtBoundary = true;
    const data = bytes(text(5, { masked: false }));
    assert.equal(t.push(data), 0);
    assert.equal(t.stop, Stop.BOUNDARY);
    assert.equal(t.pauseAtBoundary, false, 'cleared when it stops');
    assert.equal(t.push(data), data.length);
    assert.equal(t.stop, Stop.END);
  });

  test('pauseAtBoundary inside a large frame stops where it ends, in a later chunk', () => {
    const big = encodeFrame(text(40000, { masked: false }));
    const data = Buffer.concat([big, encodeFrame(text(5, { masked: false }))]);
    const t2 = server();
    assert.equal(t2.push(data.subarray(0, 1000)), 1000);
    t2.pauseAtBoundary = true;
    const rest = data.subarray(1000);
    assert.equal(t2.push(rest), big.length - 1000);
    assert.equal(t2.stop, Stop.BOUNDARY);
    assert.equal(t2.atFrameBoundary, true);
    assert.equal(t2.push(rest, big.length - 1000), rest.length);
  });

  test('pauseAtBoundary with a header held stops before the held bytes', () => {
    const frame = encodeFrame(text(3));
    const t = client();
    t.push(frame.subarray(0, 1));
    t.pauseAtBoundary = true;
    const rest = frame.subarray(1);
    assert.equal(t.push(rest), 0);
    assert.equal(t.stop, Stop.BOUNDARY);
    assert.equal(t.takeReleased(), null);
    assert.equal(t.push(rest), rest.length);
    assert.deepEqual(t.takeReleased(), frame.subarray(0, 1));
  });

  test('StopOn.PONG lets the relay drop its own pong, also when the pong straddles chunks', () => {
    const mine = Buffer.from('wsgate-1');
    const theirs = Buffer.from('app');
    const data = bytes(
      text(10),
      { opcode: Opcode.PONG, masked: true, payload: theirs },
      { opcode: Opcode.PONG, masked: true, payload: mine },
      text(10),
    );
    const expected = bytes(text(10), { opcode: Opcode.PONG, masked: true, payload: theirs }, text(10));
    for (let split = 0; split <= data.length; split++) {
      const t = client();
      t.stopOn = StopOn.PONG;
      const r = relay(t, [data.subarray(0, split), data.subarray(split)].filter((c) => c.length > 0), {
        drop: (op, payload) => op === Opcode.PONG && payload.equals(mine),
      });
      assert.deepEqual(r.out, expected, `split ${split}`);
      assert.equal(r.controls.length, 2);
      assert.equal(t.pongs, 2);
    }
  });

  test('pongMatches recognises the pong just completed and nothing stale', () => {
    const mine = Buffer.from([1, 2, 3, 4, 5]);
    const t = server();
    t.stopOn = StopOn.PONG | StopOn.PING;
    const data = bytes({ opcode: Opcode.PONG, masked: false, payload: mine }, { opcode: Opcode.PING, masked: false, payload: mine });
    const end = t.push(data);
    assert.equal(t.stop, Stop.CONTROL);
    assert.equal(end, 0);
    assert.ok(pongMatches(t, mine));
    assert.ok(!pongMatches(t, Buffer.from([1, 2, 3, 4])));
    assert.equal(t.frameEnd, 7);
    assert.equal(t.dropControl(), 7);
    assert.equal(t.frameEnd, -1);
    assert.equal(t.dropControl(), -1, 'nothing pending any more');
    t.push(data, 7);
    assert.equal(t.stop, Stop.CONTROL);
    assert.ok(!pongMatches(t, mine), 'a ping with the same payload is not a pong');
    const other = server();
    other.push(bytes({ opcode: Opcode.PONG, masked: false, payload: mine }));
    assert.ok(!t.controlPayloadEquals(mine), 'stale after another push');
  });

  test('StopOn.HEADERS reports each header before the frame is consumed, once', () => {
    const data = bytes(text(3, { fin: false }), { opcode: Opcode.PING, masked: true }, { opcode: 0, masked: true, payload: Buffer.alloc(300) });
    for (let split = 1; split < data.length; split++) {
      const t = client();
      t.stopOn = StopOn.HEADERS;
      const r = relay(t, [data.subarray(0, split), data.subarray(split)]);
      assert.deepEqual(r.out, data);
      assert.deepEqual(r.headers, [
        { opcode: 1, fin: false, rsv: 0, length: 3 },
        { opcode: 9, fin: true, rsv: 0, length: 0 },
        { opcode: 0, fin: true, rsv: 0, length: 300 },
      ]);
      assert.equal(t.dataFrames, 2);
    }
  });
});

describe('frames wsgate builds, read back by ws', () => {
  // ws's own frame parser: ws exports it (wrapper.mjs), @types/ws does not declare it.
  const Receiver = (wsModule as unknown as { Receiver: new (o: { isServer: boolean }) => Writable }).Receiver;
  function receive(isServer: boolean, data: Buffer): { events: [string, unknown, string?][]; error?: Error } {
    const receiver = new Receiver({ isServer });
    const events: [string, unknown, string?][] = [];
    let error: Error | undefined;
    receiver.on('conclude', (code: number, reason: Buffer) => events.push(['close', code, reason.toString()]));
    receiver.on('ping', (d: Buffer) => events.push(['ping', d.toString('hex')]));
    receiver.on('pong', (d: Buffer) => events.push(['pong', d.toString('hex')]));
    receiver.on('error', (e: Error) => (error = e));
    receiver.write(Buffer.from(data)); // a copy: ws unmasks in place
    return error ? { events, error } : { events };
  }

  for (const masked of [true, false]) {
    const to = masked ? 'a server (masked)' : 'a client (unmasked)';
    test(`closeFrame to ${to} is a valid close ws reads, and the tracker too`, () => {
      const frame = closeFrame(1001, 'going away', masked);
      assert.deepEqual(receive(masked, frame), { events: [['close', 1001, 'going away']] });
      const t = new FrameTracker({ fromClient: masked });
      assert.equal(t.push(frame), frame.length);
      assert.deepEqual([t.closeCode, t.closeReason], [1001, 'going away']);
    });

    test(`pingFrame to ${to} carries its payload`, () => {
      const payload = Buffer.from('0123456789abcdef');
      assert.deepEqual(receive(masked, pingFrame(payload, masked)), { events: [['ping', payload.toString('hex')]] });
    });
  }

  test('masks with a fresh random key each time', () => {
    const a = pingFrame(Buffer.alloc(8), true);
    const b = pingFrame(Buffer.alloc(8), true);
    assert.notDeepEqual(a.subarray(2, 6), b.subarray(2, 6));
  });

  test('closeFrame cuts a long reason to 123 bytes at a character boundary', () => {
    const frame = closeFrame(1008, 'é'.repeat(100), false);
    assert.equal(frame[1], 2 + 122);
    assert.deepEqual(receive(false, frame), { events: [['close', 1008, 'é'.repeat(61)]] });
  });

  test('refuses to build frames that may not be sent', () => {
    assert.throws(() => closeFrame(1006, '', false), RangeError);
    assert.throws(() => closeFrame(1005, '', false), RangeError);
    assert.throws(() => pingFrame(Buffer.alloc(126), false), RangeError);
    assert.throws(() => controlFrame(Opcode.TEXT, Buffer.alloc(1), false), RangeError);
  });
});

describe('atRest: when a tracker may be let go and made again', () => {
  const counted = (t: FrameTracker): void => {
    t.messages = t.dataFrames = t.pings = t.pongs = t.closes = 0;
  };

  test('a new tracker is at rest; one that counted frames is not until its counters are read', () => {
    const t = client();
    assert.equal(t.atRest, true);
    t.takeReleased();
    assert.equal(t.push(bytes(text(3))), bytes(text(3)).length);
    assert.equal(t.atRest, false, 'a message counted, not read yet');
    counted(t);
    assert.equal(t.atRest, true);
  });

  test('not at rest inside a payload, with a header held, inside a fragmented message, or stopped at a control frame', () => {
    const inPayload = client();
    inPayload.push(bytes(text(100)).subarray(0, 50));
    counted(inPayload);
    assert.equal(inPayload.atRest, false, 'inside a payload');

    const held = client();
    held.push(bytes(text(3)).subarray(0, 1));
    assert.equal(held.atRest, false, 'half a header held');

    const open = client();
    open.push(bytes(text(3, { fin: false })));
    counted(open);
    assert.equal(open.atRest, false, 'a message is open');
    open.push(bytes({ opcode: Opcode.CONTINUATION, masked: true, payload: Buffer.alloc(2) }));
    counted(open);
    assert.equal(open.atRest, true, 'the message ended');

    const stopped = client();
    stopped.stopOn = StopOn.PONG;
    stopped.push(bytes({ opcode: Opcode.PONG, masked: true, payload: Buffer.alloc(5) }));
    assert.equal(stopped.stop, Stop.CONTROL);
    counted(stopped);
    assert.equal(stopped.atRest, false, 'a control frame waits for the relay');
  });

  test('never at rest once a close frame was seen or it failed', () => {
    const closed = client();
    closed.push(bytes({ opcode: Opcode.CLOSE, masked: true, payload: closePayload(1000, '') }));
    counted(closed);
    assert.equal(closed.atRest, false);
    const failed = client();
    failed.push(bytes(text(3, { masked: false })));
    counted(failed);
    assert.equal(failed.failure, 'unmasked_client_frame');
    assert.equal(failed.atRest, false);
  });
});
