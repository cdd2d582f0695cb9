// Stand-ins for cert-manager's Certificate and Issuer CRDs (cert-manager.io/v1), so the API server can validate
// what the chart renders in `sidecarInjector.certificate.mode: cert-manager`. The real CRDs are not vendored here:
// these declare, with cert-manager's field names and types, the fields the chart uses and a few neighbours, and
// reject every other field (no x-kubernetes-preserve-unknown-fields), so a misplaced or misspelt field fails.
import type { Manifest } from './helm.ts';

type Schema = Record<string, unknown>;
const str: Schema = { type: 'string' };
const obj = (properties: Record<string, Schema>, required?: string[]): Schema => ({
  type: 'object',
  properties,
  ...(required ? { required } : {}),
});
const list = (items: Schema): Schema => ({ type: 'array', items });

function crd(kind: string, plural: string, spec: Schema): Manifest {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.cert-manager.io` },
    spec: {
      group: 'cert-manager.io',
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: obj({ spec }, ['spec']) } }],
    },
  };
}

export const certificateCrd = crd(
  'Certificate',
  'certificates',
  obj(
    {
      secretName: str,
      commonName: str,
      dnsNames: list(str),
      ipAddresses: list(str),
      duration: str,
      renewBefore: str,
      isCA: { type: 'boolean' },
      usages: list(str),
      issuerRef: obj({ name: str, kind: str, group: str }, ['name']),
      privateKey: obj({ algorithm: str, size: { type: 'integer' }, rotationPolicy: str }),
    },
    ['secretName', 'issuerRef'],
  ),
);

export const issuerCrd = crd(
  'Issuer',
  'issuers',
  obj({
    selfSigned: obj({ crlDistributionPoints: list(str) }),
    ca: obj({ secretName: str }, ['secretName']),
  }),
);

export const certManagerCrds = [certificateCrd, issuerCrd];
