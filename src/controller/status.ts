// What status to write, computed from translate's ObjectStatus and what the object says now. Pure: the clock comes
// in as an argument. Each function returns undefined when the object already says it, and the controller writes
// nothing: a resync that changes nothing leaves every resourceVersion where it was.
//
// Conditions follow the Kubernetes convention: lastTransitionTime is the time the condition's status last changed,
// so it is kept when the status is the same (even if the reason, message or observedGeneration moved on).
import type { V1IngressLoadBalancerIngress, V1IngressStatus } from '@kubernetes/client-node';
import type { Condition, RouteStatus, Service } from '../api/types.ts';
import { needsAttention } from '../translate/conditions.ts';
import type { ObjectStatus } from '../translate/snapshot.ts';

/** The status a WebSocketRoute or TCPTunnel should have, or undefined when `current` already has it. */
export function routeStatusUpdate(current: RouteStatus | undefined, computed: ObjectStatus, now: Date): RouteStatus | undefined {
  const previous = new Map((current?.conditions ?? []).map((c) => [c.type, c]));
  const conditions: Condition[] = computed.conditions.map((c) => {
    const before = previous.get(c.type);
    const lastTransitionTime =
      before !== undefined && before.status === c.status && typeof before.lastTransitionTime === 'string'
        ? before.lastTransitionTime
        : rfc3339(now);
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      observedGeneration: computed.observedGeneration,
      lastTransitionTime,
    };
  });
  const next: RouteStatus = { observedGeneration: computed.observedGeneration, conditions };
  return sameRouteStatus(current, next) ? undefined : next;
}

function sameRouteStatus(a: RouteStatus | undefined, b: RouteStatus): boolean {
  if (a === undefined || a.observedGeneration !== b.observedGeneration) return false;
  const ac = a.conditions ?? [];
  const bc = b.conditions ?? [];
  if (ac.length !== bc.length) return false;
  return bc.every((c) => {
    const o = ac.find((x) => x.type === c.type);
    return (
      o !== undefined &&
      o.status === c.status &&
      o.reason === c.reason &&
      o.message === c.message &&
      o.observedGeneration === c.observedGeneration &&
      o.lastTransitionTime === c.lastTransitionTime
    );
  });
}

/** RFC 3339 to the second, as metav1.Time serialises (the API server truncates sub-seconds anyway). */
export function rfc3339(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/**
 * The addresses Ingresses publish in status.loadBalancer. `--publish-address` wins (IPs as `ip`, names as
 * `hostname`); else the `--publish-service`'s load balancer ingress, its externalIPs, or its clusterIP(s).
 */
export function publishedAddresses(o: {
  readonly addresses?: readonly string[];
  readonly service?: Service;
}): V1IngressLoadBalancerIngress[] {
  if (o.addresses !== undefined && o.addresses.length > 0) {
    return o.addresses.map((a) => (isIP(a) ? { ip: a } : { hostname: a }));
  }
  const svc = o.service;
  if (svc === undefined) return [];
  const lb = svc.status?.loadBalancer?.ingress ?? [];
  if (lb.length > 0) {
    return lb.map((i) => (i.ip ? { ip: i.ip } : { hostname: i.hostname ?? '' })).filter((i) => i.ip ?? i.hostname);
  }
  const external = svc.spec?.externalIPs ?? [];
  if (external.length > 0) return external.map((ip) => ({ ip }));
  const cluster = svc.spec?.clusterIPs ?? (svc.spec?.clusterIP ? [svc.spec.clusterIP] : []);
  return cluster.filter((ip) => ip !== '' && ip !== 'None').map((ip) => ({ ip }));
}

function isIP(a: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(a) || a.includes(':');
}

/** The Ingress status to write, or undefined when it already lists exactly these addresses (in order). */
export function ingressStatusUpdate(
  current: V1IngressStatus | undefined,
  addresses: readonly V1IngressLoadBalancerIngress[],
): V1IngressStatus | undefined {
  const now = (current?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip ?? '', hostname: i.hostname ?? '' }));
  const want = addresses.map((i) => ({ ip: i.ip ?? '', hostname: i.hostname ?? '' }));
  const same = now.length === want.length && now.every((x, i) => x.ip === want[i]?.ip && x.hostname === want[i]?.hostname);
  return same ? undefined : { loadBalancer: { ingress: addresses.map((a) => ({ ...a })) } };
}

/** A Warning Event to record for an object whose conditions are not all True, or undefined. */
export interface WarningEvent {
  readonly key: string;
  readonly reason: string;
  readonly message: string;
}

/**
 * One Warning Event per False condition, and per True one with a warning (an unsupported annotation). `key`
 * deduplicates: the same problem on the same generation of the same object is reported once.
 */
export function warningEvents(s: ObjectStatus, uid: string): WarningEvent[] {
  return s.conditions
    .filter((c) => needsAttention(c))
    .map((c) => ({
      key: `${s.kind}/${s.namespace}/${s.name}/${uid}/${s.observedGeneration}/${c.type}/${c.reason}/${c.message}`,
      reason: c.reason,
      message: c.message.slice(0, 1024),
    }));
}
