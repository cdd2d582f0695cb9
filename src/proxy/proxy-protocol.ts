// PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2): written to the backend before any byte of
// the client's, so that a backend behind wsgate's L4 tunnel still learns the client's address.
// Only the encoders live here: wsgate sends PROXY headers, it never accepts them.
import net from 'node:net';

/** An address as a socket reports it: `remoteAddress`/`remotePort` or `localAddress`/`localPort`. */
export interface AddressInfoLike {
  readonly address: string | undefined;
  readonly port: number | undefined;
}

/** proxy-protocol.txt §2.2: the 12-byte v2 signature. */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const V2_PROXY = 0x21; // version 2, command PROXY
const V2_LOCAL = 0x20; // version 2, command LOCAL
const V2_TCP4 = 0x11; // AF_INET, STREAM
const V2_TCP6 = 0x21; // AF_INET6, STREAM
const V2_UNSPEC = 0x00;

interface Normalised {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

/** `PROXY TCP4 src dst sport dport\r\n`, `PROXY TCP6 ...`, or `PROXY UNKNOWN\r\n` when either side is unknown. */
export function proxyV1Header(src: AddressInfoLike, dst: AddressInfoLike): Buffer {
  const pair = normalisePair(src, dst);
  if (!pair) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const [s, d] = pair;
  return Buffer.from(`PROXY TCP${s.family} ${s.address} ${d.address} ${s.port} ${d.port}\r\n`, 'latin1');
}

/**
 * The binary v2 header: signature, 0x21 (v2, PROXY), AF_INET/AF_INET6 over STREAM, addresses and ports.
 * When either side is unknown: 0x20 (v2, LOCAL), AF_UNSPEC, no addresses; the backend then uses the real
 * connection's endpoints, as HAProxy does.
 */
export function proxyV2Header(src: AddressInfoLike, dst: AddressInfoLike): Buffer {
  const pair = normalisePair(src, dst);
  if (!pair) {
    const out = Buffer.alloc(16);
    PROXY_V2_SIGNATURE.copy(out, 0);
    out[12] = V2_LOCAL;
    out[13] = V2_UNSPEC;
    out.writeUInt16BE(0, 14);
    return out;
  }
  const [s, d] = pair;
  const addrLen = s.family === 4 ? 4 : 16;
  const payload = addrLen * 2 + 4;
  const out = Buffer.alloc(16 + payload);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = V2_PROXY;
  out[13] = s.family === 4 ? V2_TCP4 : V2_TCP6;
  out.writeUInt16BE(payload, 14);
  const encode = s.family === 4 ? ipv4Bytes : ipv6Bytes;
  encode(s.address).copy(out, 16);
  encode(d.address).copy(out, 16 + addrLen);
  out.writeUInt16BE(s.port, 16 + addrLen * 2);
  out.writeUInt16BE(d.port, 18 + addrLen * 2);
  return out;
}

/**
 * Both addresses in one family, or undefined when either is unknown. IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a
 * dual-stack listener reports) becomes IPv4. The header carries one family, so when one side is IPv4 and the other
 * truly IPv6, the IPv4 side is written in its mapped IPv6 form.
 */
function normalisePair(src: AddressInfoLike, dst: AddressInfoLike): [Normalised, Normalised] | undefined {
  const s = normalise(src);
  const d = normalise(dst);
  if (!s || !d) return undefined;
  if (s.family === d.family) return [s, d];
  return [toIPv6(s), toIPv6(d)];
}

function normalise(a: AddressInfoLike): Normalised | undefined {
  const { port } = a;
  if (a.address === undefined || port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    return undefined;
  }
  // A zone (`fe80::1%eth0`) means nothing to the backend and is not valid in the header.
  const zone = a.address.indexOf('%');
  const address = (zone >= 0 ? a.address.slice(0, zone) : a.address).toLowerCase();
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(address);
  if (mapped && net.isIPv4(mapped[1]!)) return { family: 4, address: mapped[1]!, port };
  if (net.isIPv4(address)) return { family: 4, address, port };
  if (net.isIPv6(address)) return { family: 6, address, port };
  return undefined;
}

function toIPv6(a: Normalised): Normalised {
  return a.family === 6 ? a : { family: 6, address: `::ffff:${a.address}`, port: a.port };
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** A valid (net.isIPv6) address without zone, possibly with `::` and a trailing dotted quad, as 16 bytes. */
function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  let text = address;
  let tail: Buffer | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = ipv4Bytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail) tail.copy(out, 12);
  return out;
}
