// TLS certificates from Secrets: type kubernetes.io/tls, `tls.crt` and `tls.key` base64 in `data` (or plain in
// `stringData`, as a file may carry them). Parsing with node:crypto is pure computation; validity dates are not
// checked here (that would need a clock) — the TLS listener serves what the Secret holds.
// A reference that does not resolve leaves the routes serving plain HTTP and is said on the object.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { Certificate } from '../model/table.ts';
import type { ObjectReport, UnresolvedReason } from './conditions.ts';
import type { Lookup } from './lookup.ts';
import { compareHostnames, compareStrings } from './hostnames.ts';
import { compareObjects } from './conditions.ts';

export const TLS_SECRET_TYPE = 'kubernetes.io/tls';

export type LoadedCertificate =
  | { readonly ok: true; readonly certPem: string; readonly keyPem: string }
  | { readonly ok: false; readonly reason: UnresolvedReason; readonly message: string };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Reads and checks the TLS Secret `namespace/name`; results are memoised per translation by the caller's cache. */
export function loadCertificate(
  lookup: Lookup,
  namespace: string,
  name: string,
  cache: Map<string, LoadedCertificate>,
): LoadedCertificate {
  const key = `${namespace}/${name}`;
  let loaded = cache.get(key);
  if (loaded === undefined) {
    loaded = readSecret(lookup, namespace, name);
    cache.set(key, loaded);
  }
  return loaded;
}

function readSecret(lookup: Lookup, namespace: string, name: string): LoadedCertificate {
  const secret = lookup.secret(namespace, name);
  const key = `${namespace}/${name}`;
  if (secret === undefined) return { ok: false, reason: 'SecretNotFound', message: `Secret ${key} not found` };
  if (secret.type !== TLS_SECRET_TYPE) {
    return {
      ok: false,
      reason: 'InvalidCertificate',
      message: `Secret ${key} is of type ${JSON.stringify(secret.type ?? '')}, not ${TLS_SECRET_TYPE}`,
    };
  }
  const invalid = (why: string): LoadedCertificate => ({ ok: false, reason: 'InvalidCertificate', message: `Secret ${key}: ${why}` });
  // A PEM from stringData as written, else decoded from data; null when data holds something that is not base64.
  const field = (k: string): string | null | undefined => {
    const plain = secret.stringData?.[k];
    if (typeof plain === 'string') return plain;
    const encoded = secret.data?.[k];
    if (typeof encoded !== 'string') return undefined;
    const compact = encoded.replace(/\s+/g, '');
    if (!BASE64.test(compact) || compact.length % 4 !== 0) return null;
    return Buffer.from(compact, 'base64').toString('utf8');
  };
  const certPem = field('tls.crt');
  const keyPem = field('tls.key');
  if (certPem === undefined || keyPem === undefined) return invalid('tls.crt and tls.key are both required');
  if (certPem === null) return invalid('tls.crt is not valid base64');
  if (keyPem === null) return invalid('tls.key is not valid base64');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return invalid('tls.crt is not a PEM certificate');
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return invalid('tls.key does not match tls.crt');
  } catch {
    return invalid('tls.key is not a PEM private key');
  }
  return { ok: true, certPem, keyPem };
}

/** One object asking that `secret` be served for `hostnames`. */
export interface CertificateClaim {
  readonly owner: ObjectReport;
  /** The field that made the claim, for messages (`spec.tls`, `spec.tls[1]`). */
  readonly field: string;
  readonly secret: string;
  readonly hostnames: readonly string[];
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * One Certificate per Secret, with the hostnames of every claim on it (sorted as virtual hosts are). When two
 * claims name different Secrets for one hostname, the claim of the oldest object (then namespace/name) keeps the
 * hostname and the other object is told (Conflicted); a Secret shared by several objects is not a conflict.
 * Certificates are sorted by Secret `namespace/name`.
 */
export function buildCertificates(claims: readonly CertificateClaim[]): Certificate[] {
  const ordered = [...claims].sort((a, b) => compareObjects(a.owner, b.owner) || compareStrings(a.field, b.field));
  const holder = new Map<string, CertificateClaim>();
  const bySecret = new Map<string, { certPem: string; keyPem: string; hostnames: Set<string> }>();
  for (const claim of ordered) {
    for (const hostname of claim.hostnames) {
      const held = holder.get(hostname);
      if (held !== undefined && held.secret !== claim.secret) {
        claim.owner.notAccepted(
          'Conflicted',
          `${claim.field}: hostname ${hostname} is already served with Secret ${held.secret} of ${held.owner.display}`,
        );
        continue;
      }
      holder.set(hostname, held ?? claim);
      let entry = bySecret.get(claim.secret);
      if (entry === undefined) {
        entry = { certPem: claim.certPem, keyPem: claim.keyPem, hostnames: new Set() };
        bySecret.set(claim.secret, entry);
      }
      entry.hostnames.add(hostname);
    }
  }
  return [...bySecret.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([secret, e]) => ({
      secret,
      hostnames: [...e.hostnames].sort(compareHostnames),
      certPem: e.certPem,
      keyPem: e.keyPem,
    }));
}
