// Server-side apply of rendered objects to the test kube-apiserver, as `kubectl apply --server-side` does it:
// PATCH with application/apply-patch+yaml, a field manager, fieldValidation=Strict (an unknown or misplaced field
// is an error, not a warning), and optionally dryRun=All (validated and admitted, never stored).
import { request } from 'node:https';
import type { ControlPlane, StaticUser } from '../helpers/kube.ts';
import type { Manifest } from './helm.ts';

/** Where each kind the chart renders lives in the API (the chart renders no other kind: a new one must be added). */
const RESOURCES: Record<string, { prefix: string; plural: string; namespaced: boolean }> = {
  Namespace: { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  ServiceAccount: { prefix: '/api/v1', plural: 'serviceaccounts', namespaced: true },
  Service: { prefix: '/api/v1', plural: 'services', namespaced: true },
  ConfigMap: { prefix: '/api/v1', plural: 'configmaps', namespaced: true },
  Secret: { prefix: '/api/v1', plural: 'secrets', namespaced: true },
  ClusterRole: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true },
  RoleBinding: { prefix: '/apis/rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  Deployment: { prefix: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  DaemonSet: { prefix: '/apis/apps/v1', plural: 'daemonsets', namespaced: true },
  IngressClass: { prefix: '/apis/networking.k8s.io/v1', plural: 'ingressclasses', namespaced: false },
  PodDisruptionBudget: { prefix: '/apis/policy/v1', plural: 'poddisruptionbudgets', namespaced: true },
  HorizontalPodAutoscaler: { prefix: '/apis/autoscaling/v2', plural: 'horizontalpodautoscalers', namespaced: true },
  CustomResourceDefinition: { prefix: '/apis/apiextensions.k8s.io/v1', plural: 'customresourcedefinitions', namespaced: false },
  ServiceMonitor: { prefix: '/apis/monitoring.coreos.com/v1', plural: 'servicemonitors', namespaced: true },
  PrometheusRule: { prefix: '/apis/monitoring.coreos.com/v1', plural: 'prometheusrules', namespaced: true },
  MutatingWebhookConfiguration: { prefix: '/apis/admissionregistration.k8s.io/v1', plural: 'mutatingwebhookconfigurations', namespaced: false },
  Certificate: { prefix: '/apis/cert-manager.io/v1', plural: 'certificates', namespaced: true },
  Issuer: { prefix: '/apis/cert-manager.io/v1', plural: 'issuers', namespaced: true },
  // [issue 14] gatewayAPI.enabled.
  GatewayClass: { prefix: '/apis/gateway.networking.k8s.io/v1', plural: 'gatewayclasses', namespaced: false },
  ValidatingAdmissionPolicy: { prefix: '/apis/admissionregistration.k8s.io/v1', plural: 'validatingadmissionpolicies', namespaced: false },
  ValidatingAdmissionPolicyBinding: { prefix: '/apis/admissionregistration.k8s.io/v1', plural: 'validatingadmissionpolicybindings', namespaced: false },
};

export interface ApplyResult {
  readonly status: number;
  readonly body: string;
  /** The API server's `Warning` headers (deprecations, ignored fields). */
  readonly warnings: string[];
}

/** The object's URL (with no query). */
export function objectPath(m: Manifest): string {
  const r = RESOURCES[m.kind];
  if (r === undefined) throw new Error(`kube-apply.ts does not know where ${m.kind} lives: add it to RESOURCES`);
  const expectedPrefix = m.apiVersion.includes('/') ? `/apis/${m.apiVersion}` : `/api/${m.apiVersion}`;
  if (r.prefix !== expectedPrefix) throw new Error(`${m.kind} is rendered as ${m.apiVersion}, RESOURCES says ${r.prefix}`);
  const ns = r.namespaced ? `/namespaces/${encodeURIComponent(m.metadata.namespace ?? 'default')}` : '';
  return `${r.prefix}${ns}/${r.plural}/${encodeURIComponent(m.metadata.name)}`;
}

/** Server-side apply of one object as `user` (default admin); never throws on an HTTP status. */
export function apply(cp: ControlPlane, m: Manifest, o: { dryRun?: boolean; user?: StaticUser } = {}): Promise<ApplyResult> {
  const query = new URLSearchParams({ fieldManager: 'wsgate-chart-test', fieldValidation: 'Strict', force: 'true' });
  if (o.dryRun === true) query.set('dryRun', 'All');
  return send(cp, 'PATCH', `${objectPath(m)}?${query.toString()}`, JSON.stringify(m), 'application/apply-patch+yaml', o.user);
}

/** Applies for real and throws on anything but 2xx. */
export async function applyOrThrow(cp: ControlPlane, m: Manifest): Promise<void> {
  const r = await apply(cp, m);
  if (r.status < 200 || r.status > 299) throw new Error(`apply ${m.kind}/${m.metadata.name}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
}

export function send(
  cp: ControlPlane, method: string, path: string, body: string | undefined, contentType: string, user?: StaticUser,
): Promise<ApplyResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, cp.server),
      {
        method,
        ca: cp.caPem,
        headers: {
          authorization: `Bearer ${(user ?? cp.admin).token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const w = res.headers.warning;
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            warnings: w === undefined ? [] : Array.isArray(w) ? w : [w],
          });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}
