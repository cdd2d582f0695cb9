// Connection limits per route rule (maxConnections) and per client IP on that rule (maxConnectionsPerClient).
// Counters are keyed by the rule's id, so they carry across table swaps.
//
// A limit means the same whatever --workers says: it is per pod (per wsgate process group), never per worker.
//  - One process (`--workers 1`, the sidecar): this object counts every connection itself; tryAcquire is synchronous.
//  - Several workers: each worker's object is given a SlotBudget that asks the primary (src/cluster/slot-budget.ts),
//    which holds the one count for the pod. Only a connection to a limited rule pays that round trip; a rule without
//    limits is admitted at once, synchronously, and counted nowhere.

/** Where a worker's limited slots come from: the primary's budget, over IPC. */
export interface SlotBudget {
  /** Asks for one slot; resolves false when a limit is reached (nothing is then held). */
  acquire(routeId: string, clientIP: string, maxConnections: number, maxPerClient: number): Promise<boolean>;
  /** Gives back one slot acquire() granted. */
  release(routeId: string, clientIP: string): void;
}

export class ConnectionLimits {
  readonly #budget: SlotBudget | undefined;
  readonly #total = new Map<string, number>();
  readonly #perClient = new Map<string, number>();
  /** With a budget: slots the budget granted, by rule and client, so that release() knows where to give them back. */
  readonly #remote = new Map<string, number>();

  /** [budget] Several workers: the primary's budget. Without one, this process counts alone. */
  constructor(budget?: SlotBudget) {
    this.#budget = budget;
  }

  /**
   * Takes a slot if both limits allow it (0 = unlimited). Returns false, changing nothing, when a limit is reached.
   * A Promise only when a budget is set and the rule is limited. Every successful tryAcquire must be paired with
   * one release.
   */
  tryAcquire(routeId: string, clientIP: string, maxConnections: number, maxPerClient: number): boolean | Promise<boolean> {
    const budget = this.#budget;
    if (budget === undefined) return this.tryAcquireNow(routeId, clientIP, maxConnections, maxPerClient);
    if (maxConnections <= 0 && maxPerClient <= 0) return true;
    const key = `${routeId}\0${clientIP}`;
    return budget.acquire(routeId, clientIP, maxConnections, maxPerClient).then((granted) => {
      if (granted) this.#remote.set(key, (this.#remote.get(key) ?? 0) + 1);
      return granted;
    });
  }

  /** tryAcquire counted here, synchronously: one process, or the primary's budget itself. */
  tryAcquireNow(routeId: string, clientIP: string, maxConnections: number, maxPerClient: number): boolean {
    const total = this.#total.get(routeId) ?? 0;
    if (maxConnections > 0 && total >= maxConnections) return false;
    const ck = `${routeId}\0${clientIP}`;
    const mine = this.#perClient.get(ck) ?? 0;
    if (maxPerClient > 0 && mine >= maxPerClient) return false;
    this.#total.set(routeId, total + 1);
    this.#perClient.set(ck, mine + 1);
    return true;
  }

  release(routeId: string, clientIP: string): void {
    const key = `${routeId}\0${clientIP}`;
    if (this.#budget === undefined) {
      dec(this.#total, routeId);
      dec(this.#perClient, key);
      return;
    }
    // A slot of an unlimited rule was never counted. Should a rule's limits change while connections are open, the
    // first connections to end give back the budget's slots first: the count is right again once they have all ended.
    if ((this.#remote.get(key) ?? 0) > 0) {
      dec(this.#remote, key);
      this.#budget.release(routeId, clientIP);
    }
  }

  /** Connections this object counts on a rule (without a budget). */
  active(routeId: string): number {
    return this.#total.get(routeId) ?? 0;
  }
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
