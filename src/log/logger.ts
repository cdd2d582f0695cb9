// The logger is created in the entry point and passed down (child loggers per component); nothing logs at import.
//
// Lines are written asynchronously (pino's sonic-boom destination, through libuv's thread pool), and the access log
// in batches. The access log is one line per connection (`tunnel closed`) or plain request (`request`); written one
// write(2) each, it was about 14 % of a short WebSocket session's CPU (docs/benchmarks.md, the handshake path). So:
//  - an access-log line waits until 4 KiB of lines are pending or FLUSH_INTERVAL_MS has passed, whichever is first;
//  - any other line is written at the end of the event-loop turn that logged it, together with every line pending
//    before it, in order: operational lines (warnings, readiness, draining) are as prompt as with a write per line,
//    and keep their order against a primary's or a worker's lines on the same stdout;
//  - whatever is pending is written on logger.flush(), and synchronously when the process exits (pino does that for
//    its destination). A process killed by SIGKILL loses at most FLUSH_INTERVAL_MS of access-log lines;
//  - no write carries more than PIPE_BUF bytes, and every write ends at the end of a line. stdout is one pipe shared
//    by the primary and every worker (in a pod, the container runtime's); the kernel writes up to PIPE_BUF bytes to
//    a pipe at once (pipe(7)), a longer write in pieces, between which another process's lines can land: a line
//    cut in two by another's, which no log collector can parse. So a batch is written before a line would take it
//    over PIPE_BUF, and sonic-boom, which joins what it is given into one write while the previous one is in flight,
//    joins no more than PIPE_BUF bytes (maxWrite). A single line longer than PIPE_BUF is written alone.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The most bytes one write(2) to a pipe carries at once, whole (pipe(7); 4096 on Linux). */
export const PIPE_BUF = 4096;
/** Access-log lines pending past this size (bytes) are written at once. */
export const BATCH_BYTES = PIPE_BUF;
/** An access-log line is written within this time (ms), however few follow it. */
export const FLUSH_INTERVAL_MS = 200;
/** How pino ends an access-log line (it writes `msg` last). */
const ACCESS_LINE_ENDS = ['"msg":"tunnel closed"}\n', '"msg":"request"}\n'];

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime },
    destination ?? batchedStdout(),
  );
}

/** stdout, asynchronous; the access log batched (see the top of this file). */
function batchedStdout(): DestinationStream {
  const sonic = pino.destination({ fd: 1, sync: false, maxWrite: PIPE_BUF });
  const write = sonic.write.bind(sonic);
  const flush = sonic.flush.bind(sonic);
  const flushSync = sonic.flushSync.bind(sonic);
  let pending = '';
  let pendingBytes = 0;
  let endOfTurn = false;
  let timer: NodeJS.Timeout | undefined;
  const handOver = (): void => {
    endOfTurn = false;
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending === '') return;
    const lines = pending;
    pending = '';
    pendingBytes = 0;
    write(lines);
  };
  // pino calls write() per line, flush() from logger.flush() and before exit, flushSync() at exit.
  sonic.write = (line: string): boolean => {
    const bytes = Buffer.byteLength(line);
    // The batch so far goes first when this line would take it over PIPE_BUF: writes end at line ends.
    if (pendingBytes > 0 && pendingBytes + bytes > PIPE_BUF) handOver();
    pending += line;
    pendingBytes += bytes;
    if (!ACCESS_LINE_ENDS.some((end) => line.endsWith(end))) {
      if (!endOfTurn) {
        endOfTurn = true;
        setImmediate(handOver);
      }
    } else if (pendingBytes >= BATCH_BYTES) handOver();
    else timer ??= setTimeout(handOver, FLUSH_INTERVAL_MS).unref();
    return true;
  };
  sonic.flush = (cb?: (err?: Error) => unknown): void => {
    handOver();
    flush(cb);
  };
  sonic.flushSync = (): void => {
    handOver();
    flushSync();
  };
  return sonic;
}

/** A logger that writes nothing, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
