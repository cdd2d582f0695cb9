// Closes spread over time, so that the clients of a drained proxy, endpoint or route reconnect at N/window per
// second rather than all at once (a reconnect storm). A batch is a set of tunnels and a window: its tunnels are
// closed one after another at even intervals across the window, from its start. The scheduler ticks every
// TICK_MS; it holds tunnels, not timers, so a batch of 50,000 costs one timer.
//
// What "close" means is the registry's (tunnel.ts): a WebSocket gets a 1001 close frame and its close handshake
// (ws-session.ts goingAway), anything else a FIN both ways; either is cut if it has not finished in a few seconds.

/** How often due closes are made (ms): fine enough that a 10 s window of 1,000 closes stays even per second. */
export const TICK_MS = 50;

export interface Drainable {
  /** The batch that will close it, while it is scheduled; cleared when closed or cancelled. */
  drainBatch: DrainBatch | undefined;
}

export class DrainBatch {
  readonly reason: string;
  readonly startedAt: number;
  readonly windowMs: number;
  readonly #items: Drainable[];
  /** Index of the next item to close. */
  #next = 0;
  /** Items after #next that were cancelled (they are skipped when their turn comes). */
  #cancelled = 0;

  constructor(items: Drainable[], windowMs: number, reason: string, now: number) {
    this.#items = items;
    this.windowMs = windowMs;
    this.reason = reason;
    this.startedAt = now;
    for (const it of items) it.drainBatch = this;
  }

  /** Items still to close. */
  get remaining(): number {
    return this.#items.length - this.#next - this.#cancelled;
  }

  /** `item` (one of this batch's, not closed yet) no longer needs closing. */
  cancel(item: Drainable): void {
    if (item.drainBatch !== this) return;
    item.drainBatch = undefined;
    this.#cancelled++;
  }

  /**
   * Hands every item due at `now` to `close`: item i is due at startedAt + i × window / n, so the first goes at
   * once and the last one interval before the window ends. Items cancelled meanwhile are skipped.
   */
  due(now: number, close: (item: Drainable) => void): void {
    const n = this.#items.length;
    const elapsed = now - this.startedAt;
    const upTo = this.windowMs <= 0 ? n : Math.min(n, Math.floor((elapsed * n) / this.windowMs) + 1);
    while (this.#next < upTo) {
      const it = this.#items[this.#next++]!;
      if (it.drainBatch !== this) {
        // Cancelled, or closed by other means meanwhile (closing() clears it without cancel()).
        if (this.#cancelled > 0) this.#cancelled--;
        continue;
      }
      it.drainBatch = undefined;
      close(it);
    }
  }

  get done(): boolean {
    return this.#next >= this.#items.length;
  }
}

/** The batches in progress, ticked together. */
export class DrainScheduler {
  readonly #batches = new Set<DrainBatch>();
  readonly #close: (item: Drainable, reason: string) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(close: (item: Drainable, reason: string) => void) {
    this.#close = close;
  }

  /** Spreads the closes of `items` (those not already scheduled) over `windowMs` from now. */
  schedule(items: readonly Drainable[], windowMs: number, reason: string, now = performance.now()): DrainBatch | undefined {
    const fresh = items.filter((it) => it.drainBatch === undefined);
    if (fresh.length === 0) return undefined;
    const batch = new DrainBatch(fresh, windowMs, reason, now);
    this.#batches.add(batch);
    this.tick(now);
    if (!batch.done) this.#arm();
    return batch;
  }

  /** An item that no longer needs closing (its endpoint came back) stays open. */
  cancel(item: Drainable): void {
    item.drainBatch?.cancel(item);
  }

  /** Makes every close that is due. */
  tick(now = performance.now()): void {
    for (const b of this.#batches) {
      b.due(now, (it) => this.#close(it, b.reason));
      if (b.done) this.#batches.delete(b);
    }
    if (this.#batches.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Closes still scheduled, over every batch. */
  get pending(): number {
    let n = 0;
    for (const b of this.#batches) n += b.remaining;
    return n;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#batches.clear();
  }

  #arm(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), TICK_MS);
    this.#timer.unref();
  }
}
