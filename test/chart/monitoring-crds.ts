// Stand-ins for the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs (monitoring.coreos.com/v1), so the
// API server can validate what the chart renders when that API exists. The real CRDs are not vendored here: these
// declare, with the Operator's field names and types, the fields the chart uses and a few neighbours, and reject
// every other field (no x-kubernetes-preserve-unknown-fields), so a misplaced or misspelt field fails the dry run.
import type { Manifest } from './helm.ts';

type Schema = Record<string, unknown>;
const str: Schema = { type: 'string' };
const strMap: Schema = { type: 'object', additionalProperties: str };
const obj = (properties: Record<string, Schema>, required?: string[]): Schema => ({
  type: 'object',
  properties,
  ...(required ? { required } : {}),
});
const list = (items: Schema): Schema => ({ type: 'array', items });
const duration: Schema = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };

function crd(kind: string, plural: string, spec: Schema): Manifest {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: 'monitoring.coreos.com',
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: obj({ spec }, ['spec']) } }],
    },
  };
}

const labelSelector = obj({
  matchLabels: strMap,
  matchExpressions: list(obj({ key: str, operator: str, values: list(str) }, ['key', 'operator'])),
});

export const serviceMonitorCrd = crd(
  'ServiceMonitor',
  'servicemonitors',
  obj(
    {
      jobLabel: str,
      selector: labelSelector,
      namespaceSelector: obj({ any: { type: 'boolean' }, matchNames: list(str) }),
      endpoints: list(
        obj({
          port: str,
          targetPort: { 'x-kubernetes-int-or-string': true },
          path: str,
          scheme: { type: 'string', enum: ['http', 'https', 'HTTP', 'HTTPS'] },
          interval: duration,
          scrapeTimeout: duration,
          honorLabels: { type: 'boolean' },
        }),
      ),
    },
    ['selector'],
  ),
);

export const prometheusRuleCrd = crd(
  'PrometheusRule',
  'prometheusrules',
  obj({
    groups: list(
      obj(
        {
          name: { type: 'string', minLength: 1 },
          interval: duration,
          limit: { type: 'integer' },
          rules: list(
            obj(
              {
                alert: str,
                record: str,
                expr: { 'x-kubernetes-int-or-string': true },
                for: duration,
                keep_firing_for: { type: 'string', minLength: 1 },
                labels: strMap,
                annotations: strMap,
              },
              ['expr'],
            ),
          ),
        },
        ['name'],
      ),
    ),
  }),
);
