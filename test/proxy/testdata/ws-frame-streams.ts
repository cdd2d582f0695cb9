// Test support for the frame tracker: an independent frame encoder (written from RFC 6455 §5.2, not from the code
// under test), and the relay loop that the tracker's file header documents, recording what it would write.
import { Stop, type Failure, type FrameTracker } from '../../../src/proxy/ws-frames.ts';

export interface FrameSpec {
  opcode: number;
  fin?: boolean; // default true
  rsv?: number; // bits 0x70 of byte 0; default 0
  masked: boolean;
  payload?: Buffer; // default empty
  /** Announce this length instead of payload.length and write no payload (header-only frames). */
  announce?: number;
  /** Force the 16-bit or 64-bit length form even for a small length (non-minimal, but legal for ws). */
  lengthForm?: 16 | 64;
  /** The masking key; default a fixed non-zero one, so masked payloads really differ from the plain bytes. */
  key?: [number, number, number, number];
}

export function encodeFrame(f: FrameSpec): Buffer {
  const payload = f.payload ?? Buffer.alloc(0);
  const n = f.announce ?? payload.length;
  const form = f.lengthForm ?? (n < 126 ? 7 : n < 65536 ? 16 : 64);
  const head: number[] = [((f.fin ?? true) ? 0x80 : 0) | (f.rsv ?? 0) | f.opcode];
  const maskBit = f.masked ? 0x80 : 0;
  if (form === 7) head.push(maskBit | n);
  else if (form === 16) head.push(maskBit | 126, (n >>> 8) & 0xff, n & 0xff);
  else {
    const hi = Math.floor(n / 2 ** 32);
    const lo = n >>> 0;
    head.push(maskBit | 127, (hi >>> 24) & 0xff, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff);
    head.push((lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff);
  }
  const key = f.key ?? [0x37, 0xfa, 0x21, 0x3d];
  if (f.masked) head.push(...key);
  const body = f.announce !== undefined ? Buffer.alloc(0) : Buffer.from(payload);
  if (f.masked) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

/** Cuts `data` at random places into chunks of 1..maxChunk bytes (copies, as sockets deliver fresh buffers). */
export function cut(data: Buffer, rand: () => number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; ) {
    const n = Math.min(data.length - i, 1 + Math.floor(rand() * maxChunk));
    chunks.push(Buffer.from(data.subarray(i, i + n)));
    i += n;
  }
  return chunks;
}

export interface SeenFrame {
  opcode: number;
  fin: boolean;
  rsv: number;
  length: number;
}

export interface RelayResult {
  /** Everything the relay would have written, in order. */
  out: Buffer;
  /** With StopOn.HEADERS: each frame header as reported. */
  headers: SeenFrame[];
  /** With StopOn control bits: each control frame's opcode and payload at its Stop.CONTROL. */
  controls: { opcode: number; payload: Buffer }[];
  failure: Failure | null;
  /** Offset in the whole input where the failing frame starts (bytes before it were relayed). */
  failedAt: number;
  /** Bytes written so far at each Stop.BOUNDARY. */
  pauses: number[];
}

export interface RelayPolicy {
  /** Decides at each Stop.CONTROL whether to drop the frame. */
  drop?: (opcode: number, payload: Buffer) => boolean;
  /** After Stop.FAILED, go on as a byte pipe (a lenient relay) instead of stopping. */
  lenient?: boolean;
  /** Asked before each push(): whether to set pauseAtBoundary. */
  pause?: () => boolean;
  /** Told after each chunk: the bytes written so far and atFrameBoundary. */
  afterChunk?: (written: number, atFrameBoundary: boolean) => void;
}

/** The relay loop of the tracker's file header, writing into memory. */
export function relay(tracker: FrameTracker, chunks: Buffer[], policy: RelayPolicy = {}): RelayResult {
  const written: Buffer[] = [];
  const r: RelayResult = { out: Buffer.alloc(0), headers: [], controls: [], failure: null, failedAt: -1, pauses: [] };
  let writtenBytes = 0;
  let justPaused = false;
  const write = (b: Buffer): void => {
    written.push(b); // chunks are never reused here (a real relay with a reused read buffer would copy)
    writtenBytes += b.length;
  };
  outer: for (const chunk of chunks) {
    let off = 0;
    for (let guard = 0; ; guard++) {
      if (guard > 2 * chunk.length + 10) throw new Error('relay loop does not advance');
      // A relay asks again only after it has injected: never twice at the same boundary.
      if (!justPaused && policy.pause?.()) tracker.pauseAtBoundary = true;
      justPaused = false;
      const end = tracker.push(chunk, off);
      if (end < off || end > chunk.length) throw new Error(`push returned ${end} for off ${off}`);
      const held = tracker.takeReleased();
      if (held !== null) write(held);
      if (end > off) write(chunk.subarray(off, end));
      switch (tracker.stop) {
        case Stop.END:
          policy.afterChunk?.(writtenBytes, tracker.atFrameBoundary);
          break;
        case Stop.BOUNDARY:
          r.pauses.push(writtenBytes);
          justPaused = true;
          off = end;
          continue;
        case Stop.HEADER:
          r.headers.push({ opcode: tracker.opcode, fin: tracker.fin, rsv: tracker.rsv, length: tracker.payloadLength });
          off = end;
          continue;
        case Stop.CONTROL: {
          const payload = tracker.controlPayload();
          r.controls.push({ opcode: tracker.controlOpcode, payload });
          off = policy.drop?.(tracker.controlOpcode, payload) ? tracker.dropControl() : end;
          continue;
        }
        case Stop.FAILED:
          if (r.failure === null) {
            r.failure = tracker.failure;
            r.failedAt = writtenBytes;
          }
          if (policy.lenient) {
            off = end;
            continue;
          }
          break outer;
      }
      break;
    }
  }
  r.out = Buffer.concat(written);
  return r;
}
