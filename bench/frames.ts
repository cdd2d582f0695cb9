// The minimum of RFC 6455 the bench needs on both ends: build a frame, and cut a byte stream into frames. Kept
// small and allocation-light so that the backend and the load generators cost far less CPU than the proxy under
// test. This is a benchmark tool talking to itself through a proxy, never a parser facing the internet.
import { createHash } from 'node:crypto';

export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * One frame with FIN set. `masked` frames (client to server) carry an all-zero masking key: XOR with zero leaves
 * the payload as it is, so neither end spends CPU on masking. Proxies relay frames without unmasking them, so this
 * changes nothing for the proxy under test (a real client's random key would cost the *client* CPU, not the proxy).
 */
export function buildFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const len = payload.length;
  const maskLen = masked ? 4 : 0;
  const headLen = (len < 126 ? 2 : len < 65536 ? 4 : 10) + maskLen;
  const frame = Buffer.allocUnsafe(headLen + len);
  frame[0] = 0x80 | opcode;
  const maskBit = masked ? 0x80 : 0;
  if (len < 126) {
    frame[1] = maskBit | len;
  } else if (len < 65536) {
    frame[1] = maskBit | 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = maskBit | 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  if (masked) frame.writeUInt32BE(0, headLen - 4);
  payload.copy(frame, headLen);
  return frame;
}

export type FrameHandler = (opcode: number, payload: Buffer) => void;

/**
 * Cuts a byte stream into frames and calls `onFrame` for each, payload unmasked. Fragmented messages are not
 * reassembled (the bench never sends them). Chunks are only concatenated when a frame straddles reads.
 */
export class FrameReader {
  #buf: Buffer | null = null;
  readonly #onFrame: FrameHandler;

  constructor(onFrame: FrameHandler) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    let off = 0;
    for (;;) {
      const avail = buf.length - off;
      if (avail < 2) break;
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let head = 2;
      if (len === 126) {
        if (avail < 4) break;
        len = buf.readUInt16BE(off + 2);
        head = 4;
      } else if (len === 127) {
        if (avail < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        head = 10;
      }
      const maskOff = off + head;
      if (masked) head += 4;
      if (avail < head + len) break;
      const payload = buf.subarray(off + head, off + head + len);
      if (masked) unmask(payload, buf, maskOff);
      off += head + len;
      this.#onFrame(b0 & 0x0f, payload);
    }
    if (off === buf.length) {
      this.#buf = null;
    } else {
      // Keep only the unread tail (copied, so the big chunk it came from can be collected).
      buf = off === 0 ? buf : Buffer.from(buf.subarray(off));
      this.#buf = buf;
    }
  }
}

function unmask(payload: Buffer, buf: Buffer, maskOff: number): void {
  const m0 = buf[maskOff]!;
  const m1 = buf[maskOff + 1]!;
  const m2 = buf[maskOff + 2]!;
  const m3 = buf[maskOff + 3]!;
  if ((m0 | m1 | m2 | m3) === 0) return;
  const mask = Buffer.from([m0, m1, m2, m3]);
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
}

/** Index just past the `\r\n\r\n` ending an HTTP head in `buf`, or -1. */
export function headEnd(buf: Buffer): number {
  const i = buf.indexOf('\r\n\r\n');
  return i < 0 ? -1 : i + 4;
}
