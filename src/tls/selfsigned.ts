// A self-signed certificate for the TLS listener when no default certificate is configured, so that wsgate can
// start and serve TLS without an external binary or a certificate library. The certificate is built by hand in DER
// (RFC 5280) and signed with an EC P-256 key from node:crypto.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import {
  bitString,
  boolean,
  explicit,
  implicitPrimitive,
  integer,
  octetString,
  oid,
  sequence,
  set,
  utf8String,
  x509Time,
} from './der.ts';

export interface SelfSignedOptions {
  /** [commonName='wsgate default certificate'] Subject and issuer CN. At most 64 characters (RFC 5280 ub-common-name). */
  readonly commonName?: string;
  /** [dnsNames=[]] DNS names for the subjectAltName extension; with none, the extension is left out. */
  readonly dnsNames?: readonly string[];
  /** [days=365] Days from now until notAfter. */
  readonly days?: number;
}

export interface SelfSignedCertificate {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** notBefore is set this far in the past so that clients whose clock lags ours still accept the certificate. */
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // `critical` is DEFAULT FALSE, and DER leaves defaults out.
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));
}

/** A serial number of 127 random bits, positive and minimal (RFC 5280 §4.1.2.2: at most 20 octets). */
function randomSerial(): Buffer {
  const bytes = randomBytes(16);
  // Clear the sign bit and set the next one, so the INTEGER is positive and needs no leading zero octet.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes;
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Generates a fresh EC P-256 key and a self-signed X.509 v3 server certificate for it. */
export function generateSelfSigned(opts: SelfSignedOptions = {}): SelfSignedCertificate {
  const commonName = opts.commonName ?? 'wsgate default certificate';
  const dnsNames = opts.dnsNames ?? [];
  const days = opts.days ?? 365;
  if (commonName.length === 0 || commonName.length > 64) {
    throw new RangeError('commonName must be 1 to 64 characters');
  }
  if (!Number.isFinite(days) || days <= 0) throw new RangeError('days must be a positive number');
  for (const dns of dnsNames) {
    // IA5String: ASCII only. Internationalised names must arrive as A-labels (punycode).
    if (dns.length === 0 || !/^[\x21-\x7e]+$/.test(dns)) throw new RangeError(`bad DNS name ${JSON.stringify(dns)}`);
  }

  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  const notAfter = new Date(now + days * DAY_MS);
  const algorithm = sequence(oid(OID.ecdsaWithSHA256)); // ECDSA: parameters absent (RFC 5758 §3.2).

  const extensions = [
    ...(dnsNames.length > 0
      ? [extension(OID.subjectAltName, false, sequence(...dnsNames.map((d) => implicitPrimitive(2, Buffer.from(d, 'ascii')))))]
      : []),
    // cA is DEFAULT FALSE and pathLen absent: an empty SEQUENCE says "not a CA".
    extension(OID.basicConstraints, true, sequence()),
    // digitalSignature is bit 0: one octet 0x80 with 7 unused bits.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
  ];

  const subject = name(commonName);
  const tbs = sequence(
    explicit(0, integer(2n)), // version v3
    integer(randomSerial()),
    algorithm,
    subject, // issuer = subject: self-signed
    sequence(x509Time(notBefore), x509Time(notAfter)),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...extensions)),
  );
  // For EC keys crypto.sign returns the DER Ecdsa-Sig-Value (SEQUENCE of r, s), which is what X.509 carries.
  const signature = sign('sha256', tbs, privateKey);
  const certificate = sequence(tbs, algorithm, bitString(signature));

  return {
    certPem: pem('CERTIFICATE', certificate),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
