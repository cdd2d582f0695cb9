// Bursts of changes become one sync: a run starts `delayMs` after the last trigger of a burst, but never later
// than `maxDelayMs` after its first, so a steady trickle of changes cannot postpone a sync for ever. Runs never
// overlap: a trigger during a run starts a new burst, which fires after the run has finished.

/** When a burst fires: `delayMs` after its last trigger, capped at `maxDelayMs` after its first. */
export function fireAt(firstAt: number, lastAt: number, delayMs: number, maxDelayMs: number): number {
  return Math.min(lastAt + delayMs, firstAt + Math.max(maxDelayMs, delayMs));
}

export interface DebouncerOptions {
  /** Quiet time after the last trigger before a run (ms). */
  readonly delayMs: number;
  /** Longest a trigger waits for its run, however many follow it (ms); at least delayMs. */
  readonly maxDelayMs: number;
  readonly run: () => Promise<void>;
  /** Called with whatever `run` throws; the debouncer carries on. */
  readonly onError: (err: unknown) => void;
}

export class Debouncer {
  readonly #o: DebouncerOptions;
  #firstAt: number | undefined;
  #lastAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(o: DebouncerOptions) {
    this.#o = o;
  }

  /** A run is scheduled or in progress. */
  get pending(): boolean {
    return this.#timer !== undefined || this.#running !== undefined;
  }

  trigger(): void {
    if (this.#stopped) return;
    const now = Date.now();
    this.#firstAt ??= now;
    this.#lastAt = now;
    if (this.#running === undefined) this.#schedule();
  }

  /** Runs now (after any run in progress), whatever is pending. */
  async flush(): Promise<void> {
    await this.#running;
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#firstAt = undefined;
    await this.#runOnce();
  }

  /** No more runs; resolves when a run in progress has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #schedule(): void {
    if (this.#firstAt === undefined) return;
    clearTimeout(this.#timer);
    const at = fireAt(this.#firstAt, this.#lastAt, this.#o.delayMs, this.#o.maxDelayMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#firstAt = undefined;
      void this.#runOnce();
    }, Math.max(0, at - Date.now()));
  }

  #runOnce(): Promise<void> {
    const running = (async () => {
      try {
        await this.#o.run();
      } catch (err) {
        this.#o.onError(err);
      }
    })();
    this.#running = running;
    return running.then(() => {
      this.#running = undefined;
      if (!this.#stopped) this.#schedule();
    });
  }
}
