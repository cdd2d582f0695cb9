// Connection limits per route rule (maxConnections) and per client IP on that rule (maxConnectionsPerClient).
// Counters are keyed by the rule's id, so they carry across table swaps; they count this process's connections.
export class ConnectionLimits {
  readonly #total = new Map<string, number>();
  readonly #perClient = new Map<string, number>();

  /**
   * Takes a slot if both limits allow it (0 = unlimited). Returns false, changing nothing, when a limit is reached.
   * Every successful tryAcquire must be paired with one release.
   */
  tryAcquire(routeId: string, clientIP: string, maxConnections: number, maxPerClient: number): boolean {
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
    dec(this.#total, routeId);
    dec(this.#perClient, `${routeId}\0${clientIP}`);
  }

  active(routeId: string): number {
    return this.#total.get(routeId) ?? 0;
  }
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}
