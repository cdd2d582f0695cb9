// A minimal DER (ASN.1 Distinguished Encoding Rules) encoder: exactly the types an X.509 v3 certificate needs, and
// nothing that parses. Each function returns the complete TLV (tag, length, value) as a Buffer, so a structure is
// built by nesting calls: `sequence(integer(2n), oid('2.5.4.3'))`.

/** Universal and context-specific tags used by X.509 (X.690 §8, RFC 5280). */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  // Long form: 0x80 | number of length bytes, then the length big-endian, minimal.
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Any TLV: `tag` is the full identifier octet (class, constructed bit and number). */
export function tlv(tag: number, value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

export function sequence(...items: readonly Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, Buffer.concat(items));
}

/** A SET. DER orders SET OF members by encoding; callers here only ever pass one member. */
export function set(...items: readonly Uint8Array[]): Buffer {
  const sorted = [...items].sort((a, b) => Buffer.compare(a, b));
  return tlv(Tag.SET, Buffer.concat(sorted));
}

/** `[n] EXPLICIT`: a constructed context-specific tag wrapping a complete TLV. */
export function explicit(n: number, inner: Uint8Array): Buffer {
  return tlv(0xa0 | n, inner);
}

/** `[n] IMPLICIT` of a primitive type: the context-specific tag replaces the universal one. */
export function implicitPrimitive(n: number, value: Uint8Array): Buffer {
  return tlv(0x80 | n, value);
}

export function boolean(value: boolean): Buffer {
  return tlv(Tag.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

/**
 * An INTEGER from a bigint, or from big-endian unsigned magnitude bytes (such as a random serial). Encoded two's
 * complement and minimal: redundant leading 0x00 octets are stripped, one is added when the top bit would read as a
 * sign. Negative bigints are not needed by X.509 and are refused.
 */
export function integer(value: bigint | Uint8Array): Buffer {
  let bytes: Buffer;
  if (typeof value === 'bigint') {
    if (value < 0n) throw new RangeError('negative INTEGER is not supported');
    const hex = value.toString(16);
    bytes = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
  } else {
    bytes = Buffer.from(value);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(Tag.INTEGER, bytes);
}

/** An OBJECT IDENTIFIER from dotted form (`1.2.840.10045.4.3.2`). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new RangeError(`bad OID arc in ${dotted}`);
    return BigInt(a);
  });
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined || first > 2n || (first < 2n && second > 39n)) {
    throw new RangeError(`bad OID ${dotted}`);
  }
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...rest]) {
    // Base-128, big-endian, high bit set on every octet but the last.
    const group: number[] = [Number(arc & 0x7fn)];
    for (let n = arc >> 7n; n > 0n; n >>= 7n) group.unshift(Number(n & 0x7fn) | 0x80);
    out.push(...group);
  }
  return tlv(Tag.OID, Buffer.from(out));
}

export function utf8String(value: string): Buffer {
  return tlv(Tag.UTF8_STRING, Buffer.from(value, 'utf8'));
}

export function octetString(value: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, value);
}

/** A BIT STRING whose length is a whole number of octets, or with `unusedBits` trailing bits of the last octet. */
export function bitString(value: Uint8Array, unusedBits = 0): Buffer {
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), value]));
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * An X.509 `Time` (RFC 5280 §4.1.2.5): UTCTime `YYMMDDHHMMSSZ` for years 1950–2049, GeneralizedTime
 * `YYYYMMDDHHMMSSZ` from 2050 on. Always UTC, whole seconds (fractions are truncated).
 */
export function x509Time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest =
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    'Z';
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(pad(year % 100, 2) + rest, 'ascii'));
  if (year < 0 || year > 9999) throw new RangeError(`year ${year} cannot be encoded`);
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(pad(year, 4) + rest, 'ascii'));
}
