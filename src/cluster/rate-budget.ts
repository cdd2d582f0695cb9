// Request rates across workers (issue 12): the primary holds the one set of token buckets per pod (a RateLimiter
// of its own), workers ask it for a token when a request reaches a rate-limited rule (WorkerRate, the RateBudget of
// their RateLimiter). Like the connection slots (slot-budget.ts): one IPC round trip, answered on the primary's
// event loop at once. Tokens are not given back, so a worker that dies owes nothing.
import type { RateBudget } from '../proxy/rate.ts';

export type RateRequest = {
  readonly type: 'rate';
  readonly id: number;
  readonly routeId: string;
  readonly clientIP: string;
  readonly requestsPerSecond: number;
  readonly burst: number;
};
/** `retryAfter` 0 = a token was taken; otherwise the seconds until one is back. */
export type RateAnswer = { readonly type: 'rate-answer'; readonly id: number; readonly retryAfter: number };

export class WorkerRate implements RateBudget {
  readonly #send: (m: RateRequest) => boolean;
  readonly #pending = new Map<number, (retryAfter: number) => void>();
  #nextId = 0;

  /** `send` returns false when the primary cannot be reached. */
  constructor(send: (m: RateRequest) => boolean) {
    this.#send = send;
  }

  take(routeId: string, clientIP: string, requestsPerSecond: number, burst: number): Promise<number> {
    const id = ++this.#nextId;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      // Without the primary there are no buckets: refuse rather than let a storm through.
      if (!this.#send({ type: 'rate', id, routeId, clientIP, requestsPerSecond, burst })) this.answer({ type: 'rate-answer', id, retryAfter: 1 });
    });
  }

  answer(m: RateAnswer): void {
    const resolve = this.#pending.get(m.id);
    this.#pending.delete(m.id);
    resolve?.(m.retryAfter);
  }

  /** The channel to the primary closed: every question still open is refused. */
  disconnected(): void {
    for (const resolve of this.#pending.values()) resolve(1);
    this.#pending.clear();
  }
}
