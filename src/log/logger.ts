// The logger is created in the entry point and passed down (child loggers per component); nothing logs at import.
//
// Lines are written asynchronously and in batches: the lines logged during one turn of the event loop go to pino's
// asynchronous destination (sonic-boom) together at the end of that turn, as one write(2) through libuv's thread pool
// (and sonic-boom adds to it whatever arrives while a write is in flight). The access log writes one line per
// connection: with a write per line it was about 14 % of a short WebSocket session's CPU (docs/benchmarks.md, the
// handshake path). A line is never held past the turn that logged it, so the order of lines between processes (a
// primary and its workers sharing stdout) and what a reader sees once an event has happened are as with a write
// per line; whatever is pending is written synchronously when the process exits (pino does that for its destination).
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Lines pending in one turn are handed over at once past this size (bytes). */
export const BATCH_BYTES = 16 * 1024;

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime },
    destination ?? batchedStdout(),
  );
}

/** stdout, asynchronous, one write per event-loop turn at most (more only past BATCH_BYTES). */
function batchedStdout(): DestinationStream {
  const sonic = pino.destination({ fd: 1, sync: false });
  const write = sonic.write.bind(sonic);
  const flush = sonic.flush.bind(sonic);
  const flushSync = sonic.flushSync.bind(sonic);
  let pending = '';
  let scheduled = false;
  const handOver = (): void => {
    scheduled = false;
    if (pending === '') return;
    const lines = pending;
    pending = '';
    write(lines);
  };
  // pino calls write() per line, flush() from logger.flush() and before exit, flushSync() at exit.
  sonic.write = (line: string): boolean => {
    pending += line;
    if (pending.length >= BATCH_BYTES) handOver();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(handOver);
    }
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
