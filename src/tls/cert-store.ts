// The certificates the L7 TLS listener serves, chosen by SNI. update() takes the routing table's certificates,
// builds one tls.SecureContext per certificate and swaps the hostname lookup in one assignment: a handshake sees
// either the old lookup or the new one, never a mix, and connections already established keep their context.
import { createHash, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import type { Certificate } from '../model/table.ts';

export interface CertificatePem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CertificateError {
  /** `namespace/name` of the Secret. */
  readonly secret: string;
  readonly message: string;
}

export interface CertificateExpiry {
  readonly secret: string;
  readonly notAfter: Date;
}

export type SniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;

/** Oldest protocol the listener accepts, for every context (default and per-certificate). */
export const MIN_TLS_VERSION = 'TLSv1.2';

/** A built context and what expiries() reports for it. Shared across updates while the PEM is unchanged. */
interface ContextEntry {
  readonly context: SecureContext;
  readonly notAfter: Date;
}

/** What one update() produced; replaced as a whole, never mutated after it is published. */
interface Lookup {
  /** Lower-case exact names and `*.suffix` wildcards, each to its context. */
  readonly byHostname: ReadonlyMap<string, SecureContext>;
  /** Keyed by pemKey(): lets the next update reuse contexts whose certificate and key did not change. */
  readonly byPem: ReadonlyMap<string, ContextEntry>;
  readonly expiries: readonly CertificateExpiry[];
}

function pemKey(pem: CertificatePem): string {
  return createHash('sha256').update(pem.certPem).update('\0').update(pem.keyPem).digest('hex');
}

function buildContext(pem: CertificatePem): ContextEntry {
  const context = createSecureContext({ cert: pem.certPem, key: pem.keyPem, minVersion: MIN_TLS_VERSION });
  // createSecureContext accepted the chain, so its first certificate (the leaf) parses.
  const notAfter = new X509Certificate(pem.certPem).validToDate;
  return { context, notAfter };
}

/** Lower case, without the trailing dot of an absolute name. */
function normalise(hostname: string): string {
  const lower = hostname.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

export class CertificateStore {
  readonly #defaultPem: CertificatePem;
  readonly #defaultContext: SecureContext;
  #lookup: Lookup = { byHostname: new Map(), byPem: new Map(), expiries: [] };

  /**
   * Answers tls.Server's SNICallback: the context for the name the client asked for. Never fails; an unknown name
   * gets the default certificate, as a client that sent no SNI does.
   */
  readonly sniCallback: SniCallback = (servername, cb) => {
    cb(null, this.contextFor(servername));
  };

  /** @throws when the default certificate or key cannot be loaded: the listener cannot start without it. */
  constructor(defaultCert: CertificatePem) {
    this.#defaultPem = { certPem: defaultCert.certPem, keyPem: defaultCert.keyPem };
    try {
      this.#defaultContext = buildContext(this.#defaultPem).context;
    } catch (err) {
      throw new Error('cannot load the default certificate', { cause: err });
    }
  }

  /**
   * Replaces the served certificates. A certificate whose PEM createSecureContext refuses is skipped and reported;
   * the others apply. When two certificates claim the same hostname, the first in `certs` wins (the routing table
   * is sorted, so this is deterministic).
   */
  update(certs: readonly Certificate[]): { errors: CertificateError[] } {
    const previous = this.#lookup.byPem;
    const byPem = new Map<string, ContextEntry>();
    const byHostname = new Map<string, SecureContext>();
    const expiries: CertificateExpiry[] = [];
    const errors: CertificateError[] = [];

    for (const cert of certs) {
      const key = pemKey(cert);
      let entry = byPem.get(key) ?? previous.get(key);
      if (entry === undefined) {
        try {
          entry = buildContext(cert);
        } catch (err) {
          errors.push({ secret: cert.secret, message: err instanceof Error ? err.message : String(err) });
          continue;
        }
      }
      byPem.set(key, entry);
      expiries.push({ secret: cert.secret, notAfter: entry.notAfter });
      for (const hostname of cert.hostnames) {
        const name = normalise(hostname);
        if (!byHostname.has(name)) byHostname.set(name, entry.context);
      }
    }

    this.#lookup = { byHostname, byPem, expiries };
    return { errors };
  }

  /** Exact hostname, then a `*.` wildcard covering exactly the first label, then the default certificate. */
  contextFor(servername: string | undefined): SecureContext {
    if (servername === undefined || servername === '') return this.#defaultContext;
    const { byHostname } = this.#lookup;
    const name = normalise(servername);
    const exact = byHostname.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    // A wildcard needs a non-empty first label and a non-empty suffix: `*.example.com` covers `a.example.com`
    // but neither `example.com` nor `a.b.example.com`.
    if (dot > 0 && dot < name.length - 1) {
      const wildcard = byHostname.get(`*${name.slice(dot)}`);
      if (wildcard !== undefined) return wildcard;
    }
    return this.#defaultContext;
  }

  defaultContext(): SecureContext {
    return this.#defaultContext;
  }

  /**
   * Options for tls.createServer / https.createServer. The server's own key and cert are the default certificate,
   * because Node calls SNICallback only when the client sent a server name; the protocol floor must be set on the
   * server too, since OpenSSL keeps the version range of the context a handshake started with.
   */
  serverOptions(): TlsOptions {
    const { certPem, keyPem } = this.#defaultPem;
    return { cert: certPem, key: keyPem, minVersion: MIN_TLS_VERSION, SNICallback: this.sniCallback };
  }

  /** notAfter of each certificate applied by the last update(), in input order (for a certificate-expiry metric). */
  expiries(): { secret: string; notAfter: Date }[] {
    return this.#lookup.expiries.map((e) => ({ secret: e.secret, notAfter: e.notAfter }));
  }
}
