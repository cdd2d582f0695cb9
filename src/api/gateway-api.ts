// [issue 14] The Gateway API kinds wsgate reads (group gateway.networking.k8s.io, v1.6.3, standard channel): only the
// fields wsgate uses, every one optional, since a file may hold anything and translate() copes with what it finds
// (the API server's CRD schemas validate them in a cluster). Status types are what the controller writes.
import type { ObjectMeta } from './types.ts';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = `${GATEWAY_GROUP}/v1`;
/** The controllerName a GatewayClass must carry for wsgate to own it. */
export const GATEWAY_CONTROLLER_NAME = 'wsgate.io/gateway-controller';
/** The Gateway API release whose CRDs wsgate vendors and whose conformance suite it passes. */
export const GATEWAY_API_BUNDLE_VERSION = 'v1.6.3';

/** apiVersions read for each kind: v1 everywhere, and the v1beta1 the standard channel still serves. */
export const GATEWAY_API_VERSIONS: Readonly<Record<GatewayAPIKind, readonly string[]>> = {
  GatewayClass: [GATEWAY_API_VERSION, `${GATEWAY_GROUP}/v1beta1`],
  Gateway: [GATEWAY_API_VERSION, `${GATEWAY_GROUP}/v1beta1`],
  HTTPRoute: [GATEWAY_API_VERSION, `${GATEWAY_GROUP}/v1beta1`],
  TLSRoute: [GATEWAY_API_VERSION],
  TCPRoute: [GATEWAY_API_VERSION],
  ReferenceGrant: [GATEWAY_API_VERSION, `${GATEWAY_GROUP}/v1beta1`],
};

export type GatewayAPIKind = 'GatewayClass' | 'Gateway' | 'HTTPRoute' | 'TLSRoute' | 'TCPRoute' | 'ReferenceGrant';
export type GatewayRouteKind = 'HTTPRoute' | 'TLSRoute' | 'TCPRoute';

/** metav1.Condition as Gateway API statuses carry it. */
export interface GatewayCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface LocalObjectReference {
  group?: string;
  kind?: string;
  name?: string;
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface GatewayClass {
  apiVersion?: string;
  kind: 'GatewayClass';
  metadata: ObjectMeta;
  spec?: { controllerName?: string; parametersRef?: { group?: string; kind?: string; name?: string; namespace?: string }; description?: string };
  status?: { conditions?: GatewayCondition[]; supportedFeatures?: { name: string }[] };
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key?: string; operator?: string; values?: string[] }[];
}

export interface AllowedRoutes {
  namespaces?: { from?: string; selector?: LabelSelector };
  kinds?: { group?: string; kind?: string }[];
}

export interface Listener {
  name?: string;
  hostname?: string;
  port?: number;
  protocol?: string;
  tls?: { mode?: string; certificateRefs?: SecretObjectReference[]; options?: Record<string, string> };
  allowedRoutes?: AllowedRoutes;
}

export interface GatewayAddress {
  type?: string;
  value?: string;
}

export interface ListenerStatus {
  name: string;
  supportedKinds: { group: string; kind: string }[];
  attachedRoutes: number;
  conditions: GatewayCondition[];
}

export interface GatewayStatus {
  addresses?: { type: string; value: string }[];
  conditions?: GatewayCondition[];
  listeners?: ListenerStatus[];
}

export interface Gateway {
  apiVersion?: string;
  kind: 'Gateway';
  metadata: ObjectMeta;
  spec?: {
    gatewayClassName?: string;
    listeners?: Listener[];
    addresses?: GatewayAddress[];
    infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string>; parametersRef?: LocalObjectReference };
  };
  status?: GatewayStatus;
}

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  sectionName?: string;
  port?: number;
}

export interface HTTPHeaderMatch {
  type?: string;
  name?: string;
  value?: string;
}

export interface HTTPRouteMatch {
  path?: { type?: string; value?: string };
  headers?: HTTPHeaderMatch[];
  queryParams?: HTTPHeaderMatch[];
  method?: string;
}

export interface HTTPHeaderFilter {
  set?: { name?: string; value?: string }[];
  add?: { name?: string; value?: string }[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type?: string;
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  type?: string;
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestRedirect?: { scheme?: string; hostname?: string; path?: HTTPPathModifier; port?: number; statusCode?: number };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: unknown;
  extensionRef?: LocalObjectReference;
}

export interface BackendObjectReference {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: BackendObjectReference[];
  timeouts?: { request?: string; backendRequest?: string };
}

export interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions: GatewayCondition[];
}

export interface RouteStatus {
  parents?: RouteParentStatus[];
}

export interface HTTPRoute {
  apiVersion?: string;
  kind: 'HTTPRoute';
  metadata: ObjectMeta;
  spec?: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: HTTPRouteRule[] };
  status?: RouteStatus;
}

export interface TLSRoute {
  apiVersion?: string;
  kind: 'TLSRoute';
  metadata: ObjectMeta;
  spec?: { parentRefs?: ParentReference[]; hostnames?: string[]; rules?: { name?: string; backendRefs?: BackendObjectReference[] }[] };
  status?: RouteStatus;
}

export interface TCPRoute {
  apiVersion?: string;
  kind: 'TCPRoute';
  metadata: ObjectMeta;
  spec?: { parentRefs?: ParentReference[]; rules?: { name?: string; backendRefs?: BackendObjectReference[] }[] };
  status?: RouteStatus;
}

export interface ReferenceGrant {
  apiVersion?: string;
  kind: 'ReferenceGrant';
  metadata: ObjectMeta;
  spec?: {
    from?: { group?: string; kind?: string; namespace?: string }[];
    to?: { group?: string; kind?: string; name?: string }[];
  };
}

/** A Namespace as allowedRoutes selectors read it: its labels. */
export interface Namespace {
  apiVersion?: string;
  kind: 'Namespace';
  metadata: ObjectMeta;
}

export type GatewayAPIObject = GatewayClass | Gateway | HTTPRoute | TLSRoute | TCPRoute | ReferenceGrant;
