// Chooses the endpoint for a new connection. Connections live for hours, so the default is least connections:
// it counts live tunnels per endpoint across the whole process (and across table swaps), which connect-time
// round robin cannot. ConsistentHash uses weighted rendezvous hashing, so that an endpoint leaving moves only
// the clients that were on it.
import { createHash } from 'node:crypto';
import type { Backend, Endpoint, LoadBalancing } from '../model/table.ts';

export interface Pick {
  readonly endpoint: Endpoint;
  /** `address:port`, the key under which live connections are counted. */
  readonly key: string;
  readonly backend: string;
}

/** What a consistent hash may be computed from; only the part the route's hashOn names is read. */
export interface HashInput {
  readonly clientIP: string;
  readonly header?: (name: string) => string | undefined;
  readonly cookie?: (name: string) => string | undefined;
  /** A query parameter of the request-target. */
  readonly query?: (name: string) => string | undefined;
  /** Cookie policy: the endpoint key the request's affinity cookie names (affinity.ts), if it is one of the route's. */
  readonly preferred?: string | undefined;
}

/** Keys of the endpoints of live tables, made once per endpoint object (tables are frozen: an object never changes). */
const keys = new WeakMap<Endpoint, string>();

export function endpointKey(e: Endpoint): string {
  let k = keys.get(e);
  if (k === undefined) {
    k = e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
    keys.set(e, k);
  }
  return k;
}

export class Balancer {
  /** Live connections per endpoint key, process-wide. */
  readonly #active = new Map<string, number>();
  /** Round-robin cursors per route id. */
  readonly #cursors = new Map<string, number>();
  /** [issue 14] Smooth weighted round robin over backends, per route id: each backend's current score. */
  readonly #shares = new Map<string, Map<string, number>>();

  acquire(key: string): void {
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    const n = (this.#active.get(key) ?? 0) - 1;
    if (n <= 0) this.#active.delete(key);
    else this.#active.set(key, n);
  }

  activeOn(key: string): number {
    return this.#active.get(key) ?? 0;
  }

  /** Forgets the round-robin cursors of routes that left the table (ids not in `routeIds`). */
  prune(routeIds: ReadonlySet<string>): void {
    for (const id of this.#cursors.keys()) if (!routeIds.has(id)) this.#cursors.delete(id);
    for (const id of this.#shares.keys()) if (!routeIds.has(id)) this.#shares.delete(id);
  }

  /**
   * [issue 14] The backends a new request or connection of a route with weightPerBackend may use: the one backend
   * whose turn it is (smooth weighted round robin, nginx's: over any window each backend gets its weight's share,
   * evenly spread), or 'invalid' when that is a backendRef that did not resolve (its share answers 500). Other
   * routes get all their backends (weights then count per endpoint).
   */
  backendsFor(route: { readonly id: string; readonly backends: readonly Backend[]; readonly weightPerBackend?: true }): readonly Backend[] | 'invalid' {
    const live = route.backends.filter((b) => b.weight > 0);
    if (route.weightPerBackend !== true || live.length <= 1) {
      return live.length === 1 && live[0]!.invalid === true ? 'invalid' : route.backends;
    }
    let scores = this.#shares.get(route.id);
    if (scores === undefined) {
      scores = new Map();
      this.#shares.set(route.id, scores);
    }
    let total = 0;
    let best: Backend | undefined;
    let bestScore = -Infinity;
    for (const b of live) {
      total += b.weight;
      const score = (scores.get(b.name) ?? 0) + b.weight;
      scores.set(b.name, score);
      if (score > bestScore) {
        best = b;
        bestScore = score;
      }
    }
    scores.set(best!.name, bestScore - total);
    return best!.invalid === true ? 'invalid' : [best!];
  }

  /** Round-robin cursors held (for tests of pruning). */
  get cursors(): number {
    return this.#cursors.size;
  }

  /**
   * Picks an endpoint among the backends' ready endpoints, skipping keys in `exclude` (endpoints that already
   * refused this connection). Returns undefined when none is left.
   */
  pick(
    routeId: string,
    backends: readonly Backend[],
    lb: LoadBalancing,
    input: HashInput,
    exclude?: ReadonlySet<string>,
  ): Pick | undefined {
    const candidates: { endpoint: Endpoint; key: string; backend: string; weight: number }[] = [];
    for (const b of backends) {
      if (b.weight <= 0) continue;
      for (const endpoint of b.endpoints) {
        const key = endpointKey(endpoint);
        if (exclude?.has(key)) continue;
        candidates.push({ endpoint, key, backend: b.name, weight: b.weight });
      }
    }
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) return candidates[0];
    switch (lb.policy) {
      case 'RoundRobin':
        return this.#roundRobin(routeId, candidates);
      case 'ConsistentHash': {
        // No header/cookie on this request: fall back to the client's address, still sticky.
        return rendezvous(hashKey(lb.hashOn, input) ?? input.clientIP, candidates);
      }
      case 'Cookie': {
        // The endpoint the affinity cookie names while it is a candidate (ready, not refused); else a new one.
        const preferred = input.preferred === undefined ? undefined : candidates.find((c) => c.key === input.preferred);
        return preferred ?? this.#leastConnections(routeId, candidates);
      }
      default:
        return this.#leastConnections(routeId, candidates);
    }
  }

  #leastConnections<T extends { key: string; weight: number }>(routeId: string, c: readonly T[]): T {
    // Lowest (active / weight); ties rotate from a cursor so that an idle pool fills evenly.
    const start = this.#advance(routeId, c.length);
    let best = c[start]!;
    let bestScore = this.activeOn(best.key) / best.weight;
    for (let i = 1; i < c.length; i++) {
      const cand = c[(start + i) % c.length]!;
      const score = this.activeOn(cand.key) / cand.weight;
      if (score < bestScore) {
        best = cand;
        bestScore = score;
      }
    }
    return best;
  }

  #roundRobin<T extends { weight: number }>(routeId: string, c: readonly T[]): T {
    // Weighted by repetition: an endpoint of weight w gets w slots in the cycle.
    let total = 0;
    for (const x of c) total += x.weight;
    let slot = this.#advance(routeId, total);
    for (const x of c) {
      if (slot < x.weight) return x;
      slot -= x.weight;
    }
    return c[c.length - 1]!;
  }

  #advance(routeId: string, modulo: number): number {
    const n = this.#cursors.get(routeId) ?? 0;
    this.#cursors.set(routeId, n + 1 >= Number.MAX_SAFE_INTEGER ? 0 : n + 1);
    return n % modulo;
  }
}

/**
 * The endpoint a consistent hash gives `key` among the backends' endpoints now (weighted rendezvous), or undefined
 * when there is none: after endpoints change, only the connections whose owner changed need to move.
 */
export function hashOwner(key: string, backends: readonly Backend[]): string | undefined {
  const candidates: { key: string; weight: number }[] = [];
  for (const b of backends) {
    if (b.weight <= 0) continue;
    for (const e of b.endpoints) candidates.push({ key: endpointKey(e), weight: b.weight });
  }
  if (candidates.length === 0) return undefined;
  return candidates.length === 1 ? candidates[0]!.key : rendezvous(key, candidates).key;
}

/** What a consistent hash of this request is computed from (undefined: the request lacks it; the client IP is used). */
export function hashKey(hashOn: Extract<LoadBalancing, { policy: 'ConsistentHash' }>['hashOn'], input: HashInput): string | undefined {
  switch (hashOn.kind) {
    case 'clientIP':
      return input.clientIP;
    case 'header':
      return input.header?.(hashOn.name);
    case 'cookie':
      return input.cookie?.(hashOn.name);
    case 'query':
      return input.query?.(hashOn.name);
  }
}

function rendezvous<T extends { key: string; weight: number }>(hashKeyValue: string, c: readonly T[]): T {
  let best = c[0]!;
  let bestScore = -Infinity;
  for (const cand of c) {
    const h = createHash('sha1').update(hashKeyValue).update('\0').update(cand.key).digest();
    // A uniform (0,1) from 52 bits; weighted rendezvous score = -w / ln(u).
    const u = (h.readUIntBE(0, 6) * 64 + (h[6]! & 63) + 0.5) / 2 ** 54;
    const score = -cand.weight / Math.log(u);
    if (score > bestScore) {
      best = cand;
      bestScore = score;
    }
  }
  return best;
}
