// Reads the server name (SNI) out of a TLS ClientHello without terminating TLS, for passthrough routing.
// The parser is incremental in the simplest way: the caller passes every byte read so far, and gets `need-more`
// until the whole ClientHello has arrived. It reassembles a ClientHello split over several TLS records (clients with
// large post-quantum key shares, or middleboxes, do that), never reads past what the records declare, and never
// throws: every byte comes from an unauthenticated client.

export type ClientHelloResult =
  | { readonly state: 'need-more' }
  | { readonly state: 'ok'; readonly serverName: string | undefined }
  | { readonly state: 'not-tls' }
  | { readonly state: 'malformed'; readonly reason: string };

/** Default cap on the bytes a ClientHello may take, records included (16 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;
const RECORD_HEADER_BYTES = 5;
const HANDSHAKE_HEADER_BYTES = 4;
/** RFC 8446 §5.1: a plaintext record fragment is at most 2^14 bytes. */
const MAX_RECORD_FRAGMENT = 16384;
/** RFC 6066 §3 / RFC 1035: a DNS name is at most 255 bytes. */
const MAX_HOST_NAME = 255;

const NEED_MORE: ClientHelloResult = Object.freeze({ state: 'need-more' });
const NOT_TLS: ClientHelloResult = Object.freeze({ state: 'not-tls' });

function malformed(reason: string): ClientHelloResult {
  return { state: 'malformed', reason };
}

/**
 * Parses the ClientHello at the start of `buf` (every byte the client has sent so far).
 * Bytes after the end of the ClientHello (e.g. TLS 1.3 early data) are ignored.
 * @param maxBytes The most bytes the ClientHello may span, record headers included (default 16 KiB); a hello that
 *   declares or needs more is `malformed` with reason `too-large`.
 */
export function parseClientHello(buf: Buffer, maxBytes = MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  if (buf.length === 0) return NEED_MORE;
  // Anything that does not start like a TLS handshake record (SSLv2-style hellos included) is some other protocol.
  if (buf[0] !== CONTENT_TYPE_HANDSHAKE) return NOT_TLS;
  if (buf.length >= 2 && buf[1] !== 3) return NOT_TLS;

  // 1. Walk the handshake records, collecting their fragments until the ClientHello message is complete.
  const fragments: Buffer[] = [];
  let have = 0;
  let needed = -1; // total handshake bytes (header + body) once the 4-byte handshake header is known
  let off = 0;
  for (;;) {
    if (off + RECORD_HEADER_BYTES > buf.length) {
      return off + RECORD_HEADER_BYTES > maxBytes ? malformed('too-large') : NEED_MORE;
    }
    if (buf[off] !== CONTENT_TYPE_HANDSHAKE) return malformed('non-handshake record inside the ClientHello');
    if (buf[off + 1] !== 3) return malformed('bad record version');
    const len = buf.readUInt16BE(off + 3);
    if (len === 0) return malformed('empty handshake record');
    if (len > MAX_RECORD_FRAGMENT) return malformed('record too long');
    const end = off + RECORD_HEADER_BYTES + len;
    if (end > maxBytes) return malformed('too-large');
    if (end > buf.length) return NEED_MORE;
    fragments.push(buf.subarray(off + RECORD_HEADER_BYTES, end));
    have += len;
    off = end;
    if (needed < 0 && have >= HANDSHAKE_HEADER_BYTES) {
      const head = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, have);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return malformed('first handshake message is not a ClientHello');
      needed = HANDSHAKE_HEADER_BYTES + head.readUIntBE(1, 3);
      if (needed > maxBytes) return malformed('too-large');
    }
    if (needed >= 0 && have >= needed) break;
  }

  // 2. Parse the reassembled ClientHello body.
  const message = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, have);
  return parseClientHelloBody(message.subarray(HANDSHAKE_HEADER_BYTES, needed));
}

/** RFC 8446 §4.1.2 (and RFC 5246 §7.4.1.2, the same layout up to the extensions). */
function parseClientHelloBody(body: Buffer): ClientHelloResult {
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > body.length) return malformed('truncated ClientHello');
  const sessionIdLen = body[p]!;
  if (sessionIdLen > 32) return malformed('session id too long');
  p += 1 + sessionIdLen;
  if (p + 2 > body.length) return malformed('truncated ClientHello');
  const cipherSuitesLen = body.readUInt16BE(p);
  if (cipherSuitesLen === 0 || cipherSuitesLen % 2 !== 0) return malformed('bad cipher suites');
  p += 2 + cipherSuitesLen;
  if (p + 1 > body.length) return malformed('truncated ClientHello');
  const compressionLen = body[p]!;
  if (compressionLen === 0) return malformed('bad compression methods');
  p += 1 + compressionLen;
  if (p > body.length) return malformed('truncated ClientHello');
  // A hello without extensions (old clients) is valid and has no server name.
  if (p === body.length) return { state: 'ok', serverName: undefined };
  if (p + 2 > body.length) return malformed('truncated extensions');
  const extensionsEnd = p + 2 + body.readUInt16BE(p);
  p += 2;
  if (extensionsEnd !== body.length) return malformed('extensions length mismatch');
  while (p < extensionsEnd) {
    if (p + 4 > extensionsEnd) return malformed('truncated extension');
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extensionsEnd) return malformed('truncated extension');
    if (type === EXTENSION_SERVER_NAME) return parseServerName(body.subarray(p, p + len));
    p += len;
  }
  return { state: 'ok', serverName: undefined };
}

/** RFC 6066 §3: a ServerNameList; the first host_name entry is the name. */
function parseServerName(ext: Buffer): ClientHelloResult {
  if (ext.length < 2) return malformed('truncated server_name');
  const listEnd = 2 + ext.readUInt16BE(0);
  if (listEnd !== ext.length) return malformed('server_name length mismatch');
  let p = 2;
  while (p < listEnd) {
    if (p + 3 > listEnd) return malformed('truncated server_name');
    const nameType = ext[p]!;
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + len > listEnd) return malformed('truncated server_name');
    if (nameType === NAME_TYPE_HOST_NAME) {
      if (len === 0 || len > MAX_HOST_NAME) return malformed('bad server name length');
      const name = ext.subarray(p, p + len);
      if (!isHostNameBytes(name)) return malformed('bad server name');
      return { state: 'ok', serverName: name.toString('latin1').toLowerCase() };
    }
    p += len;
  }
  return { state: 'ok', serverName: undefined };
}

/** Letters, digits, '-', '.', '_': what a DNS host name (IDNs in their A-label form) can hold. */
function isHostNameBytes(name: Buffer): boolean {
  for (const c of name) {
    const ok =
      (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return false;
  }
  return true;
}
