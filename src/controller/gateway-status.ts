// [issue 14] The Gateway API status to write, from translate()'s and what each object says now. Pure: the clock
// comes in as an argument; each function returns undefined when the object already says it, so a resync that
// changes nothing writes nothing.
//
// lastTransitionTime is kept while a condition's status stays (Kubernetes' convention); it moves only when the
// status does. A route's status.parents is shared by every controller its parentRefs name: only the entries whose
// controllerName is wsgate's are replaced (and removed when wsgate no longer answers for that parent); the others
// are kept as they are, in their place.
import { isDeepStrictEqual } from 'node:util';
import type { GatewayCondition, GatewayStatus, ParentReference, RouteParentStatus, RouteStatus } from '../api/gateway-api.ts';
import type { GatewayAPIStatuses } from '../translate/snapshot.ts';
import { rfc3339 } from './status.ts';

/** Conditions as computed, each with the lastTransitionTime of the same type in `previous` when its status is the same. */
export function withTransitionTimes(previous: readonly GatewayCondition[] | undefined, computed: readonly GatewayCondition[], now: Date): GatewayCondition[] {
  const before = new Map((previous ?? []).map((c) => [c.type, c]));
  return computed.map((c) => {
    const old = before.get(c.type);
    const lastTransitionTime = old !== undefined && old.status === c.status && typeof old.lastTransitionTime === 'string' ? old.lastTransitionTime : rfc3339(now);
    return { type: c.type, status: c.status, reason: c.reason, message: c.message.slice(0, 32768), observedGeneration: c.observedGeneration ?? 0, lastTransitionTime };
  });
}

type ClassStatus = GatewayAPIStatuses['gatewayClasses'][number];

export interface GatewayClassStatusBody {
  conditions: GatewayCondition[];
  supportedFeatures: { name: string }[];
}

/** A GatewayClass's status (Accepted; supportedFeatures), or undefined when it says so already. */
export function gatewayClassStatusUpdate(
  current: { conditions?: GatewayCondition[]; supportedFeatures?: { name: string }[] } | undefined,
  computed: ClassStatus,
  now: Date,
): GatewayClassStatusBody | undefined {
  const next: GatewayClassStatusBody = {
    conditions: withTransitionTimes(current?.conditions, computed.conditions, now),
    supportedFeatures: computed.supportedFeatures.map((name) => ({ name })),
  };
  return same(current, next) ? undefined : next;
}

/** A Gateway's status (addresses, conditions, listeners), or undefined when it says so already. */
export function gatewayStatusUpdate(current: GatewayStatus | undefined, computed: Required<GatewayStatus>, now: Date): Required<GatewayStatus> | undefined {
  const listeners = computed.listeners.map((l) => ({
    ...l,
    conditions: withTransitionTimes(current?.listeners?.find((x) => x.name === l.name)?.conditions, l.conditions, now),
  }));
  const next: Required<GatewayStatus> = {
    addresses: computed.addresses.map((a) => ({ type: a.type, value: a.value })),
    conditions: withTransitionTimes(current?.conditions, computed.conditions, now),
    listeners,
  };
  return same(current, next) ? undefined : next;
}

/** Whether two parentRefs name the same parent (group, kind, namespace, name, sectionName, port; defaults filled). */
export function sameParent(a: ParentReference, b: ParentReference, routeNamespace: string): boolean {
  const norm = (p: ParentReference): unknown[] => [
    p.group ?? 'gateway.networking.k8s.io',
    p.kind ?? 'Gateway',
    p.namespace || routeNamespace,
    p.name,
    p.sectionName ?? '',
    p.port ?? 0,
  ];
  return isDeepStrictEqual(norm(a), norm(b));
}

/**
 * A route's status with wsgate's entries replaced by `ours` (each keeping the transition times of the entry for
 * the same parent), the other controllers' entries left in place; undefined when it says so already.
 */
export function routeStatusUpdate(
  current: RouteStatus | undefined,
  ours: readonly RouteParentStatus[],
  controllerName: string,
  routeNamespace: string,
  now: Date,
): RouteStatus | undefined {
  const existing = current?.parents ?? [];
  const mine = existing.filter((p) => p.controllerName === controllerName);
  const others = existing.filter((p) => p.controllerName !== controllerName);
  const next = ours.map((p) => {
    const before = mine.find((m) => sameParent(m.parentRef, p.parentRef, routeNamespace));
    return { parentRef: { ...p.parentRef }, controllerName, conditions: withTransitionTimes(before?.conditions, p.conditions, now) };
  });
  const parents = [...others, ...next];
  if (existing.length === parents.length && same(existing, parents)) return undefined;
  return { parents };
}

/** Equal as JSON would carry them: an absent member and an undefined one are the same. */
function same(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a ?? null)), JSON.parse(JSON.stringify(b ?? null)));
}
