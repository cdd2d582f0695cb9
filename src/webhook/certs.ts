// The self-signed mode (`--self-signed`): the caBundle kept current without cert-manager. One clear way:
//  1. the serving certificate lives in a `kubernetes.io/tls` Secret, so that every replica serves the same one:
//     the first replica to find it missing (or expiring, or not covering the DNS names) writes a new self-signed
//     one; a replica that loses the race (409 Conflict) reads the winner's;
//  2. the certificate is its own CA: its PEM is the caBundle, written into every webhook of the
//     MutatingWebhookConfiguration whose caBundle differs (a JSON patch guarded by a `test` of resourceVersion);
//  3. both are reconciled at start and then every interval, so a `helm upgrade` that resets the caBundle, or a
//     deleted Secret, heals itself.
import { X509Certificate } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import type { ServingCertificate } from './server.ts';

/** A certificate with less than this left is replaced. */
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;
/** [validity] Ten years: rotation is a rare event, and reconciling heals a deleted Secret at any time. */
const VALIDITY_DAYS = 3650;

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

/** Why `pem` cannot be served for `dnsNames` at `now`, or undefined when it can. */
export function certificateProblem(pem: ServingCertificate | undefined, dnsNames: readonly string[], now: number): string | undefined {
  if (!pem) return 'no certificate';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem.certPem);
  } catch {
    return 'not a PEM certificate';
  }
  if (Date.parse(cert.validTo) - now < RENEW_BEFORE_MS) return `expires ${cert.validTo}`;
  const names = (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  const missing = dnsNames.filter((n) => !names.includes(n));
  if (missing.length > 0) return `does not cover ${missing.join(', ')}`;
  return undefined;
}

function fromSecret(s: V1Secret | undefined): ServingCertificate | undefined {
  const crt = s?.data?.['tls.crt'];
  const key = s?.data?.['tls.key'];
  if (!crt || !key) return undefined;
  return { certPem: Buffer.from(crt, 'base64').toString('utf8'), keyPem: Buffer.from(key, 'base64').toString('utf8') };
}

function secretBody(ref: SecretRef, c: ServingCertificate, resourceVersion?: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'wsgate-webhook' },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(c.certPem).toString('base64'), 'tls.key': Buffer.from(c.keyPem).toString('base64') },
  };
}

const isStatus = (err: unknown, code: number): boolean => err instanceof ApiException && err.code === code;

export class SelfSignedCertificates {
  readonly #core: CoreV1Api;
  readonly #admission: AdmissionregistrationV1Api;
  readonly #ref: SecretRef;
  readonly #dnsNames: readonly string[];

  constructor(kc: KubeConfig, ref: SecretRef, dnsNames: readonly string[]) {
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#admission = kc.makeApiClient(AdmissionregistrationV1Api);
    this.#ref = ref;
    this.#dnsNames = dnsNames;
  }

  /** The certificate in the Secret, written first when missing or unusable. */
  async ensureSecret(): Promise<{ certificate: ServingCertificate; written: boolean }> {
    let existing: V1Secret | undefined;
    try {
      existing = await this.#core.readNamespacedSecret(this.#ref);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
    const current = fromSecret(existing);
    if (certificateProblem(current, this.#dnsNames, Date.now()) === undefined && current) {
      return { certificate: current, written: false };
    }
    const fresh = generateSelfSigned({ commonName: 'wsgate sidecar injector', dnsNames: this.#dnsNames, days: VALIDITY_DAYS });
    try {
      if (existing) {
        await this.#core.replaceNamespacedSecret({ ...this.#ref, body: secretBody(this.#ref, fresh, existing.metadata?.resourceVersion) });
      } else {
        await this.#core.createNamespacedSecret({ namespace: this.#ref.namespace, body: secretBody(this.#ref, fresh) });
      }
      return { certificate: fresh, written: true };
    } catch (err) {
      // Another replica wrote first: serve what it wrote.
      if (!isStatus(err, 409)) throw err;
      const winner = fromSecret(await this.#core.readNamespacedSecret(this.#ref));
      if (!winner) throw new Error(`secret ${this.#ref.namespace}/${this.#ref.name} has no tls.crt/tls.key`, { cause: err });
      return { certificate: winner, written: false };
    }
  }

  /** Writes `caPem` into every webhook of `configName` whose caBundle differs; returns how many were changed. */
  async ensureCaBundle(configName: string, caPem: string): Promise<number> {
    const config = await this.#admission.readMutatingWebhookConfiguration({ name: configName });
    const caBundle = Buffer.from(caPem).toString('base64');
    const ops: unknown[] = [{ op: 'test', path: '/metadata/resourceVersion', value: config.metadata?.resourceVersion }];
    (config.webhooks ?? []).forEach((w, i) => {
      if (w.clientConfig.caBundle !== caBundle) ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle });
    });
    if (ops.length === 1) return 0;
    await this.#admission.patchMutatingWebhookConfiguration(
      { name: configName, body: ops },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    return ops.length - 1;
  }
}
