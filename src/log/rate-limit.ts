// Log lines that clients can cause (a refused handshake, a malformed request) are rate-limited per message: a flood
// of junk traffic must not fill disks or cost more CPU in logging than in refusing. Each message may write
// `perSecond` lines a second; the rest are counted in wsgate_log_lines_suppressed_total{message}, and the next line
// of that message that is written carries `suppressed`: how many were dropped since the last one.
import type { Counter } from 'prom-client';
import type { Logger } from './logger.ts';

type Level = 'info' | 'warn' | 'debug';

interface Window {
  second: number;
  written: number;
  suppressed: number;
  readonly counter: Counter.Internal;
}

export class RateLimitedLog {
  readonly #log: Logger;
  readonly #suppressed: Counter<'message'>;
  readonly #perSecond: number;
  readonly #windows = new Map<string, Window>();

  /** @param perSecond Lines per message per second written before lines are counted instead (default 20). */
  constructor(log: Logger, suppressed: Counter<'message'>, perSecond = 20) {
    this.#log = log;
    this.#suppressed = suppressed;
    this.#perSecond = perSecond;
  }

  info(fields: Record<string, unknown>, message: string): void {
    this.#write('info', fields, message);
  }

  warn(fields: Record<string, unknown>, message: string): void {
    this.#write('warn', fields, message);
  }

  #write(level: Level, fields: Record<string, unknown>, message: string): void {
    if (!this.#log.isLevelEnabled(level)) return;
    const second = Math.floor(performance.now() / 1000);
    let w = this.#windows.get(message);
    if (!w) {
      w = { second, written: 0, suppressed: 0, counter: this.#suppressed.labels({ message }) };
      this.#windows.set(message, w);
    }
    if (w.second !== second) {
      w.second = second;
      w.written = 0;
    }
    if (w.written >= this.#perSecond) {
      w.suppressed++;
      w.counter.inc();
      return;
    }
    w.written++;
    if (w.suppressed > 0) {
      this.#log[level]({ ...fields, suppressed: w.suppressed }, message);
      w.suppressed = 0;
    } else {
      this.#log[level](fields, message);
    }
  }
}
