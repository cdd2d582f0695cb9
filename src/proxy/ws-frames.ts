// WebSocket frame tracking for one direction of a relayed stream (RFC 6455 §5), and the few frames wsgate writes
// itself. Pure: no sockets, logger, metrics or clock. The tracker reads frame headers and skips payloads
// arithmetically; it never copies or unmasks a data payload. Only control frames (at most 2+4+125 = 131 bytes) are
// read, for close codes and reasons and to recognise wsgate's own pongs.
//
// ── How a relay drives it ──────────────────────────────────────────────────────────────────────────────────────
// For each chunk read from one side, in order:
//
//     let off = 0;
//     for (;;) {
//       const end = tracker.push(chunk, off);        // scans chunk[off, …)
//       const held = tracker.takeReleased();          // bytes of earlier chunks that became relayable: write first
//       if (held !== null) peer.write(held);
//       if (end > off) peer.write(off === 0 && end === chunk.length ? chunk : chunk.subarray(off, end));
//       switch (tracker.stop) {
//         case Stop.END: return;                      // nothing more in this chunk
//         case Stop.BOUNDARY: inject(); off = end; continue;          // written bytes end at a frame boundary
//         case Stop.CONTROL:                          // a complete control frame wanted by stopOn, not yet relayed
//           off = pongMatches(tracker, myPing) ? tracker.dropControl()   // swallowed: go on past it
//                                              : end;  // push(chunk, end) relays it (held bytes come back first)
//           continue;
//         case Stop.HEADER: look(tracker.opcode, tracker.payloadLength); off = end; continue;
//         case Stop.FAILED: closeWith(FAILURE_CLOSE_CODES[tracker.failure!]); return;
//       }
//     }
//
// Guarantees:
//  1. Relaying, in order, `takeReleased()` and `chunk[off, end)` after every push() reproduces the input exactly,
//     except for frames the relay drops with dropControl() and bytes it does not relay after Stop.FAILED.
//  2. A frame header, and a whole control frame, are released only once complete and valid. When one straddles
//     chunks the tracker holds its bytes back (at most 131, copied into a buffer allocated for that straddle and
//     handed to the relay by takeReleased(), so never copied twice). Hence, between push() calls the bytes written
//     so far always end at a frame boundary unless the stream is inside a data payload (`atFrameBoundary`), and
//     a frame that fails validation was never partly relayed: the relay can always inject a close frame cleanly.
//  3. Work per chunk is O(frame headers in it): a 16 KiB chunk inside one data frame costs a subtraction.
//     Nothing is allocated per data frame; a straddling header or control frame allocates one ≤131-byte buffer.
//     The tracker keeps no reference to a chunk after push() returns (a relay may reuse its read buffer, as long
//     as it copies what it has not finished writing). A tracker is ~210 bytes of heap (measured on Node 24).
//  4. controlPayload(), controlPayloadEquals() and pongMatches() read a scratch buffer shared by all trackers:
//     they answer about the control frame completed by this tracker's last push(), and only until the next
//     push() of any tracker (after that they find nothing). Read them right at Stop.CONTROL.
//
// Requests the relay may make between push() calls (public fields):
//  - `pauseAtBoundary = true`: stop at the next frame boundary (now, if the written bytes already end at one)
//    with Stop.BOUNDARY, so the relay can inject a frame there. Cleared when the stop happens. Control frames may
//    be injected between the fragments of a message (RFC 6455 §5.4); `inMessage` says whether one is open.
//  - `stopOn`: a bitmask: StopOn.PING/PONG/CLOSE stop with Stop.CONTROL when such a control frame is complete,
//    before any of its bytes are relayed (for pong swallowing); StopOn.HEADERS stops with Stop.HEADER before each
//    frame whose header has been parsed and validated (the frame's fields are set; push(chunk, end) resumes
//    without stopping again at that frame). Both cost one test per frame when off.
//
// Validation follows RFC 6455 §5.1–5.5 as websockets/ws (lib/receiver.js) classifies it, in ws's order; the first
// failure stops the tracker for good (Stop.FAILED, `failure` set; push() then passes everything through, so that a
// relay told to be lenient can go on as a byte pipe). FAILURE_CLOSE_CODES gives the close code ws would send:
// 1002 for protocol violations, 1007 for a close reason that is not UTF-8, 1009 for a message over
// maxMessageBytes or a 64-bit length ws cannot represent (> 2^53-1, which includes a set most significant bit).
// Like ws, a non-minimal length encoding is accepted, and the UTF-8 of text messages is not checked (that would
// mean reading payloads). Frames after a close frame are still tracked (RFC 6455 §5.5.1 forbids sending them, but
// ws ignores them and so does wsgate). `allowedRsv` bits are accepted on the first frame of a data message only
// (permessage-deflate's rule, RFC 7692 §6); limits count payload bytes as announced on the wire (compressed).
import { randomFillSync } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

/** Why push() returned. */
export const Stop = { END: 0, BOUNDARY: 1, CONTROL: 2, HEADER: 3, FAILED: 4 } as const;
export type StopCode = (typeof Stop)[keyof typeof Stop];

/** Bits of `stopOn`. */
export const StopOn = { CLOSE: 1 << Opcode.CLOSE, PING: 1 << Opcode.PING, PONG: 1 << Opcode.PONG, HEADERS: 1 << 16 } as const;

/** RSV1, the bit permessage-deflate uses: `allowedRsv` when the extension was negotiated. */
export const RSV1 = 0x40;

export type Violation =
  | 'rsv_bits'
  | 'reserved_opcode'
  | 'unexpected_continuation'
  | 'expected_continuation'
  | 'fragmented_control_frame'
  | 'control_frame_too_long'
  | 'unmasked_client_frame'
  | 'masked_server_frame'
  | 'bad_close_payload'
  | 'bad_close_code'
  | 'bad_close_reason';
export type LimitFailure = 'message_too_big' | 'unsupported_payload_length';
export type Failure = Violation | LimitFailure;

/** The close code to send to the side whose frame failed (its peer gets 1001), as ws does. */
export const FAILURE_CLOSE_CODES = {
  rsv_bits: 1002,
  reserved_opcode: 1002,
  unexpected_continuation: 1002,
  expected_continuation: 1002,
  fragmented_control_frame: 1002,
  control_frame_too_long: 1002,
  unmasked_client_frame: 1002,
  masked_server_frame: 1002,
  bad_close_payload: 1002,
  bad_close_code: 1002,
  bad_close_reason: 1007,
  message_too_big: 1009,
  unsupported_payload_length: 1009,
} as const satisfies { readonly [F in Failure]: number };

export interface FrameTrackerOptions {
  /** Frames from the client must be masked, frames from the server must not be (RFC 6455 §5.1). */
  readonly fromClient: boolean;
  /** RSV bits an extension explains, e.g. RSV1 when permessage-deflate was negotiated. [default 0] */
  readonly allowedRsv?: number;
  /** The largest message (sum of its fragments' payload lengths, on the wire) in bytes; 0 = no limit. [default 0] */
  readonly maxMessageBytes?: number;
}

// Tracker states.
const S_HEADER = 0; // at a frame boundary; a partial header may be held
const S_DATA = 1; // inside a data payload; `#remaining` bytes to skip
const S_CONTROL = 2; // a control frame straddles chunks: held in `#unit`, `#remaining` payload bytes to come
const S_PENDING = 3; // Stop.CONTROL returned: the frame waits for push(chunk, end) or dropControl()
const S_FAILED = 4;

// Bits of `#bits` (the allowed RSV bits are kept in place, 0x70).
const B_FROM_CLIENT = 0x1;
const B_IN_MESSAGE = 0x100;
const B_PEEKED = 0x200; // StopOn.HEADERS: the frame at the current position was already reported
const B_PAUSE = 0x400;

/** Room for the largest unit ever held: a control frame, 2 + 4 + 125 bytes (a header alone is at most 14). */
const UNIT_SIZE = 131;

// The payload of the control frame completed last, unmasked, shared by all trackers: it is read synchronously
// right after the push() that completed it (Stop.CONTROL). Any push() clears `controlOwner`, so a read that comes
// too late finds nothing instead of another frame's payload.
const CONTROL_PAYLOAD = Buffer.alloc(125);
let controlOwner: FrameTracker | null = null;

/**
 * One direction of one WebSocket tunnel. Lives as long as the tunnel, so it is kept small: about 200 bytes, flags
 * and small numbers packed into integers; a held unit is allocated only while a header or control frame straddles.
 */
export class FrameTracker {
  readonly maxMessageBytes: number;
  /** Request: StopOn bits (see the file header). */
  stopOn = 0;
  /** Why the last push() returned. */
  stop: StopCode = Stop.END;
  /** Set once, with Stop.FAILED. */
  failure: Failure | null = null;

  // Counters, cumulative: the relay may read and reset them (e.g. when its sweep flushes metrics). Data frames and
  // messages are counted when their header is parsed; control frames when complete (also one the relay drops).
  messages = 0;
  dataFrames = 0;
  pings = 0;
  pongs = 0;
  closes = 0;

  /** The last frame header's payload length. */
  payloadLength = 0;
  /** Payload bytes of the current (or last) message announced so far. */
  messageBytes = 0;
  /** The last close frame's code (1005 when it had none; 0 before any) and reason. */
  closeCode = 0;
  closeReason = '';

  /** B_* flags and the allowed RSV bits. */
  #bits: number;
  /** The last frame header parsed: byte 0 (FIN, RSV, opcode) << 8 | byte 1 (MASK, 7-bit length). */
  #head = 0;
  /** The last control frame completed: opcode << 8 | payload length. */
  #control = 0;
  #state = S_HEADER;
  /** S_DATA, S_CONTROL: payload bytes still to come. S_PENDING: the offset in the chunk just past the frame. */
  #remaining = 0;
  /** held | unitLen << 8. held: bytes of #unit held back from earlier chunks; unitLen: bytes in #unit (held ones
   * plus those copied from the current chunk). Zero exactly when nothing is held or being gathered. */
  #units = 0;
  /** Only while a header or control frame straddles chunks; then handed to the relay by takeReleased(). */
  #unit: Buffer | null = null;
  #released: Buffer | null = null;

  constructor(opts: FrameTrackerOptions) {
    this.#bits = (opts.fromClient ? B_FROM_CLIENT : 0) | ((opts.allowedRsv ?? 0) & 0x70);
    this.maxMessageBytes = opts.maxMessageBytes ?? 0;
  }

  get fromClient(): boolean {
    return (this.#bits & B_FROM_CLIENT) !== 0;
  }
  get allowedRsv(): number {
    return this.#bits & 0x70;
  }

  /** Request: stop at the next frame boundary (see the file header). Cleared when it stops there. */
  get pauseAtBoundary(): boolean {
    return (this.#bits & B_PAUSE) !== 0;
  }
  set pauseAtBoundary(on: boolean) {
    this.#bits = on ? this.#bits | B_PAUSE : this.#bits & ~B_PAUSE;
  }

  /** Between a data frame without FIN and the continuation that has it. */
  get inMessage(): boolean {
    return (this.#bits & B_IN_MESSAGE) !== 0;
  }

  /** The last header's opcode, FIN, RSV bits (0x70 mask) and MASK bit. */
  get opcode(): number {
    return (this.#head >> 8) & 0x0f;
  }
  get fin(): boolean {
    return (this.#head & 0x8000) !== 0;
  }
  get rsv(): number {
    return (this.#head >> 8) & 0x70;
  }
  get masked(): boolean {
    return (this.#head & 0x80) !== 0;
  }

  /** The last control frame completed: its opcode and payload length (the payload: controlPayload()). */
  get controlOpcode(): number {
    return this.#control >> 8;
  }
  get controlLength(): number {
    return this.#control & 0xff;
  }

  /** While a control frame is pending (Stop.CONTROL): the offset in the chunk just past it; -1 otherwise. */
  get frameEnd(): number {
    return this.#state === S_PENDING ? this.#remaining : -1;
  }

  /** True when the bytes relayed so far end at a frame boundary: the only place a frame may be injected. */
  get atFrameBoundary(): boolean {
    return this.#state === S_HEADER || this.#state === S_CONTROL || this.#state === S_PENDING;
  }

  /**
   * Nothing in flight and nothing to report: at a frame boundary outside any message, no byte held or released, no
   * stop pending or requested, not failed, no close frame seen, every counter read and reset. A tracker at rest is
   * the same as a new one made with the same options and `stopOn`, so a relay may let it go and make that one when
   * bytes come (ws-session.ts parks the trackers of a quiet tunnel this way).
   */
  get atRest(): boolean {
    return (
      this.#state === S_HEADER &&
      this.#units === 0 &&
      this.#released === null &&
      (this.#bits & (B_IN_MESSAGE | B_PEEKED | B_PAUSE)) === 0 &&
      this.closeCode === 0 &&
      this.messages === 0 &&
      this.dataFrames === 0 &&
      this.pings === 0 &&
      this.pongs === 0 &&
      this.closes === 0
    );
  }

  /** Bytes currently held back from earlier chunks (never more than 131). */
  get heldBytes(): number {
    return this.#units & 0xff;
  }

  /**
   * Bytes from earlier chunks that the last push() made relayable; they come before chunk[off, end) in the
   * stream. The buffer is the relay's to keep (the tracker never touches it again). Null when there are none.
   * Must be called after every push() (the next push() throws otherwise: those bytes would be lost).
   */
  takeReleased(): Buffer | null {
    const r = this.#released;
    this.#released = null;
    return r;
  }

  /**
   * After Stop.CONTROL: drops the pending control frame (its held bytes are discarded). Returns where to go on:
   * push(chunk, that offset), just past the frame. Returns -1 when no frame is pending.
   */
  dropControl(): number {
    if (this.#state !== S_PENDING) return -1;
    const end = this.#remaining;
    this.#unit = null;
    this.#units = 0;
    this.#remaining = 0;
    this.#state = S_HEADER;
    return end;
  }

  /** A copy of the last completed control frame's payload, unmasked; empty once another push() has run. */
  controlPayload(): Buffer {
    if (controlOwner !== this) return Buffer.alloc(0);
    return Buffer.from(CONTROL_PAYLOAD.subarray(0, this.controlLength));
  }

  /** Whether the last completed control frame's payload equals `expected` (no copy). False once stale. */
  controlPayloadEquals(expected: Uint8Array): boolean {
    if (controlOwner !== this || expected.length !== this.controlLength) return false;
    for (let i = 0; i < expected.length; i++) if (CONTROL_PAYLOAD[i] !== expected[i]) return false;
    return true;
  }

  /**
   * Scans chunk[start, …). Returns `end`: chunk[start, end) may be relayed now (after takeReleased()); `stop`
   * says why it returned (see the file header). Call it again with the same chunk and `end` (or the offset
   * dropControl() returns) to go on after any stop but END and FAILED.
   */
  push(chunk: Buffer, start = 0): number {
    // Released bytes not taken would be lost from the stream: a relay bug, made loud.
    if (this.#released !== null) throw new Error('FrameTracker: takeReleased() was not called after push()');
    this.stop = Stop.END;
    controlOwner = null;
    const len = chunk.length;
    let pos = start;

    // 1. Finish what an earlier chunk (or stop) left open.
    switch (this.#state) {
      case S_DATA: {
        const rem = this.#remaining;
        if (rem > len - pos) {
          this.#remaining = rem - (len - pos);
          return len;
        }
        pos += rem;
        this.#remaining = 0;
        this.#state = S_HEADER;
        break;
      }
      case S_CONTROL: {
        if ((this.#bits & B_PAUSE) !== 0) return this.#pauseHere(pos);
        const unit = this.#unit!;
        let unitLen = this.#units >> 8;
        const n = Math.min(this.#remaining, len - pos);
        chunk.copy(unit, unitLen, pos, pos + n);
        unitLen += n;
        this.#remaining -= n;
        pos += n;
        if (this.#remaining > 0) {
          this.#units = unitLen | (unitLen << 8); // all of it held now
          return start;
        }
        this.#units = (this.#units & 0xff) | (unitLen << 8);
        const r = this.#controlDone(unit, 0, headerLength(unit[1]!), pos, start);
        if (r >= 0) return r;
        break;
      }
      case S_PENDING:
        if ((this.#bits & B_PAUSE) !== 0) return this.#pauseHere(pos);
        this.#release();
        pos = this.#remaining;
        this.#remaining = 0;
        this.#state = S_HEADER;
        break;
      case S_FAILED:
        this.#release();
        return len;
    }

    // 2. Frame after frame. Here the stream is at a frame boundary; only on the first pass may #unit hold the
    // start of a header from earlier chunks (and then pos === start).
    const maxMessage = this.maxMessageBytes;
    for (;;) {
      if ((this.#bits & B_PAUSE) !== 0) return this.#pauseHere(pos);
      let src: Buffer = chunk;
      let off = pos;
      let hl: number;
      let after: number; // position in chunk just past the header
      if (this.#units === 0) {
        const avail = len - pos;
        if (avail === 0) return len;
        if (avail < 2 || avail < (hl = headerLength(chunk[pos + 1]!))) return this.#holdHeader(chunk, pos);
        after = pos + hl;
      } else {
        const unit = this.#unit!;
        const held = this.#units & 0xff;
        let have = this.#units >> 8;
        if (have === 1) {
          if (pos === len) return start;
          unit[1] = chunk[pos++]!;
          have = 2;
        }
        hl = headerLength(unit[1]!);
        const n = Math.min(hl - have, len - pos);
        chunk.copy(unit, have, pos, pos + n);
        pos += n;
        have += n;
        if (have < hl) {
          this.#units = have | (have << 8); // all of it held now
          return start;
        }
        this.#units = held | (have << 8);
        src = unit;
        off = 0;
        after = pos;
        pos = start; // the frame starts here (its first bytes are held)
      }

      // The header is complete in src[off, off + hl): read and validate it (ws's order).
      const bits = this.#bits;
      const b0 = src[off]!;
      const b1 = src[off + 1]!;
      const opcode = b0 & 0x0f;
      const len7 = b1 & 0x7f;
      let plen = len7;
      let failure: Failure | null = null;
      const rsv = b0 & 0x70;
      if ((rsv & ~bits) !== 0) failure = 'rsv_bits';
      else if (opcode === Opcode.CONTINUATION) {
        if (rsv !== 0) failure = 'rsv_bits';
        else if ((bits & B_IN_MESSAGE) === 0) failure = 'unexpected_continuation';
      } else if (opcode === Opcode.TEXT || opcode === Opcode.BINARY) {
        if ((bits & B_IN_MESSAGE) !== 0) failure = 'expected_continuation';
      } else if (opcode >= Opcode.CLOSE && opcode <= Opcode.PONG) {
        if ((b0 & 0x80) === 0) failure = 'fragmented_control_frame';
        else if (rsv !== 0) failure = 'rsv_bits';
        else if (len7 > 125) failure = 'control_frame_too_long';
        else if (opcode === Opcode.CLOSE && len7 === 1) failure = 'bad_close_payload';
      } else failure = 'reserved_opcode';
      if (failure === null && (b1 & 0x80) >>> 7 !== (bits & B_FROM_CLIENT)) {
        failure = (bits & B_FROM_CLIENT) !== 0 ? 'unmasked_client_frame' : 'masked_server_frame';
      }
      if (failure === null && len7 >= 126) {
        if (len7 === 126) plen = (src[off + 2]! << 8) | src[off + 3]!;
        else {
          const hi = src[off + 2]! * 0x1000000 + ((src[off + 3]! << 16) | (src[off + 4]! << 8) | src[off + 5]!);
          if (hi > 0x1fffff) failure = 'unsupported_payload_length';
          else plen = hi * 0x100000000 + src[off + 6]! * 0x1000000 + ((src[off + 7]! << 16) | (src[off + 8]! << 8) | src[off + 9]!);
        }
      }
      const isData = opcode < Opcode.CLOSE;
      const messageBefore = opcode === Opcode.CONTINUATION ? this.messageBytes : 0;
      if (failure === null && isData && maxMessage > 0 && messageBefore + plen > maxMessage) failure = 'message_too_big';
      this.#head = (b0 << 8) | b1;
      this.payloadLength = plen;
      if (failure !== null) return this.#fail(failure, pos);
      if ((this.stopOn & StopOn.HEADERS) !== 0) {
        if ((bits & B_PEEKED) === 0) {
          this.#bits = bits | B_PEEKED;
          this.#forgetCopied(); // the resumed push copies those bytes again
          this.stop = Stop.HEADER;
          return pos;
        }
        this.#bits = bits & ~B_PEEKED;
      }

      if (isData) {
        this.dataFrames++;
        this.messageBytes = messageBefore + plen;
        if ((b0 & 0x80) !== 0) {
          this.messages++;
          this.#bits &= ~B_IN_MESSAGE;
        } else this.#bits |= B_IN_MESSAGE;
        if (src !== chunk) this.#release();
        const avail = len - after;
        if (plen > avail) {
          this.#remaining = plen - avail;
          this.#state = S_DATA;
          return len;
        }
        pos = after + plen;
        continue;
      }

      // A control frame. Complete in this chunk and not straddling: read it in place.
      if (src === chunk && plen <= len - after) {
        const r = this.#controlDone(chunk, off, hl, after + plen, start);
        if (r >= 0) return r;
        pos = after + plen;
        continue;
      }
      // Otherwise gather it in #unit (the header may already be there).
      let unit = this.#unit;
      if (unit === null) {
        unit = this.#unit = Buffer.allocUnsafeSlow(UNIT_SIZE);
        chunk.copy(unit, 0, off, after);
        this.#units = hl << 8;
      }
      const n = Math.min(plen, len - after);
      chunk.copy(unit, this.#units >> 8, after, after + n);
      const unitLen = (this.#units >> 8) + n;
      if (n < plen) {
        this.#remaining = plen - n;
        this.#units = unitLen | (unitLen << 8); // all of it held now
        this.#state = S_CONTROL;
        return pos; // the frame's start: everything from there is held
      }
      this.#units = (this.#units & 0xff) | (unitLen << 8);
      const r = this.#controlDone(unit, 0, hl, after + n, start);
      if (r >= 0) return r;
      pos = after + n;
    }
  }

  /**
   * A control frame is complete in src[off, off + hl + payload); `end` is the position just past it in the chunk.
   * Reads its payload, validates a close, counts it; then stops (returns the frame's start in the chunk) or, to
   * go on, releases held bytes and returns -1.
   */
  #controlDone(src: Buffer, off: number, hl: number, end: number, start: number): number {
    const b0 = src[off]!;
    const b1 = src[off + 1]!;
    const opcode = b0 & 0x0f;
    const plen = b1 & 0x7f;
    const p = off + hl;
    const m = p - 4;
    if ((b1 & 0x80) !== 0) {
      for (let i = 0; i < plen; i++) CONTROL_PAYLOAD[i] = src[p + i]! ^ src[m + (i & 3)]!;
    } else src.copy(CONTROL_PAYLOAD, 0, p, p + plen);
    // Where the frame starts in this chunk: the chunk's first byte when part of it is held from earlier.
    const frameStart = src === this.#unit ? start : off;

    if (opcode === Opcode.CLOSE) {
      let code = 1005;
      let reason = '';
      if (plen >= 2) {
        code = (CONTROL_PAYLOAD[0]! << 8) | CONTROL_PAYLOAD[1]!;
        if (!isValidCloseCode(code)) return this.#fail('bad_close_code', frameStart);
        if (plen > 2) {
          if (!isUtf8(CONTROL_PAYLOAD.subarray(2, plen))) return this.#fail('bad_close_reason', frameStart);
          reason = CONTROL_PAYLOAD.toString('utf8', 2, plen);
        }
      }
      this.closes++;
      this.closeCode = code;
      this.closeReason = reason;
    } else if (opcode === Opcode.PING) this.pings++;
    else this.pongs++;
    this.#control = (opcode << 8) | plen;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- a marker of whose payload the scratch holds
    controlOwner = this;

    if ((this.stopOn & (1 << opcode)) !== 0) {
      this.#state = S_PENDING; // push(chunk, frameStart) releases the held bytes (if any), dropControl() drops them
      this.#remaining = end;
      this.stop = Stop.CONTROL;
      return frameStart;
    }
    this.#state = S_HEADER;
    if (src === this.#unit) this.#release();
    return -1;
  }

  /** Keeps the start of a header (1..13 bytes at the end of the chunk) for the next push(). */
  #holdHeader(chunk: Buffer, pos: number): number {
    const unit = (this.#unit = Buffer.allocUnsafeSlow(UNIT_SIZE));
    const n = chunk.copy(unit, 0, pos);
    this.#units = n | (n << 8);
    return pos;
  }

  /** Only the held bytes stay in #unit; those copied from the current chunk will be read from it again. */
  #forgetCopied(): void {
    const held = this.#units & 0xff;
    this.#units = held | (held << 8);
    if (held === 0) this.#unit = null;
  }

  /** Held bytes become relayable (they precede the current chunk's). */
  #release(): void {
    const held = this.#units & 0xff;
    if (held > 0) this.#released = this.#unit!.subarray(0, held);
    this.#unit = null;
    this.#units = 0;
  }

  #pauseHere(pos: number): number {
    this.#bits &= ~B_PAUSE;
    this.stop = Stop.BOUNDARY;
    return pos;
  }

  /** Stops for good at the start of the offending frame; held bytes stay held (a lenient relay gets them next). */
  #fail(failure: Failure, frameStart: number): number {
    this.failure = failure;
    this.#state = S_FAILED;
    this.stop = Stop.FAILED;
    return frameStart;
  }
}

/** 2, plus 2 or 8 for an extended length, plus 4 for a masking key. */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return (len7 < 126 ? 2 : len7 === 126 ? 4 : 10) + ((b1 & 0x80) >>> 5);
}

/** Close codes allowed on the wire, as ws's isValidStatusCode (RFC 6455 §7.4, IANA registry). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** Whether the last control frame the tracker completed is a pong carrying `payload` (wsgate's own ping's). */
export function pongMatches(tracker: FrameTracker, payload: Uint8Array): boolean {
  return tracker.controlOpcode === Opcode.PONG && tracker.controlPayloadEquals(payload);
}

/**
 * A control frame as wsgate sends it: FIN set, masked with a random key (crypto.randomFillSync) when it goes to a
 * server (wsgate acting as client), unmasked when it goes to a client. Throws on a payload over 125 bytes.
 */
export function controlFrame(opcode: number, payload: Uint8Array, masked: boolean): Buffer {
  if (opcode < Opcode.CLOSE || opcode > Opcode.PONG) throw new RangeError(`not a control opcode: ${opcode}`);
  const n = payload.length;
  if (n > 125) throw new RangeError(`control frame payload of ${n} bytes (at most 125)`);
  const hl = masked ? 6 : 2;
  const frame = Buffer.allocUnsafe(hl + n);
  frame[0] = 0x80 | opcode;
  frame[1] = (masked ? 0x80 : 0) | n;
  if (masked) {
    randomFillSync(frame, 2, 4);
    for (let i = 0; i < n; i++) frame[hl + i] = payload[i]! ^ frame[2 + (i & 3)]!;
  } else frame.set(payload, hl);
  return frame;
}

export function pingFrame(payload: Uint8Array, masked: boolean): Buffer {
  return controlFrame(Opcode.PING, payload, masked);
}

/**
 * A close frame with `code` and `reason`; the reason is cut to 123 bytes of UTF-8 at a character boundary.
 * Throws on a code that may not be sent (isValidCloseCode).
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  if (!isValidCloseCode(code)) throw new RangeError(`close code ${code} may not be sent`);
  const text = Buffer.from(reason, 'utf8');
  let cut = Math.min(text.length, 123);
  while (cut < text.length && cut > 0 && (text[cut]! & 0xc0) === 0x80) cut--;
  const payload = Buffer.allocUnsafe(2 + cut);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2, 0, cut);
  return controlFrame(Opcode.CLOSE, payload, masked);
}
