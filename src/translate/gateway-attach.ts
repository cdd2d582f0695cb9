// [issue 14] Attaching a route to its parents. For each parentRef that names a Gateway of wsgate's (group
// gateway.networking.k8s.io, kind Gateway, namespace defaulting to the route's), the candidate listeners are those
// whose name is the sectionName and whose port is the port, when given (none: NoMatchingParent). The route attaches
// to each candidate that
//   1. routes may attach to (accepted, not conflicted);
//   2. allows the route's kind (supportedKinds) and namespace (allowedRoutes.namespaces: Same, All, Selector);
//   3. shares a hostname with the route (HTTPRoute and TLSRoute; gateway-hostnames.ts).
// Attached somewhere: Accepted=True, and each such listener counts the route in attachedRoutes. Else Accepted=False:
// NoMatchingListenerHostname when hostnames were all that stood in the way, NotAllowedByListeners otherwise.
// A parentRef to anything else (another kind, a Gateway that is not wsgate's or does not exist) gets no status
// from wsgate: it is another controller's to answer.
import type { GatewayRouteKind, ParentReference } from '../api/gateway-api.ts';
import { GATEWAY_GROUP } from '../api/gateway-api.ts';
import { intersectHostnames } from './gateway-hostnames.ts';
import { listOf } from './gateway-refs.ts';
import { attachable, namespaceAllowed, type GatewayView, type ListenerView, type Verdict } from './gateway-listeners.ts';

export interface Attachment {
  readonly gateway: GatewayView;
  readonly listener: ListenerView;
  /** The hostnames the route serves on this listener (`*` = any); empty for TCPRoutes. */
  readonly hostnames: readonly string[];
}

export interface ParentResult {
  /** The parentRef as status repeats it: group, kind and namespace filled in. */
  readonly ref: ParentReference;
  readonly gateway: GatewayView;
  readonly attachments: Attachment[];
  readonly accepted: Verdict;
}

export function attachRoute(
  route: { kind: GatewayRouteKind; namespace: string; parentRefs: readonly ParentReference[] | undefined; hostnames: readonly string[] | undefined },
  gateways: ReadonlyMap<string, GatewayView>,
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>,
): ParentResult[] {
  const out: ParentResult[] = [];
  const hostnames = route.kind === 'TCPRoute' ? [] : (route.hostnames ?? []);
  for (const ref of listOf(route.parentRefs)) {
    const group = ref?.group ?? GATEWAY_GROUP;
    const kind = ref?.kind ?? 'Gateway';
    if (group !== GATEWAY_GROUP || kind !== 'Gateway') continue;
    const namespace = ref.namespace || route.namespace;
    const gateway = gateways.get(`${namespace}/${ref.name ?? ''}`);
    if (gateway === undefined) continue;
    const written: ParentReference = {
      group,
      kind,
      namespace,
      name: ref.name ?? '',
      ...(ref.sectionName !== undefined ? { sectionName: ref.sectionName } : {}),
      ...(ref.port !== undefined ? { port: ref.port } : {}),
    };
    const candidates = gateway.listeners.filter(
      (l) => (ref.sectionName === undefined || l.name === ref.sectionName) && (ref.port === undefined || l.port === ref.port),
    );
    if (candidates.length === 0) {
      const what = [ref.sectionName !== undefined ? `named ${ref.sectionName}` : '', ref.port !== undefined ? `on port ${ref.port}` : ''].filter(Boolean).join(' ');
      out.push({ ref: written, gateway, attachments: [], accepted: { ok: false, reason: 'NoMatchingParent', message: `Gateway ${gateway.key} has no listener ${what}` } });
      continue;
    }
    const attachments: Attachment[] = [];
    let hostnameOnly = true;
    const why: string[] = [];
    for (const l of candidates) {
      if (!attachable(l)) {
        hostnameOnly = false;
        why.push(`listener ${l.name} is not valid`);
        continue;
      }
      if (!l.supportedKinds.includes(route.kind)) {
        hostnameOnly = false;
        why.push(`listener ${l.name} takes ${l.supportedKinds.join(', ') || 'no routes'}, not ${route.kind}`);
        continue;
      }
      if (!namespaceAllowed(l, gateway.namespace, route.namespace, namespaceLabels.get(route.namespace))) {
        hostnameOnly = false;
        why.push(`listener ${l.name} does not allow routes from namespace ${route.namespace}`);
        continue;
      }
      const shared = route.kind === 'TCPRoute' ? [] : intersectHostnames(l.hostname, hostnames);
      if (route.kind !== 'TCPRoute' && shared.length === 0) {
        why.push(`listener ${l.name} (${l.hostname ?? 'any host'}) shares no hostname with the route`);
        continue;
      }
      attachments.push({ gateway, listener: l, hostnames: shared });
    }
    const accepted: Verdict =
      attachments.length > 0
        ? { ok: true, reason: 'Accepted', message: `attached to ${attachments.map((a) => a.listener.name).join(', ')}` }
        : hostnameOnly
          ? { ok: false, reason: 'NoMatchingListenerHostname', message: why.join('; ') }
          : { ok: false, reason: 'NotAllowedByListeners', message: why.join('; ') };
    out.push({ ref: written, gateway, attachments, accepted });
  }
  return out;
}
