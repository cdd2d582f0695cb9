// [issue 14] GatewayClasses and Gateways: which are wsgate's, what each listener is, and their status.
//
// A GatewayClass is wsgate's when its controllerName is wsgate.io/gateway-controller (the snapshot may name
// another); it is Accepted unless it names parameters (wsgate takes none yet: InvalidParameters). A Gateway is
// wsgate's when its gatewayClassName names such a class. Each listener is checked on its own, in this order:
//   1. Accepted: a protocol wsgate speaks (HTTP, HTTPS, TLS with mode Passthrough, TCP; else UnsupportedProtocol),
//      a TLS mode that fits it (else UnsupportedValue), a valid hostname (else UnsupportedValue);
//   2. ResolvedRefs: allowedRoutes.kinds that fit the protocol (the others are left out of supportedKinds:
//      InvalidRouteKinds), and for HTTPS a certificate: a core Secret (else InvalidCertificateRef), in another
//      namespace only with a ReferenceGrant (else RefNotPermitted), of type kubernetes.io/tls with a matching key
//      pair (else InvalidCertificateRef);
//   3. Conflicted: listeners on one port must share a protocol (the first listener in spec order keeps the port,
//      the others are ProtocolConflict) and differ in hostname (a repeated hostname, or a second TCP listener, is
//      HostnameConflict). A conflicted listener is not served.
// Programmed follows: a listener is Programmed when it is served and its Gateway is. The Gateway is Accepted when
// at least one listener is (reason ListenersNotValid when some are not), and Programmed when this translation
// serves it (files) or, in a cluster, when its provisioned proxies are ready and have an address
// (GatewayInfrastructure, from the controller).
import type { Gateway, GatewayClass, GatewayCondition, GatewayRouteKind, LabelSelector, ListenerStatus } from '../api/gateway-api.ts';
import { GATEWAY_CONTROLLER_NAME, GATEWAY_GROUP } from '../api/gateway-api.ts';
import { loadCertificate, type LoadedCertificate } from './certificates.ts';
import { listOf, type ReferenceGrants } from './gateway-refs.ts';
import { normalizeHostname } from './hostnames.ts';
import type { Lookup } from './lookup.ts';

/** What the controller observes of a Gateway's provisioned proxies (docs/gateway-api-design.md). */
export interface GatewayInfrastructure {
  /** status.addresses: the provisioned Service's load-balancer addresses (or its cluster IP). */
  readonly addresses: readonly { readonly type: 'IPAddress' | 'Hostname'; readonly value: string }[];
  /** At least one proxy is ready (its routing table applied). */
  readonly ready: boolean;
}

export interface Verdict {
  readonly ok: boolean;
  readonly reason: string;
  readonly message: string;
}

const OK = (reason: string, message: string): Verdict => ({ ok: true, reason, message });
const NOT = (reason: string, message: string): Verdict => ({ ok: false, reason, message });

export interface ListenerView {
  readonly index: number;
  readonly name: string;
  readonly port: number;
  /** HTTP, HTTPS, TLS, TCP, or what was written (then not accepted). */
  readonly protocol: string;
  /** Lower case; undefined = any host (and always for TCP). */
  readonly hostname: string | undefined;
  readonly supportedKinds: readonly GatewayRouteKind[];
  readonly namespaces: { readonly from: string; readonly selector?: LabelSelector };
  readonly accepted: Verdict;
  readonly resolvedRefs: Verdict;
  conflicted: Verdict | undefined;
  /** HTTPS: the certificate served. */
  readonly certificate?: { readonly secret: string; readonly certPem: string; readonly keyPem: string };
  attachedRoutes: number;
}

export interface GatewayView {
  readonly gateway: Gateway;
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  readonly generation: number;
  readonly created: number;
  /** Why the Gateway itself is not accepted (its class's InvalidParameters; Invalid), or undefined. */
  readonly classProblem: Verdict | undefined;
  readonly listeners: ListenerView[];
}

/** Routes may attach to the listener. */
export function attachable(l: ListenerView): boolean {
  return l.accepted.ok && l.conflicted === undefined;
}

/** The listener is served: routes attach and it has what it needs (an HTTPS certificate). */
export function served(l: ListenerView): boolean {
  return attachable(l) && (l.protocol !== 'HTTPS' || l.certificate !== undefined);
}

const PROTOCOL_KINDS: Readonly<Record<string, readonly GatewayRouteKind[]>> = {
  HTTP: ['HTTPRoute'],
  HTTPS: ['HTTPRoute'],
  TLS: ['TLSRoute'],
  TCP: ['TCPRoute'],
};

/** Our GatewayClasses by name (of `names`, when given), each with its Accepted verdict. */
export function ourGatewayClasses(
  classes: readonly GatewayClass[],
  controllerName = GATEWAY_CONTROLLER_NAME,
  names?: readonly string[],
): Map<string, { cls: GatewayClass; accepted: Verdict }> {
  const out = new Map<string, { cls: GatewayClass; accepted: Verdict }>();
  for (const cls of classes) {
    if (cls.spec?.controllerName !== controllerName || typeof cls.metadata?.name !== 'string') continue;
    if (names !== undefined && !names.includes(cls.metadata.name)) continue;
    const accepted =
      cls.spec.parametersRef === undefined
        ? OK('Accepted', 'GatewayClass is accepted by wsgate')
        : NOT('InvalidParameters', 'spec.parametersRef: wsgate takes no parameters; remove it');
    out.set(cls.metadata.name, { cls, accepted });
  }
  return out;
}

/** What names a Gateway in its view: the object, namespace, name, key, generation and creation time. */
export function gatewayIdentity(gw: Gateway): Pick<GatewayView, 'gateway' | 'namespace' | 'name' | 'key' | 'generation' | 'created'> {
  const namespace = gw.metadata?.namespace || 'default';
  const name = gw.metadata?.name ?? '';
  return {
    gateway: gw,
    namespace,
    name,
    key: `${namespace}/${name}`,
    generation: typeof gw.metadata?.generation === 'number' ? gw.metadata.generation : 0,
    created: timestampMillis(gw.metadata?.creationTimestamp),
  };
}

export function readGateway(
  gw: Gateway,
  classAccepted: Verdict,
  lookup: Lookup,
  grants: ReferenceGrants,
  certificates: Map<string, LoadedCertificate>,
): GatewayView {
  const identity = gatewayIdentity(gw);
  const namespace = identity.namespace;
  const listeners = (Array.isArray(gw.spec?.listeners) ? gw.spec.listeners : []).map((l, index): ListenerView => {
    const field = `spec.listeners[${index}]`;
    const protocol = typeof l?.protocol === 'string' ? l.protocol : '';
    const port = typeof l?.port === 'number' ? l.port : 0;
    const kindsFor = PROTOCOL_KINDS[protocol];
    const base = {
      index,
      name: typeof l?.name === 'string' ? l.name : `listener-${index}`,
      port,
      protocol,
      namespaces: { from: l?.allowedRoutes?.namespaces?.from ?? 'Same', ...(l?.allowedRoutes?.namespaces?.selector ? { selector: l.allowedRoutes.namespaces.selector } : {}) },
      conflicted: undefined,
      attachedRoutes: 0,
    };
    // 1. Accepted.
    if (kindsFor === undefined) {
      return {
        ...base,
        hostname: undefined,
        supportedKinds: [],
        accepted: NOT('UnsupportedProtocol', `${field}.protocol: wsgate serves HTTP, HTTPS, TLS and TCP listeners, not ${JSON.stringify(protocol)}`),
        resolvedRefs: OK('ResolvedRefs', 'all references are resolved'),
      };
    }
    let accepted = OK('Accepted', 'listener is accepted');
    const mode = l?.tls?.mode ?? 'Terminate';
    // A TLS listener in a mode wsgate does not serve takes no route kind (TLSRouteListenerTerminateNotSupported).
    const unservedMode = protocol === 'TLS' && mode !== 'Passthrough';
    if (unservedMode) {
      accepted = NOT('UnsupportedValue', `${field}.tls.mode: a TLS listener is served in mode Passthrough only (TLS termination for TLSRoutes is not supported)`);
    } else if (protocol === 'HTTPS' && mode !== 'Terminate') {
      accepted = NOT('UnsupportedValue', `${field}.tls.mode: an HTTPS listener terminates TLS (mode Terminate)`);
    } else if (port < 1 || port > 65535 || !Number.isInteger(port)) {
      accepted = NOT('UnsupportedValue', `${field}.port: must be a port number 1-65535`);
    }
    let hostname: string | undefined;
    if (protocol !== 'TCP' && l?.hostname !== undefined && l.hostname !== '') {
      hostname = normalizeHostname(l.hostname);
      if (hostname === undefined) accepted = NOT('UnsupportedValue', `${field}.hostname: ${JSON.stringify(l.hostname)} is not a DNS name or *. wildcard`);
    }
    // 2. ResolvedRefs: route kinds, then the certificate.
    let resolvedRefs = OK('ResolvedRefs', 'all references are resolved');
    const kinds: GatewayRouteKind[] = [];
    const asked = l?.allowedRoutes?.kinds;
    if (Array.isArray(asked) && asked.length > 0) {
      const invalid: string[] = [];
      for (const k of asked) {
        const group = k?.group ?? GATEWAY_GROUP;
        const kind = k?.kind as GatewayRouteKind;
        if (group === GATEWAY_GROUP && kindsFor.includes(kind)) {
          if (!kinds.includes(kind)) kinds.push(kind);
        } else invalid.push(`${group}/${String(k?.kind)}`);
      }
      if (invalid.length > 0) {
        resolvedRefs = NOT('InvalidRouteKinds', `${field}.allowedRoutes.kinds: ${protocol} listeners take ${kindsFor.join(', ')}, not ${invalid.join(', ')}`);
      }
    } else kinds.push(...kindsFor);
    let certificate: ListenerView['certificate'];
    if (protocol === 'HTTPS' && accepted.ok) {
      const c = readCertificate(namespace, field, l?.tls?.certificateRefs, lookup, grants, certificates);
      if (c.problem !== undefined && resolvedRefs.ok) resolvedRefs = c.problem;
      certificate = c.certificate;
    }
    return { ...base, hostname, supportedKinds: unservedMode ? [] : kinds, accepted, resolvedRefs, ...(certificate ? { certificate } : {}) };
  });
  markConflicts(listeners);
  return {
    ...identity,
    classProblem: classAccepted.ok ? undefined : NOT(classAccepted.reason, `the GatewayClass is not accepted: ${classAccepted.message}`),
    listeners,
  };
}

function readCertificate(
  namespace: string,
  field: string,
  refs: readonly { group?: string; kind?: string; name?: string; namespace?: string }[] | undefined,
  lookup: Lookup,
  grants: ReferenceGrants,
  cache: Map<string, LoadedCertificate>,
): { certificate?: ListenerView['certificate']; problem?: Verdict } {
  if (listOf(refs).length === 0) {
    return { problem: NOT('InvalidCertificateRef', `${field}.tls.certificateRefs: an HTTPS listener needs a certificate`) };
  }
  let certificate: ListenerView['certificate'];
  let problem: Verdict | undefined;
  listOf(refs).forEach((ref, i) => {
    const at = `${field}.tls.certificateRefs[${i}]`;
    const fail = (v: Verdict): void => {
      problem ??= v;
    };
    const group = ref?.group ?? '';
    const kind = ref?.kind ?? 'Secret';
    const ns = ref?.namespace || namespace;
    const name = ref?.name ?? '';
    if (group !== '' || kind !== 'Secret') return fail(NOT('InvalidCertificateRef', `${at}: ${group === '' ? 'core' : group} ${kind} is not a Secret`));
    if (!grants.allows({ group: GATEWAY_GROUP, kind: 'Gateway', namespace }, { group: '', kind: 'Secret', namespace: ns, name })) {
      return fail(NOT('RefNotPermitted', `${at}: Secret ${ns}/${name} is in another namespace and no ReferenceGrant there allows it`));
    }
    const loaded = loadCertificate(lookup, ns, name, cache);
    if (!loaded.ok) return fail(NOT('InvalidCertificateRef', `${at}: ${loaded.message}`));
    certificate ??= { secret: `${ns}/${name}`, certPem: loaded.certPem, keyPem: loaded.keyPem };
  });
  return { ...(certificate ? { certificate } : {}), ...(problem ? { problem } : {}) };
}

/** Step 3: protocol and hostname conflicts between the accepted listeners of one port. */
function markConflicts(listeners: ListenerView[]): void {
  const byPort = new Map<number, ListenerView[]>();
  for (const l of listeners) {
    if (!l.accepted.ok) continue;
    const list = byPort.get(l.port) ?? [];
    list.push(l);
    byPort.set(l.port, list);
  }
  for (const list of byPort.values()) {
    const first = list[0]!;
    const hostnames = new Map<string, ListenerView>();
    for (const l of list) {
      if (l.protocol !== first.protocol) {
        l.conflicted = NOT('ProtocolConflict', `port ${l.port} is already a ${first.protocol} port of listener ${first.name}`);
        continue;
      }
      const h = l.hostname ?? '';
      const held = hostnames.get(h);
      if (held !== undefined) {
        l.conflicted = NOT(
          'HostnameConflict',
          l.protocol === 'TCP'
            ? `port ${l.port} is already the TCP listener ${held.name}'s`
            : `${h === '' ? 'any host' : h} on port ${l.port} is already listener ${held.name}'s`,
        );
        continue;
      }
      hostnames.set(h, l);
    }
  }
}

/** Whether a route in `namespace` (with labels `nsLabels`) may attach to the listener of a Gateway in `gatewayNamespace`. */
export function namespaceAllowed(l: ListenerView, gatewayNamespace: string, namespace: string, nsLabels: Readonly<Record<string, string>> | undefined): boolean {
  switch (l.namespaces.from) {
    case 'All':
      return true;
    case 'Selector':
      return nsLabels !== undefined && l.namespaces.selector !== undefined && selectorMatches(l.namespaces.selector, nsLabels);
    default:
      return namespace === gatewayNamespace;
  }
}

/** A metav1.LabelSelector against labels: every matchLabels pair and every expression must hold. */
export function selectorMatches(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(typeof sel.matchLabels === 'object' && sel.matchLabels !== null ? sel.matchLabels : {})) if (labels[k] !== v) return false;
  for (const e of listOf(sel.matchExpressions)) {
    const key = e?.key ?? '';
    const has = Object.hasOwn(labels, key);
    const values = e?.values ?? [];
    switch (e?.operator) {
      case 'In':
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

function condition(type: string, v: Verdict, generation: number, trueWhenOk = true): GatewayCondition {
  const status = v.ok === trueWhenOk ? 'True' : 'False';
  return { type, status, reason: v.reason, message: v.message, observedGeneration: generation };
}

/** The Gateway's status: conditions, addresses and one entry per listener, in spec order. */
export function gatewayStatus(
  view: GatewayView,
  infrastructure: ReadonlyMap<string, GatewayInfrastructure> | undefined,
): { conditions: GatewayCondition[]; listeners: ListenerStatus[]; addresses: { type: string; value: string }[] } {
  const g = view.generation;
  const invalid = view.listeners.filter((l) => !attachable(l));
  let accepted: Verdict;
  if (view.classProblem !== undefined) accepted = view.classProblem;
  else if (view.listeners.length > 0 && invalid.length === view.listeners.length) {
    accepted = NOT('ListenersNotValid', `no listener is valid: ${invalid.map((l) => l.name).join(', ')}`);
  } else if (invalid.length > 0) {
    accepted = OK('ListenersNotValid', `listeners not valid (not served): ${invalid.map((l) => l.name).join(', ')}`);
  } else accepted = OK('Accepted', 'Gateway is accepted');
  const infra = infrastructure?.get(view.key);
  const addresses = infra === undefined ? [] : infra.addresses.map((a) => ({ type: a.type, value: a.value }));
  let programmed: Verdict;
  if (!accepted.ok) programmed = NOT('Invalid', 'the Gateway is not accepted');
  else if (Array.isArray(view.gateway.spec?.addresses) && view.gateway.spec.addresses.length > 0) {
    programmed = NOT('AddressNotAssigned', 'spec.addresses: wsgate does not assign static addresses yet; remove them to get one');
  } else if (infrastructure === undefined) programmed = OK('Programmed', 'Gateway is served');
  else if (infra === undefined) programmed = NOT('Pending', 'waiting for the Gateway proxies to be provisioned');
  else if (addresses.length === 0) programmed = NOT('AddressNotAssigned', 'waiting for the proxies\' Service to get an address');
  else if (!infra.ready) programmed = NOT('Pending', 'waiting for a proxy to be ready');
  else programmed = OK('Programmed', 'Gateway is programmed');
  const listeners = view.listeners.map((l): ListenerStatus => {
    const conflicted = l.conflicted;
    const listenerProgrammed = !served(l)
      ? NOT('Invalid', 'listener is not served')
      : programmed.ok
        ? OK('Programmed', 'listener is programmed')
        : NOT('Pending', programmed.message);
    return {
      name: l.name,
      supportedKinds: l.supportedKinds.map((kind) => ({ group: GATEWAY_GROUP, kind })),
      attachedRoutes: l.attachedRoutes,
      conditions: [
        condition('Accepted', l.accepted, g),
        condition('Programmed', listenerProgrammed, g),
        condition('ResolvedRefs', l.resolvedRefs, g),
        conflicted === undefined
          ? { type: 'Conflicted', status: 'False', reason: 'NoConflicts', message: 'no conflicts', observedGeneration: g }
          : { type: 'Conflicted', status: 'True', reason: conflicted.reason, message: conflicted.message, observedGeneration: g },
      ],
    };
  });
  return { conditions: [condition('Accepted', accepted, g), condition('Programmed', programmed, g)], listeners, addresses };
}

export function timestampMillis(value: unknown): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) ? ms : Number.POSITIVE_INFINITY;
}
