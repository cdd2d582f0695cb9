// Load generators, each run as a child process (pinned by the caller) that talks to run.ts over IPC:
//   child → {type:'ready', ...}   connections are set up; nothing is measured yet
//   parent → 'go'                 the parent has read the proxy's CPU time; the measured work starts
//   child → {type:'result', ...}  the measured work is over (bounded by count and time)
//   parent → 'exit'               the child closes its sockets and exits
// Modes (the JSON spec in argv[2]):
//   echo      N connections, each a closed loop of S-byte binary messages echoed by the backend; optional per
//             message round-trip times (the latency scenario is echo with one connection)
//   sessions  W concurrent loops of: connect, handshake, one 64-byte echo, close handshake
//   hold      K connections opened and held idle; on 'go', one echo on every connection to prove it is alive
//   l4        C raw TCP connections each reading from the backend's byte source through the tunnel
//   flood     N connections that write 64 KiB messages as fast as the proxy takes them and never read (the echoes
//             pile up): after the result, the parent reads the proxy's RSS before it says 'exit'
import net from 'node:net';
import { OP_BINARY, OP_CLOSE, FrameReader, buildFrame, headEnd } from './frames.ts';

export type LoadSpec =
  | { kind: 'echo'; port: number; conns: number; size: number; durationMs: number; latency: boolean }
  | { kind: 'sessions'; port: number; workers: number; durationMs: number; maxSessions: number }
  | { kind: 'hold'; port: number; count: number; concurrency: number; checkTimeoutMs: number }
  | { kind: 'l4'; port: number; conns: number; durationMs: number; bytesPerConn: number }
  | { kind: 'flood'; port: number; conns: number; durationMs: number };

export interface LoadResult {
  readonly type: 'result';
  /** Completed units: messages, sessions, live connections, or bytes. */
  readonly count: number;
  readonly elapsedMs: number;
  readonly errors: number;
  readonly firstError?: string;
  /** Round-trip percentiles in µs (echo with `latency`). */
  readonly p50Us?: number;
  readonly p99Us?: number;
  /** hold: connections opened, and how many answered the final echo. */
  readonly opened?: number;
  readonly alive?: number;
}

/** What the bench's runLoad() (run.ts) measured around one load child's measured part. */
export interface LoadRun {
  readonly result: LoadResult;
  /** The proxy's CPU seconds, summed over its processes (NaN without a proxy). */
  readonly cpu: number;
  /** CPU seconds of the load generator + backend. */
  readonly loadCpu: number;
  /** How busy the load's core was, every process on it counted (%). */
  readonly loadCoreBusy: number;
  /** How busy the whole machine was, in % of one core (200 = both cores of two). */
  readonly machineBusy: number;
  /** The proxy's CPU seconds per process of its tree (pid → s): a wsgate primary and its workers. */
  readonly byProcess: ReadonlyMap<number, number>;
}

const HOST = '127.0.0.1';
const PATH = '/echo';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

type OnFrame = (opcode: number, payload: Buffer) => void;

/** Opens a WebSocket on raw `net`; resolves once the 101 is read (frames after it go to `onFrame`). */
function openWs(port: number, onFrame: OnFrame): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: HOST, noDelay: true });
    const reader = new FrameReader(onFrame);
    let head: Buffer | null = Buffer.alloc(0);
    socket.on('connect', () => {
      socket.write(
        `GET ${PATH} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      if (head === null) return reader.push(chunk);
      head = Buffer.concat([head, chunk]);
      const end = headEnd(head);
      if (end < 0) return;
      const status = head.subarray(0, 12).toString('latin1');
      const rest = head.subarray(end);
      head = null;
      if (status !== 'HTTP/1.1 101') {
        socket.destroy();
        reject(new Error(`handshake answered ${status}`));
        return;
      }
      resolve(socket);
      if (rest.length > 0) reader.push(rest);
    });
    socket.on('error', (err) => {
      socket.destroy();
      reject(err);
    });
    socket.on('close', () => reject(new Error('closed during handshake')));
  });
}

/** Runs `task(i)` for i in [0, n) with at most `limit` in flight. */
async function pooled(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, limit) }, lane));
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

class Errors {
  count = 0;
  first: string | undefined;
  add(err: unknown): void {
    this.count++;
    this.first ??= err instanceof Error ? err.message : String(err);
  }
}

function waitFor(msg: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (m !== msg) return;
      process.off('message', on);
      resolve();
    };
    process.on('message', on);
  });
}

function send(msg: object): void {
  process.send?.(msg);
}

async function runEcho(spec: Extract<LoadSpec, { kind: 'echo' }>, errors: Errors): Promise<[LoadResult, () => void]> {
  const payload = Buffer.alloc(spec.size, 0x61);
  const frame = buildFrame(OP_BINARY, payload, true);
  const maxSamples = spec.latency ? 2_000_000 : 0;
  const samples = new Float64Array(maxSamples);
  let nSamples = 0;
  let count = 0;
  let running = false;
  const sockets: net.Socket[] = [];
  const sentAt = new Array<bigint>(spec.conns).fill(0n);
  await pooled(spec.conns, 64, async (i) => {
    const socket = await openWs(spec.port, (_op, data) => {
      if (!running) return;
      if (!data.equals(payload)) errors.add(new Error(`echo mismatch (${data.length} bytes)`));
      count++;
      if (spec.latency && nSamples < maxSamples) samples[nSamples++] = Number(process.hrtime.bigint() - sentAt[i]!) / 1000;
      sentAt[i] = spec.latency ? process.hrtime.bigint() : 0n;
      socket.write(frame);
    });
    socket.on('error', (err) => errors.add(err));
    sockets.push(socket);
  });
  send({ type: 'ready' });
  await waitFor('go');
  running = true;
  const t0 = performance.now();
  for (let i = 0; i < sockets.length; i++) {
    sentAt[i] = process.hrtime.bigint();
    sockets[i]!.write(frame);
  }
  await new Promise((r) => setTimeout(r, spec.durationMs));
  running = false;
  const elapsedMs = performance.now() - t0;
  const sorted = samples.subarray(0, nSamples).sort();
  const result: LoadResult = {
    type: 'result',
    count,
    elapsedMs,
    errors: errors.count,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
    ...(spec.latency ? { p50Us: percentile(sorted, 50), p99Us: percentile(sorted, 99) } : {}),
  };
  return [result, () => sockets.forEach((s) => s.destroy())];
}

/** One session: connect, handshake, one echo, close handshake; resolves when the server has closed. */
function session(port: number, frame: Buffer, payload: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let echoed = false;
    let closed = false;
    let socketRef: net.Socket | null = null;
    openWs(port, (op, data) => {
      if (op === OP_BINARY) {
        if (!data.equals(payload)) return reject(new Error('session echo mismatch'));
        echoed = true;
        socketRef?.write(CLOSE_FRAME);
      } else if (op === OP_CLOSE) {
        closed = true;
      }
    }).then(
      (socket) => {
        socketRef = socket;
        socket.removeAllListeners('close');
        socket.removeAllListeners('error');
        socket.on('error', reject);
        socket.on('end', () => socket.end());
        socket.on('close', () => (echoed && closed ? resolve() : reject(new Error('session closed early'))));
        socket.write(frame);
      },
      reject,
    );
  });
}

const CLOSE_FRAME = buildFrame(OP_CLOSE, Buffer.from([0x03, 0xe8]), true);

async function runSessions(spec: Extract<LoadSpec, { kind: 'sessions' }>, errors: Errors): Promise<[LoadResult, () => void]> {
  const payload = Buffer.alloc(64, 0x62);
  const frame = buildFrame(OP_BINARY, payload, true);
  send({ type: 'ready' });
  await waitFor('go');
  const t0 = performance.now();
  const deadline = t0 + spec.durationMs;
  let count = 0;
  let started = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline && started < spec.maxSessions && errors.count < 100) {
      started++;
      try {
        await session(spec.port, frame, payload);
        count++;
      } catch (err) {
        errors.add(err);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.workers }, loop));
  const elapsedMs = performance.now() - t0;
  const result: LoadResult = {
    type: 'result',
    count,
    elapsedMs,
    errors: errors.count,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
  };
  return [result, () => undefined];
}

async function runFlood(spec: Extract<LoadSpec, { kind: 'flood' }>, errors: Errors): Promise<[LoadResult, () => void]> {
  const frame = buildFrame(OP_BINARY, Buffer.alloc(64 * 1024, 0x61), true);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < spec.conns; i++) {
    try {
      const socket = await openWs(spec.port, () => undefined);
      // Never read again: the echoes stay in the kernel's buffers and the proxy's.
      socket.pause();
      socket.on('error', (err) => errors.add(err));
      sockets.push(socket);
    } catch (err) {
      errors.add(err);
    }
  }
  send({ type: 'ready', opened: sockets.length });
  await waitFor('go');
  const t0 = performance.now();
  const end = t0 + spec.durationMs;
  let sent = 0;
  await Promise.all(
    sockets.map(async (s) => {
      while (performance.now() < end && !s.destroyed) {
        sent += frame.length;
        if (!s.write(frame)) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, Math.max(0, end - performance.now()));
            s.once('drain', () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      }
    }),
  );
  const result: LoadResult = {
    type: 'result',
    count: sent,
    elapsedMs: performance.now() - t0,
    errors: errors.count,
    opened: sockets.length,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
  };
  return [result, () => sockets.forEach((s) => s.destroy())];
}

async function runHold(spec: Extract<LoadSpec, { kind: 'hold' }>, errors: Errors): Promise<[LoadResult, () => void]> {
  const payload = Buffer.from('alive?');
  const frame = buildFrame(OP_BINARY, payload, true);
  const sockets: net.Socket[] = [];
  const answered = new Uint8Array(spec.count);
  let alive = 0;
  let checking = false;
  let onAllAlive = (): void => undefined;
  await pooled(spec.count, spec.concurrency, async (i) => {
    try {
      const socket = await openWs(spec.port, (_op, data) => {
        if (!checking || answered[i] === 1 || !data.equals(payload)) return;
        answered[i] = 1;
        if (++alive === sockets.length) onAllAlive();
      });
      socket.on('error', (err) => errors.add(err));
      sockets.push(socket);
    } catch (err) {
      errors.add(err);
    }
  });
  send({ type: 'ready', opened: sockets.length });
  await waitFor('go');
  const t0 = performance.now();
  checking = true;
  const done = new Promise<void>((resolve) => {
    onAllAlive = resolve;
    setTimeout(resolve, spec.checkTimeoutMs);
  });
  for (const s of sockets) s.write(frame);
  if (sockets.length === 0) onAllAlive();
  await done;
  const result: LoadResult = {
    type: 'result',
    count: alive,
    elapsedMs: performance.now() - t0,
    errors: errors.count,
    opened: sockets.length,
    alive,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
  };
  return [result, () => sockets.forEach((s) => s.destroy())];
}

async function runL4(spec: Extract<LoadSpec, { kind: 'l4' }>, errors: Errors): Promise<[LoadResult, () => void]> {
  const sockets = await Promise.all(
    Array.from(
      { length: spec.conns },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ port: spec.port, host: HOST }, () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  send({ type: 'ready' });
  await waitFor('go');
  let bytes = 0;
  let finished = 0;
  const t0 = performance.now();
  let endAt = 0;
  let stopped = false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      stopped = true;
      resolve();
    }, spec.durationMs);
    const header = Buffer.alloc(8);
    header.writeBigUInt64BE(BigInt(spec.bytesPerConn));
    for (const s of sockets) {
      let got = 0;
      s.on('data', (chunk: Buffer) => {
        got += chunk.length;
        bytes += chunk.length;
        if (got === spec.bytesPerConn && ++finished === sockets.length) {
          endAt = performance.now();
          stopped = true;
          clearTimeout(timer);
          resolve();
        }
      });
      s.on('error', (err) => errors.add(err));
      s.on('close', () => {
        if (got < spec.bytesPerConn && !stopped) errors.add(new Error(`tunnel closed after ${got} bytes`));
      });
      s.write(header);
    }
  });
  const elapsedMs = (endAt || performance.now()) - t0;
  const result: LoadResult = {
    type: 'result',
    count: bytes,
    elapsedMs,
    errors: errors.count,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
  };
  return [result, () => sockets.forEach((s) => s.destroy())];
}

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  const errors = new Errors();
  const runners = { echo: runEcho, sessions: runSessions, hold: runHold, l4: runL4, flood: runFlood } as const;
  const run = runners[spec.kind] as (s: LoadSpec, e: Errors) => Promise<[LoadResult, () => void]>;
  const exit = waitFor('exit');
  try {
    const [result, close] = await run(spec, errors);
    send(result);
    await exit;
    close();
  } catch (err) {
    send({ type: 'result', count: 0, elapsedMs: 0, errors: errors.count + 1, firstError: String(err) });
    await exit;
  }
  process.exit(0);
}
