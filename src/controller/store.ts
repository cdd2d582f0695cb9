// The objects the controller currently knows, by kind and `namespace/name`, fed by the informers. Every change
// comes out as a StoreEvent (what it was, what it is), which relevance.ts judges; a write that carries the
// resourceVersion already held is no change and yields nothing.
//
// Secrets: only `kubernetes.io/tls` Secrets are ever listed, and of those only the ones routes reference are kept
// whole. The others are kept as metadata (name, namespace, resourceVersion, type: no data), which is enough to
// know a Secret exists; when a route starts referencing one, the controller fetches it (missingSecrets, putSecret).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EndpointSlice, Secret, TCPTunnel, WebSocketRoute } from '../api/types.ts';
import type { Snapshot } from '../translate/snapshot.ts';
import type { Gateway, GatewayClass, HTTPRoute, Namespace, ReferenceGrant, TCPRoute, TLSRoute } from '../api/gateway-api.ts';
import { ALL_KINDS, keyOf, type WatchedKind } from './kinds.ts';

export interface StoreEvent {
  readonly kind: WatchedKind;
  readonly type: 'added' | 'updated' | 'deleted';
  /** Undefined for 'added'. */
  readonly old?: KubernetesObject;
  /** Undefined for 'deleted'. */
  readonly new?: KubernetesObject;
}

export interface StoreOptions {
  /** Whether the Secret `namespace/name` is referenced by a route (and so kept with its data). */
  readonly secretWanted: (key: string) => boolean;
}

export class ObjectStore {
  readonly #byKind = new Map<WatchedKind, Map<string, KubernetesObject>>();
  readonly #secretWanted: (key: string) => boolean;

  constructor(o: StoreOptions) {
    this.#secretWanted = o.secretWanted;
    for (const kind of ALL_KINDS) this.#byKind.set(kind, new Map());
  }

  get(kind: WatchedKind, key: string): KubernetesObject | undefined {
    return this.#objects(kind).get(key);
  }

  list(kind: WatchedKind): KubernetesObject[] {
    return [...this.#objects(kind).values()];
  }

  /** An object from a watch event (added or modified), or from a fetch. */
  upsert(kind: WatchedKind, obj: KubernetesObject): StoreEvent | undefined {
    const objects = this.#objects(kind);
    const key = keyOf(obj);
    const old = objects.get(key);
    const kept = this.#keep(kind, key, obj);
    if (old !== undefined && sameVersion(old, obj) && !(kind === 'Secret' && isStripped(old) && !isStripped(kept))) {
      return undefined;
    }
    objects.set(key, kept);
    return old === undefined ? { kind, type: 'added', new: kept } : { kind, type: 'updated', old, new: kept };
  }

  delete(kind: WatchedKind, obj: KubernetesObject): StoreEvent | undefined {
    const objects = this.#objects(kind);
    const key = keyOf(obj);
    const old = objects.get(key);
    if (old === undefined) return undefined;
    objects.delete(key);
    return { kind, type: 'deleted', old };
  }

  /** A complete list: objects not in it are deleted, the others upserted. */
  replace(kind: WatchedKind, items: readonly KubernetesObject[]): StoreEvent[] {
    const events: StoreEvent[] = [];
    const listed = new Set(items.map(keyOf));
    for (const [key, old] of [...this.#objects(kind)]) {
      if (!listed.has(key)) {
        this.#objects(kind).delete(key);
        events.push({ kind, type: 'deleted', old });
      }
    }
    for (const obj of items) {
      const e = this.upsert(kind, obj);
      if (e !== undefined) events.push(e);
    }
    return events;
  }

  /** Referenced Secrets that exist but are held without their data: the controller fetches these. */
  missingSecrets(referenced: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const key of referenced) {
      const s = this.#objects('Secret').get(key);
      if (s !== undefined && isStripped(s)) out.push(key);
    }
    return out;
  }

  /** Drops the data of Secrets no route references any more. */
  pruneSecrets(referenced: ReadonlySet<string>): void {
    const secrets = this.#objects('Secret');
    for (const [key, s] of secrets) if (!referenced.has(key) && !isStripped(s)) secrets.set(key, strip(s));
  }

  /**
   * The immutable input of translate(): every object held, Secrets only with their data. [issue 14] `gateway`: the
   * Gateway API part — which Gateways the table serves and what the controller observes of their proxies.
   */
  snapshot(
    ingressClassName: string,
    watchIngressWithoutClass = false,
    gateway?: Pick<Snapshot, 'gatewayServed' | 'gatewayInfrastructure' | 'gatewayClassNames'>,
  ): Snapshot {
    return {
      ingressClassName,
      ...(watchIngressWithoutClass ? { watchIngressWithoutClass } : {}),
      ...(gateway !== undefined
        ? {
            ...gateway,
            gatewayClasses: this.list('GatewayClass') as unknown as GatewayClass[],
            gateways: this.list('Gateway') as unknown as Gateway[],
            httpRoutes: this.list('HTTPRoute') as unknown as HTTPRoute[],
            tlsRoutes: this.list('TLSRoute') as unknown as TLSRoute[],
            tcpRoutes: this.list('TCPRoute') as unknown as TCPRoute[],
            referenceGrants: this.list('ReferenceGrant') as unknown as ReferenceGrant[],
            namespaces: this.list('Namespace') as unknown as Namespace[],
          }
        : {}),
      ingressClasses: this.list('IngressClass'),
      ingresses: this.list('Ingress'),
      webSocketRoutes: this.list('WebSocketRoute') as unknown as WebSocketRoute[],
      tcpTunnels: this.list('TCPTunnel') as unknown as TCPTunnel[],
      services: this.list('Service'),
      endpointSlices: this.list('EndpointSlice') as EndpointSlice[],
      secrets: (this.list('Secret') as Secret[]).filter((s) => !isStripped(s)),
    };
  }

  #objects(kind: WatchedKind): Map<string, KubernetesObject> {
    const m = this.#byKind.get(kind);
    if (m === undefined) throw new Error(`unknown kind ${kind}`);
    return m;
  }

  #keep(kind: WatchedKind, key: string, obj: KubernetesObject): KubernetesObject {
    if (kind !== 'Secret' || this.#secretWanted(key)) return obj;
    return strip(obj);
  }
}

const STRIPPED = Symbol('stripped');

function strip(obj: KubernetesObject): KubernetesObject {
  const m = obj.metadata ?? {};
  const s: KubernetesObject & { type?: string; [STRIPPED]?: true } = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      resourceVersion: m.resourceVersion,
      uid: m.uid,
    },
    type: (obj as Secret).type,
  };
  s[STRIPPED] = true;
  return s;
}

function isStripped(obj: KubernetesObject): boolean {
  return (obj as { [STRIPPED]?: true })[STRIPPED] === true;
}

function sameVersion(a: KubernetesObject, b: KubernetesObject): boolean {
  const ra = a.metadata?.resourceVersion;
  return ra !== undefined && ra !== '' && ra === b.metadata?.resourceVersion;
}
