// Rebalancing after a scale-out: which live tunnels of one route to close now so that the spread across its
// endpoints comes back within the route's tolerance. Pure: the registry's sweep gives it the route's tunnels,
// its current backends and a budget of closes, and closes what it returns; the balancer (least connections, or the
// consistent hash) places the reconnections.
//
//  - LeastConnections and RoundRobin: each endpoint's fair share is the route's live tunnels × the endpoint's
//    weight / the total weight. An endpoint is over when it holds more than share × (1 + tolerancePercent/100)
//    and at least one tunnel more than its share (so that small numbers do not flap). Tunnels are taken from the
//    endpoint most over its share, one at a time, until none is over or the budget is spent; within an endpoint,
//    the most recently opened first (the ones with the least to lose).
//  - ConsistentHash: a tunnel moves only when its hash key now belongs to another endpoint (the endpoint set
//    changed); counts are not evened out, since moving a client off its owner would break the stickiness.
//  - Cookie (issue 12): nothing moves. The client's affinity cookie names its endpoint, and a client closed to even
//    out the counts would reconnect to that same endpoint; it moves only when its endpoint goes (the endpoint drain).
// Tunnels on an endpoint that is no longer in the route are not this module's business: the endpoint drain
// (endpointDrainSeconds) closes them.
import type { Backend, LoadBalancing, Rebalance } from '../model/table.ts';
import { endpointKey, hashOwner } from './balancer.ts';

export interface RebalanceTunnel {
  /** The endpoint key it is on (`address:port`). */
  readonly backend: string;
  /** ConsistentHash only: what its endpoint was chosen by. */
  readonly hashKey?: string | undefined;
}

export interface RebalanceRoute {
  readonly backends: readonly Backend[];
  readonly rebalance: Rebalance;
  readonly loadBalancing: LoadBalancing;
}

/**
 * @param tunnels The route's live tunnels that are not closing, oldest first.
 * @param budget Closes allowed now (whole closes; the caller accrues maxClosesPerSecond over time).
 */
export function pickRebalanceCloses<T extends RebalanceTunnel>(tunnels: readonly T[], route: RebalanceRoute, budget: number): T[] {
  if (budget < 1 || tunnels.length === 0 || route.loadBalancing.policy === 'Cookie') return [];
  if (route.loadBalancing.policy === 'ConsistentHash') {
    const out: T[] = [];
    for (const t of tunnels) {
      if (out.length >= budget) break;
      if (t.hashKey === undefined) continue;
      const owner = hashOwner(t.hashKey, route.backends);
      if (owner !== undefined && owner !== t.backend) out.push(t);
    }
    return out;
  }
  // The endpoints of the route now, with their weights, and the tunnels on each.
  const weight = new Map<string, number>();
  for (const b of route.backends) {
    if (b.weight <= 0) continue;
    for (const e of b.endpoints) {
      const k = endpointKey(e);
      weight.set(k, (weight.get(k) ?? 0) + b.weight);
    }
  }
  if (weight.size < 2) return [];
  const on = new Map<string, T[]>();
  for (const k of weight.keys()) on.set(k, []);
  let total = 0;
  for (const t of tunnels) {
    const list = on.get(t.backend);
    if (list === undefined) continue;
    list.push(t);
    total++;
  }
  let totalWeight = 0;
  for (const w of weight.values()) totalWeight += w;
  const tolerance = 1 + route.rebalance.tolerancePercent / 100;
  const out: T[] = [];
  while (out.length < budget) {
    let worst: string | undefined;
    let worstExcess = 0;
    for (const [k, list] of on) {
      const share = (total * weight.get(k)!) / totalWeight;
      const excess = list.length - share;
      if (list.length > share * tolerance && excess >= 1 && excess > worstExcess) {
        worst = k;
        worstExcess = excess;
      }
    }
    if (worst === undefined) break;
    out.push(on.get(worst)!.pop()!);
  }
  return out;
}
