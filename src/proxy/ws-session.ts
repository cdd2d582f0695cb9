// The WebSocket-aware part of an L7 tunnel: one FrameTracker per direction (ws-frames.ts), and what wsgate does
// with what they see. Payload bytes are never copied or unmasked; the relayed bytes are exactly the bytes received,
// except for the frames wsgate injects or swallows on purpose:
//  - pings it sends to a quiet side (keepalive), and the pongs that answer them (recognised by payload, swallowed);
//  - close frames it sends: 1001 when it ends a tunnel (idle timeout, dead peer, drain), 1002/1007 to the side that
//    broke the protocol, 1009 to the side that sent a message over the limit, 1008 over the message rate;
//  - during a drain's close handshake, the backend's answer to the client's close (the client already has one).
// Frames are injected only at a frame boundary of the stream they go into; control frames may go between the
// fragments of a message (RFC 6455 §5.4).
//
// The relay (relay.ts) hands every chunk read from a side to forward(); the registry's sweep calls sweep() once a
// second for keepalive, counters and the idle timeout. A session holds the tunnel, not a closure.
import type { Socket } from 'node:net';
import type { Policy } from '../model/table.ts';
import type { Outcome } from './outcomes.ts';
import {
  closeFrame,
  FAILURE_CLOSE_CODES,
  FrameTracker,
  Opcode,
  pingFrame,
  pongMatches,
  RSV1,
  Stop,
  StopOn,
  type Failure,
} from './ws-frames.ts';

/** What a session needs from its tunnel: the two sockets, and a way to end the tunnel with an outcome. */
export interface SessionOwner {
  readonly client: Socket;
  readonly upstream: Socket;
  /** The sockets are being closed by wsgate (close frames sent, FIN to follow): count this outcome. */
  closing(outcome: Outcome): void;
  /** The client must stop reading (throttled): the rest of its last chunk waits in the session. */
  throttle(): void;
  /** A token has returned: relay the held chunk from `at` (through forward()), then let the client read again. */
  unthrottle(chunk: Buffer, at: number): void;
  /** A side broke RFC 6455 (or a limit): for a rate-limited log line; `closed` when the tunnel is being closed. */
  violation(failure: Failure, side: Side, closed: boolean): void;
  /** Writes a frame of wsgate's own into a socket, so that the side waiting for that socket resumes after it. */
  inject(socket: Socket, frame: Buffer): void;
}

/** Who sent the first close frame of the tunnel: wsgate_ws_closes_total{initiator}. */
export type CloseInitiator = 'client' | 'backend' | 'wsgate' | 'none';

/** Why a tunnel was closed for a limit: wsgate_ws_limit_closes_total{limit}. */
export type LimitKind = 'message_size' | 'message_rate';

/** A side of the tunnel. */
export type Side = 'client' | 'backend';

/** Counters a session accumulates between two sweeps; the registry adds them to the metrics and resets them. */
export interface SessionEvents {
  keepaliveTimeouts: { client: number; backend: number };
  limitCloses: { message_size: number; message_rate: number };
  protocolErrors: Map<Failure, number> | undefined;
  throttledMs: number;
}

/** Seconds a close handshake started by wsgate may take before the tunnel is cut. */
export const CLOSE_HANDSHAKE_TIMEOUT_MS = 5_000;

const PING_PREFIX = 0x77; // 'w'
let pingSeq = 0;

/**
 * An id for wsgate's pings toward one side of one tunnel: every ping to that side carries 'w' and this id, so that
 * a pong answering any of them is recognised, however late it comes (RFC 6455 §5.5.3 lets a peer answer an older
 * ping after a newer one, or only the newest). Kept below 2^30 so that it stays a small integer in V8.
 */
function nextPingId(): number {
  pingSeq = (pingSeq % 0x3fffffff) + 1;
  return pingSeq;
}

function pingPayload(id: number): Buffer {
  const p = Buffer.allocUnsafe(5);
  p[0] = PING_PREFIX;
  p.writeUInt32BE(id, 1);
  return p;
}

/** Compared with a pong's payload in place (no allocation per pong). */
const OWN_PONG = Buffer.alloc(5);

/** Whether the control frame `t` just completed is a pong that answers one of wsgate's pings carrying `id`. */
function isOwnPong(t: FrameTracker, id: number): boolean {
  if (id === 0 || t.controlLength !== 5) return false;
  OWN_PONG[0] = PING_PREFIX;
  OWN_PONG.writeUInt32BE(id, 1);
  return pongMatches(t, OWN_PONG);
}

/** The allowed RSV bits for the extensions a 101 negotiated (Sec-WebSocket-Extensions). */
export function allowedRsvOf(rawHeaders: readonly string[]): number {
  let rsv = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'sec-websocket-extensions') continue;
    for (const ext of rawHeaders[i + 1]!.split(',')) {
      const name = ext.split(';')[0]!.trim().toLowerCase();
      // permessage-deflate uses RSV1; an extension wsgate does not know may use any of them.
      rsv |= name === 'permessage-deflate' ? RSV1 : 0x70;
    }
  }
  return rsv;
}

/**
 * A time as whole milliseconds (performance.now() is a double): a small integer is stored in the field itself, where
 * a double is a 16-byte box of its own. Keepalive counts in seconds; a millisecond less changes nothing.
 */
function wholeMs(now: number): number {
  return Math.floor(now);
}

/** Per side: keepalive and a frame queued for the next boundary of the stream toward it. */
class SideState {
  /**
   * bytesRead at the last sweep, and when it last changed (performance.now()). While a ping waits in `queued` for
   * a frame boundary, heardAt is instead when the side last took bytes of the stream toward it (see #keepalive).
   */
  lastRead = -1;
  heardAt = 0;
  /** The id all of wsgate's pings to this side carry (0 until the first one). */
  pingId = 0;
  /** A ping was sent (or queued) and the side has sent nothing since. */
  awaiting = false;
  /** When that ping was written to the side's socket; 0 while it still waits for a frame boundary. */
  pingAt = 0;
  /** While the ping waits: bytes of the stream toward the side that its socket had taken at the last sweep. */
  taken = 0;
  /** A frame to write toward this side at the next frame boundary of that stream. */
  queued: Buffer | null = null;
  /** After the queued frame: end this side's socket (wsgate is closing the tunnel). */
  endAfter = false;
}

/** Throttling state of the client→backend direction (maxMessagesPerSecond). */
class RateState {
  tokens: number;
  refilledAt: number;
  /** The chunk whose next frame waits for a token, and where in it. */
  held: Buffer | null = null;
  heldAt = 0;
  throttledSince = 0;
  timer: NodeJS.Timeout | undefined;

  constructor(capacity: number, now: number) {
    this.tokens = capacity;
    this.refilledAt = now;
  }
}

export class WsSession {
  /**
   * The trackers, client → backend and backend → client; null while parked. A tunnel that relayed nothing since
   * the last sweep lets them go (sweep()): they are at rest (FrameTracker.atRest), so new ones made when bytes
   * come are the same. A quiet WebSocket, which is what most of a gateway's connections are most of the time,
   * keeps about 400 bytes of heap less this way.
   */
  #up: FrameTracker | null = null;
  #down: FrameTracker | null = null;
  /** The stopOn bits of each direction, kept here so that a tracker made later has them. */
  #stopUp = 0;
  #stopDown = 0;
  readonly #allowedRsv: number;
  readonly policy: Policy;
  readonly #owner: SessionOwner;
  readonly #client = new SideState();
  /**
   * Only where the route pings backends (keepalive.toBackend); otherwise made when a close frame is queued toward
   * the backend (#backendSide()). Most routes do not ping backends: a quiet tunnel keeps ~90 bytes less.
   */
  #backend: SideState | null = null;
  #rate: RateState | undefined;
  initiator: CloseInitiator = 'none';
  closeCode = 0;
  closeReason = '';
  /** wsgate sent a close to the client to start a close handshake (drain): the backend's own close is swallowed. */
  #handshaking = false;
  /** wsgate is closing: nothing more is relayed from a failed side. */
  #closing = false;
  events: SessionEvents | undefined;
  /**
   * Set whenever bytes of the endpoints are relayed (never by wsgate's own pings and the pongs answering them):
   * the registry's idle timeout reads and clears it, so that keepalive does not keep an idle tunnel open.
   */
  active = false;
  /** Messages relayed each way over the tunnel's life (for its `tunnel closed` line). */
  messagesUp = 0;
  messagesDown = 0;

  constructor(owner: SessionOwner, policy: Policy, allowedRsv: number, now: number) {
    this.#owner = owner;
    this.policy = policy;
    this.#allowedRsv = allowedRsv;
    if (policy.maxMessagesPerSecond > 0) {
      this.#rate = new RateState(policy.maxMessagesPerSecond, now);
      this.#addStop(true, StopOn.HEADERS);
    }
    this.#client.heardAt = wholeMs(now);
    this.#client.lastRead = owner.client.bytesRead;
    if (policy.keepalive.toBackend && policy.keepalive.intervalSeconds > 0) {
      const b = (this.#backend = new SideState());
      b.heardAt = wholeMs(now);
      b.lastRead = owner.upstream.bytesRead;
    }
  }

  /** The client → backend tracker (made if it is parked). */
  get up(): FrameTracker {
    return (this.#up ??= this.#tracker(true));
  }

  /** The backend → client tracker (made if it is parked). */
  get down(): FrameTracker {
    return (this.#down ??= this.#tracker(false));
  }

  /** A direction's tracker, or null while it is parked (for the counters' flush, which must not make one). */
  tracker(fromClient: boolean): FrameTracker | null {
    return fromClient ? this.#up : this.#down;
  }

  #tracker(fromClient: boolean): FrameTracker {
    const p = this.policy;
    const t = new FrameTracker({
      fromClient,
      allowedRsv: this.#allowedRsv,
      maxMessageBytes: fromClient ? p.maxMessageBytes : p.maxBackendMessageBytes,
    });
    t.stopOn = fromClient ? this.#stopUp : this.#stopDown;
    return t;
  }

  /** Asks a direction's tracker to stop on `bits` (StopOn), now and in any tracker made for it later. */
  #addStop(fromClient: boolean, bits: number): void {
    if (fromClient) this.#stopUp |= bits;
    else this.#stopDown |= bits;
    const t = fromClient ? this.#up : this.#down;
    if (t !== null) t.stopOn |= bits;
  }

  /** Lets go of the trackers that are at rest (the sweep, on a tunnel that relayed nothing since the last one). */
  #park(): void {
    if (this.#up?.atRest === true && this.#rate?.held == null) this.#up = null;
    if (this.#down?.atRest === true) this.#down = null;
  }

  #backendSide(): SideState {
    return (this.#backend ??= new SideState());
  }

  #ev(): SessionEvents {
    return (this.events ??= {
      keepaliveTimeouts: { client: 0, backend: 0 },
      limitCloses: { message_size: 0, message_rate: 0 },
      protocolErrors: undefined,
      throttledMs: 0,
    });
  }

  /**
   * Relays `chunk`, read from the client (fromClient) or the backend, to the other side through its tracker,
   * starting at `start`. Writes go to `peer` with `written` as their callback. Returns false when the direction
   * must stop reading for another reason than the peer's buffer (throttled: the rest of the chunk is held).
   */
  forward(fromClient: boolean, chunk: Buffer, start: number, peer: Socket, written: () => void): boolean {
    const t = fromClient ? this.up : this.down;
    const toward = fromClient ? this.#backend : this.#client;
    const from = fromClient ? this.#client : this.#backend;
    let off = start;
    for (;;) {
      const end = t.push(chunk, off);
      const held = t.takeReleased();
      // Closing: bytes are relayed only up to the boundary where wsgate's close frame goes, then nothing more.
      if (this.#closing && (toward === null || toward.queued === null)) return true;
      if (held !== null) {
        peer.write(held);
        this.active = true;
      }
      if (end > off) {
        peer.write(off === 0 && end === chunk.length ? chunk : chunk.subarray(off, end), written);
        this.active = true;
      }
      this.#noteCloses(fromClient, t);
      switch (t.stop) {
        case Stop.END:
          return true;
        case Stop.BOUNDARY:
          if (toward !== null) this.#flushQueued(toward, peer);
          if (this.#closing) return true;
          off = end;
          continue;
        case Stop.CONTROL: {
          if (t.controlOpcode === Opcode.PONG && from !== null && isOwnPong(t, from.pingId)) {
            // The answer to one of wsgate's own pings: the other side never asked for it. (The tracker keeps
            // stopping on this side's pongs from now on: an answer may come late, after other frames.)
            from.awaiting = false;
            off = t.dropControl();
            continue;
          }
          if (t.controlOpcode === Opcode.CLOSE && !fromClient && this.#handshaking) {
            // The backend's answer to the client's close, in a close handshake wsgate started: the client already
            // has wsgate's close frame, and waits for the TCP close.
            off = t.dropControl();
            continue;
          }
          off = end;
          continue;
        }
        case Stop.HEADER:
          // A new message (continuations and control frames take no token).
          if (fromClient && this.#rate && isDataOpcode(t.opcode)) {
            if (!this.#takeToken(chunk, end)) return false;
          }
          off = end;
          continue;
        case Stop.FAILED:
          if (this.#failed(fromClient, t.failure!)) return true;
          // strict: false: the tracker is a byte pipe from here; the offending frame and the rest of the chunk
          // (and any bytes it held) go on like everything after them.
          off = end;
          continue;
      }
    }
  }

  /** A close frame that passed: the first one names the initiator and the code (wsgate_ws_closes_total). */
  #noteCloses(fromClient: boolean, t: FrameTracker): void {
    if (t.closeCode !== 0 && this.initiator === 'none') {
      this.initiator = fromClient ? 'client' : 'backend';
      this.closeCode = t.closeCode;
      this.closeReason = t.closeReason;
    }
  }

  // --- throttling ------------------------------------------------------------------------------------------------

  /** Takes a token for a new message; without one, holds the chunk from `at` and throttles (or closes). */
  #takeToken(chunk: Buffer, at: number): boolean {
    const r = this.#rate!;
    const rate = this.policy.maxMessagesPerSecond;
    const now = performance.now();
    r.tokens = Math.min(rate, r.tokens + ((now - r.refilledAt) / 1000) * rate);
    r.refilledAt = now;
    if (r.tokens >= 1) {
      r.tokens -= 1;
      return true;
    }
    if (this.policy.onExceed === 'Close') {
      this.#ev().limitCloses.message_rate++;
      this.closeBoth(1008, 'message rate exceeded', 1001, 'limit_exceeded');
      return true;
    }
    // Backpressure: nothing is read from the client until a token returns; nothing is dropped.
    r.held = chunk;
    r.heldAt = at;
    if (r.throttledSince === 0) r.throttledSince = now;
    this.#owner.throttle();
    r.timer = setTimeout(WsSession.#onTokenReturned, Math.ceil(((1 - r.tokens) / rate) * 1000), this);
    return false;
  }

  /** Whether the client is throttled now (its reads wait for a token). */
  get throttled(): boolean {
    return this.#rate?.held != null;
  }

  /**
   * The throttle timer's callback: a function shared by all sessions, given the session as its argument (an arrow
   * function in a field would be a closure and a context on every tunnel, throttled or not: ~100 bytes each).
   */
  static #onTokenReturned(session: WsSession): void {
    session.#unthrottle();
  }

  #unthrottle(): void {
    const r = this.#rate!;
    r.timer = undefined;
    const chunk = r.held;
    if (chunk === null) return;
    r.held = null;
    const now = performance.now();
    r.tokens = Math.min(this.policy.maxMessagesPerSecond, r.tokens + ((now - r.refilledAt) / 1000) * this.policy.maxMessagesPerSecond);
    r.refilledAt = now;
    // The frame the chunk stopped at takes its token now (it is not stopped at again).
    r.tokens = Math.max(0, r.tokens - 1);
    this.#ev().throttledMs += now - r.throttledSince;
    r.throttledSince = 0;
    this.#owner.unthrottle(chunk, r.heldAt);
  }

  // --- closes ----------------------------------------------------------------------------------------------------

  /**
   * A side's frame failed validation (or a limit): count it, and close unless the route is lenient. Returns whether
   * the tunnel is closing (false: lenient, relay on).
   */
  #failed(fromClient: boolean, failure: Failure): boolean {
    const limit = failure === 'message_too_big' || failure === 'unsupported_payload_length';
    this.#owner.violation(failure, fromClient ? 'client' : 'backend', limit || this.policy.strict);
    if (limit) {
      this.#ev().limitCloses.message_size++;
    } else {
      const ev = this.#ev();
      (ev.protocolErrors ??= new Map()).set(failure, (ev.protocolErrors.get(failure) ?? 0) + 1);
      // strict: false counts, and the tracker passes everything on from here (a byte pipe).
      if (!this.policy.strict) return false;
    }
    const code = FAILURE_CLOSE_CODES[failure];
    const outcome: Outcome = limit ? 'limit_exceeded' : 'protocol_error';
    if (fromClient) this.closeBoth(code, '', 1001, outcome);
    else this.closeBoth(1001, '', code, outcome);
    return true;
  }

  /**
   * Ends the tunnel with close frames: `clientCode` toward the client, `backendCode` toward the backend (each at
   * the next frame boundary of its stream), then FIN on both. The registry cuts whatever is left after
   * CLOSE_HANDSHAKE_TIMEOUT_MS.
   */
  closeBoth(clientCode: number, reason: string, backendCode: number, outcome: Outcome): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.initiator === 'none') {
      this.initiator = 'wsgate';
      this.closeCode = clientCode;
    }
    this.#owner.closing(outcome);
    this.#queue(this.#client, closeFrame(clientCode, reason, false), true);
    this.#queue(this.#backendSide(), closeFrame(backendCode, reason, true), true);
  }

  /**
   * Starts a close handshake with the client (a drain): a 1001 goes to the client; its answer goes to the backend,
   * whose own answer is swallowed; both close their TCP. The registry cuts it after CLOSE_HANDSHAKE_TIMEOUT_MS.
   */
  goingAway(outcome: Outcome, code = 1001): void {
    if (this.#closing || this.#handshaking) return;
    this.#handshaking = true;
    if (this.initiator === 'none') {
      this.initiator = 'wsgate';
      this.closeCode = code;
    }
    this.#owner.closing(outcome);
    this.#addStop(false, StopOn.CLOSE);
    this.#queue(this.#client, closeFrame(code, 'going away', false), false);
  }

  /** Whether wsgate has started closing this tunnel (closeBoth or goingAway). */
  get closingStarted(): boolean {
    return this.#closing || this.#handshaking;
  }

  /** Writes `frame` toward a side now if its stream is at a frame boundary, else at the next one. */
  #queue(side: SideState, frame: Buffer, endAfter: boolean): void {
    // A close replaces a ping that was still waiting.
    side.queued = frame;
    side.endAfter = endAfter;
    const toClient = side === this.#client;
    // The tracker of the stream toward the side. A parked one is at rest, at a boundary; a failed one relayed
    // nothing of the frame that failed: its stream ends at a boundary.
    const tracker = toClient ? this.#down : this.#up;
    if (tracker === null || tracker.atFrameBoundary || tracker.failure !== null) {
      this.#flushQueued(side, toClient ? this.#owner.client : this.#owner.upstream);
    } else tracker.pauseAtBoundary = true;
  }

  #flushQueued(side: SideState, socket: Socket): void {
    const frame = side.queued;
    if (frame === null) return;
    side.queued = null;
    if (socket.destroyed || socket.writableEnded) return;
    this.#owner.inject(socket, frame);
    // wsgate's frames are frames on the wire of the stream they join: counted with that stream's
    // (wsgate_ws_frames_total{direction}), as the pongs answering them are counted with the other stream's.
    const stream = side === this.#client ? this.down : this.up;
    const opcode = frame[0]! & 0x0f;
    if (opcode === Opcode.PING) {
      stream.pings++;
      // The timeout runs from here: the side cannot answer a ping it has not been sent.
      side.pingAt = Math.ceil(performance.now()); // whole ms, and never 0 (0: not sent yet)
    } else if (opcode === Opcode.CLOSE) stream.closes++;
    if (side.endAfter) socket.end();
  }

  // --- the sweep -------------------------------------------------------------------------------------------------

  /**
   * Once a second, after the registry has flushed the counters and before it reads `active`: the trackers of a
   * quiet tunnel parked, and keepalive (a ping to a side quiet for intervalSeconds, a dead side after
   * timeoutSeconds more). Returns the side found dead, or undefined.
   */
  sweep(now: number): Side | undefined {
    // Quiet since the last sweep (the registry has just flushed the counters): the trackers go until bytes come.
    if (!this.active && !this.closingStarted) this.#park();
    const ka = this.policy.keepalive;
    if (ka.intervalSeconds <= 0 || this.closingStarted) return undefined;
    if (this.#rate?.held != null) {
      // Throttled: wsgate is not reading what the client has sent (and its pongs wait behind it). It is alive.
      this.#client.lastRead = -1;
    }
    if (this.#keepalive(this.#client, this.#owner.client, false, now, ka.intervalSeconds, ka.timeoutSeconds)) {
      return this.#dead('client');
    }
    if (this.#backend !== null && ka.toBackend && this.#keepalive(this.#backend, this.#owner.upstream, true, now, ka.intervalSeconds, ka.timeoutSeconds)) {
      return this.#dead('backend');
    }
    return undefined;
  }

  /**
   * Returns true when the side is dead:
   *  1. anything the side sent since the last sweep (not only a pong) proves it alive;
   *  2. a ping written to it and unanswered for timeoutSeconds: dead;
   *  3. a ping still waiting for a frame boundary of the stream toward the side (a long message is passing): the
   *     side is alive as long as its socket takes that stream's bytes (a slow reader of a big message is not dead);
   *     dead when it has taken nothing for timeoutSeconds;
   *  4. quiet for intervalSeconds: a ping (queued at the next frame boundary).
   */
  #keepalive(s: SideState, socket: Socket, masked: boolean, now: number, interval: number, timeout: number): boolean {
    const read = socket.bytesRead;
    if (read !== s.lastRead) {
      s.lastRead = read;
      s.heardAt = wholeMs(now);
      s.awaiting = false;
      return false;
    }
    if (s.awaiting) {
      if (s.pingAt > 0) return now - s.pingAt >= timeout * 1000;
      const taken = socket.bytesWritten - socket.writableLength;
      if (taken !== s.taken) {
        s.taken = taken;
        s.heardAt = wholeMs(now);
        return false;
      }
      return now - s.heardAt >= timeout * 1000;
    }
    if (now - s.heardAt < interval * 1000) return false;
    if (s.pingId === 0) s.pingId = nextPingId();
    s.awaiting = true;
    s.pingAt = 0;
    s.taken = socket.bytesWritten - socket.writableLength;
    s.heardAt = wholeMs(now);
    // The tracker of what this side sends stops on its pongs, to swallow those that answer wsgate.
    this.#addStop(!masked, StopOn.PONG);
    this.#queue(s, pingFrame(pingPayload(s.pingId), masked), false);
    return false;
  }

  #dead(side: Side): Side {
    this.#ev().keepaliveTimeouts[side]++;
    // The live side gets a 1001; the dead one gets nothing it could read.
    this.#closing = true;
    if (this.initiator === 'none') {
      this.initiator = 'wsgate';
      this.closeCode = 1001;
    }
    this.#owner.closing('peer_timeout');
    if (side === 'client') {
      this.#queue(this.#backendSide(), closeFrame(1001, 'peer did not answer', true), true);
      this.#owner.client.destroy();
    } else {
      this.#queue(this.#client, closeFrame(1001, 'peer did not answer', false), true);
      this.#owner.upstream.destroy();
    }
    return side;
  }

  /** The tunnel is ending: no timer may outlive it. */
  dispose(): void {
    if (this.#rate?.timer) clearTimeout(this.#rate.timer);
  }
}

function isDataOpcode(opcode: number): boolean {
  return opcode === Opcode.TEXT || opcode === Opcode.BINARY;
}
