// The logger is created in the entry point and passed down (child loggers per component); nothing logs at import.
//
// Lines are written asynchronously and in batches (pino's sonic-boom destination with a minimum write length):
// the access log writes one line per connection, and a write(2) per line through libuv's thread pool cost about as
// much as the rest of a short WebSocket session's own JavaScript (docs/benchmarks.md, 2026-11-26, the handshake path).
// A line waits at most FLUSH_INTERVAL_MS for its batch to fill; every line still buffered is written synchronously
// when the process exits (pino registers that for an asynchronous destination). A process killed by SIGKILL loses
// at most that interval's lines.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Bytes buffered before a write (sonic-boom's minLength): about 15 access-log lines. */
export const BATCH_BYTES = 4096;
/** A buffered line is written within this time (ms), however few lines follow it. */
export const FLUSH_INTERVAL_MS = 200;

export function createLogger(level: LevelWithSilent = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.epochTime },
    destination ?? batchedStdout(),
  );
}

/**
 * stdout, asynchronous and batched. The flush timer only writes when a line arrived since the last tick (an idle
 * process makes no write and no thread-pool round trip), and is unref'd (it never keeps a process alive).
 */
function batchedStdout(): DestinationStream {
  const sonic = pino.destination({ fd: 1, sync: false, minLength: BATCH_BYTES });
  let dirty = false;
  const timer = setInterval(() => {
    if (!dirty) return;
    dirty = false;
    sonic.flush();
  }, FLUSH_INTERVAL_MS);
  timer.unref();
  sonic.on('close', () => clearInterval(timer));
  // pino calls write() per line (and flush() from logger.flush(); flushSync at exit).
  const write = sonic.write.bind(sonic);
  sonic.write = (line: string): boolean => {
    dirty = true;
    return write(line);
  };
  return sonic;
}

/** A logger that writes nothing, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
