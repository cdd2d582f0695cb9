// The request rate per client IP (issue 12): a token bucket per route rule and client, refilled at
// rateLimit.requestsPerSecond up to rateLimit.burst. Every WebSocket handshake and every plain HTTP request on a
// limited rule takes one token; without one it is answered 429 with Retry-After (the seconds until a token is back),
// before anything reaches the auth service or a backend. This is the reconnect-storm guard, and what
// ingress-nginx's limit-rps (with limit-burst-multiplier) and limit-rpm map to.
//
// A rate means the same whatever --workers says: it is per pod, like the connection limits (limits.ts).
//  - One process: the buckets live here and take() answers at once.
//  - Several workers: each worker asks the primary (src/cluster/rate-budget.ts), which holds the one set of
//    buckets, in one IPC round trip; only limited rules pay it. Across replicas the rates add up, as they do for
//    nginx instances.
// Buckets that have refilled completely are forgotten by a sweep every 10 s: a full bucket is what a new one is.

/** Where a worker's tokens come from: the primary's buckets, over IPC. */
export interface RateBudget {
  /** Resolves 0 when a token was taken, else the whole seconds until one is back (>= 1). */
  take(routeId: string, clientIP: string, requestsPerSecond: number, burst: number): Promise<number>;
}

interface Bucket {
  tokens: number;
  /** performance.now() of the last refill. */
  at: number;
  readonly rate: number;
  readonly burst: number;
}

const SWEEP_MS = 10_000;

export class RateLimiter {
  readonly #budget: RateBudget | undefined;
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;

  /**
   * @param budget Several workers: the primary's buckets. Without one, this process counts alone.
   * @param now [performance.now] The clock, in ms (tests).
   */
  constructor(budget?: RateBudget, now: () => number = () => performance.now()) {
    this.#budget = budget;
    this.#now = now;
    this.#timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  /** 0 when admitted, else the seconds until a token is back. A Promise only with a budget. */
  take(routeId: string, clientIP: string, requestsPerSecond: number, burst: number): number | Promise<number> {
    if (requestsPerSecond <= 0) return 0;
    if (this.#budget !== undefined) return this.#budget.take(routeId, clientIP, requestsPerSecond, burst);
    return this.takeNow(routeId, clientIP, requestsPerSecond, burst);
  }

  /** take(), counted here: one process, or the primary's buckets themselves. */
  takeNow(routeId: string, clientIP: string, requestsPerSecond: number, burst: number): number {
    if (requestsPerSecond <= 0) return 0;
    const size = Math.max(1, burst);
    const key = `${routeId}\0${clientIP}`;
    const now = this.#now();
    let b = this.#buckets.get(key);
    // A rule whose rate changed starts a fresh bucket: the old one's tokens were counted at another rate.
    if (b === undefined || b.rate !== requestsPerSecond || b.burst !== size) {
      b = { tokens: size, at: now, rate: requestsPerSecond, burst: size };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(size, b.tokens + ((now - b.at) / 1000) * requestsPerSecond);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / requestsPerSecond));
  }

  /** Forgets buckets that are full again. */
  sweep(): void {
    const now = this.#now();
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * b.rate >= b.burst) this.#buckets.delete(key);
    }
  }

  /** Buckets held (tests of the sweep). */
  get size(): number {
    return this.#buckets.size;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
