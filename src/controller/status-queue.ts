// Status and Events leave the rebuild path, as Contour's StatusUpdater does: a sync only says what each object's
// status should now be (enqueue), and returns; this queue writes, one request at a time, while the next table is
// built and applied. A slow or failing API server delays status, never routing.
//
//  1. One pending write per key (an object's status, one Event): a newer one replaces it, the latest wins.
//  2. Writes run one at a time, oldest key first; a key written meanwhile is queued again behind the others.
//  3. A write that throws is retried after a backoff (doubling from baseMs up to maxMs), unless a newer write for its
//     key has arrived meanwhile (that one keeps the backoff: a failing server is not hammered).
//  4. Only while `active()` (the leader): otherwise everything pending is dropped; a new leader rewrites all that
//     differs anyway.
import type { Logger } from '../log/logger.ts';
import { describeError } from './informers.ts';

export interface StatusQueueOptions {
  readonly log: Logger;
  /** Writes happen only while this is true (this replica holds the leader Lease). */
  readonly active: () => boolean;
  /** [backoff={ baseMs: 200, maxMs: 30000 }] Delay before retrying a failed write, doubling per failure (ms). */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
}

interface Job {
  readonly key: string;
  readonly write: () => Promise<void>;
  /** Failures so far. */
  failures: number;
  /** performance.now() before which it is not tried. */
  notBefore: number;
}

export class StatusQueue {
  readonly #o: StatusQueueOptions;
  readonly #pending = new Map<string, Job>();
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(o: StatusQueueOptions) {
    this.#o = o;
  }

  /** Step 1: `write` is what `key` should become; it replaces whatever was pending for that key. */
  enqueue(key: string, write: () => Promise<void>): void {
    if (this.#stopped) return;
    const had = this.#pending.get(key);
    this.#pending.set(key, { key, write, failures: had?.failures ?? 0, notBefore: had?.notBefore ?? 0 });
    this.#kick();
  }

  /** Drops the pending write of `key` (an Event whose problem went away). */
  cancel(key: string): void {
    this.#pending.delete(key);
  }

  /** Drops every pending write (leadership lost). A write in flight finishes. */
  clear(): void {
    this.#pending.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Writes pending (not counting one in flight). */
  get size(): number {
    return this.#pending.size;
  }

  /** Resolves once nothing is pending or in flight (or only writes waiting out a backoff). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Nothing more is written: pending writes are dropped, and a write in flight is waited for. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.clear();
    await this.idle();
  }

  #kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
    });
  }

  /** Steps 2 to 4. */
  async #drain(): Promise<void> {
    while (!this.#stopped && this.#pending.size > 0) {
      if (!this.#o.active()) {
        this.clear();
        return;
      }
      const now = performance.now();
      let job: Job | undefined;
      let wake = Infinity;
      for (const j of this.#pending.values()) {
        if (j.notBefore <= now) {
          job = j;
          break;
        }
        wake = Math.min(wake, j.notBefore);
      }
      if (job === undefined) {
        // Everything left waits out a backoff.
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#kick();
        }, wake - now);
        this.#timer.unref();
        return;
      }
      this.#pending.delete(job.key);
      try {
        await job.write();
      } catch (err) {
        job.failures++;
        const { baseMs, maxMs } = this.#o.backoff ?? { baseMs: 200, maxMs: 30_000 };
        const delay = Math.min(maxMs, baseMs * 2 ** (job.failures - 1));
        const newer = this.#pending.get(job.key);
        if (newer) {
          newer.failures = job.failures;
          newer.notBefore = performance.now() + delay;
        } else {
          job.notBefore = performance.now() + delay;
          this.#pending.set(job.key, job);
        }
        this.#o.log.debug({ key: job.key, failures: job.failures, retryInMs: delay, err: describeError(err) }, 'status write to be retried');
      }
    }
  }
}
