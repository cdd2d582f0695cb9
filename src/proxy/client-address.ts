// The real client address (issue 12). Behind a load balancer wsgate sees the balancer's address, so every per-client
// feature (limits, hashOn.clientIP, source ranges, rate limits, logs, X-Forwarded-For) would treat all clients as one.
// Two ways in, both only from trusted hops:
//
//  1. PROXY protocol v1 and v2 (HAProxy's proxy-protocol.txt) on the HTTP, HTTPS and tunnel listeners
//     (--proxy-protocol). Every connection must start with a header; one from an address outside --trusted-proxies
//     (when given) is closed (proxy_not_trusted), one without a valid header in time is closed (bad_proxy_header).
//     A v2 LOCAL header (the balancer's own health check) and v1 UNKNOWN keep the connection's own address.
//  2. X-Forwarded-For and X-Real-IP, honoured only when the connection's peer (after PROXY protocol) is in
//     --trusted-proxies: X-Forwarded-For is walked from the right, skipping trusted addresses, and the first untrusted
//     one is the client (nginx's real_ip_recursive on); without X-Forwarded-For, X-Real-IP. Without
//     --trusted-proxies no header is believed.
//
// The decoders are pure and never throw: every byte comes from the network.
import net from 'node:net';
import type { Socket } from 'node:net';
import { PROXY_V2_SIGNATURE } from './proxy-protocol.ts';

/** The most bytes a v1 header may take (proxy-protocol.txt §2.1), CRLF included. */
const V1_MAX = 107;
const V2_HEADER = 16;

export type ProxyHeaderResult =
  | { readonly state: 'need-more' }
  | { readonly state: 'invalid'; readonly why: string }
  /** `source` undefined: LOCAL or UNKNOWN, the connection's own address stands. `length`: bytes the header took. */
  | { readonly state: 'ok'; readonly length: number; readonly source: { readonly address: string; readonly port: number } | undefined };

const NEED_MORE: ProxyHeaderResult = Object.freeze({ state: 'need-more' });

/** Decodes a PROXY header (v1 or v2, told apart by the first byte) at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  return { state: 'invalid', why: 'no PROXY signature' };
}

function parseV1(buf: Buffer): ProxyHeaderResult {
  const prefix = 'PROXY ';
  for (let i = 0; i < Math.min(prefix.length, buf.length); i++) {
    if (buf[i] !== prefix.charCodeAt(i)) return { state: 'invalid', why: 'no PROXY signature' };
  }
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buf.length >= V1_MAX ? { state: 'invalid', why: 'v1 header longer than 107 bytes' } : NEED_MORE;
  if (end + 2 > V1_MAX) return { state: 'invalid', why: 'v1 header longer than 107 bytes' };
  const parts = buf.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { state: 'ok', length, source: undefined };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { state: 'invalid', why: 'malformed v1 header' };
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const check = family === 'TCP4' ? net.isIPv4 : net.isIPv6;
  if (!check(src) || !check(dst) || !isPort(sport) || !isPort(dport)) return { state: 'invalid', why: 'malformed v1 addresses' };
  return { state: 'ok', length, source: { address: src.toLowerCase(), port: Number(sport) } };
}

function isPort(s: string): boolean {
  return /^\d{1,5}$/.test(s) && Number(s) <= 65535 && !(s.length > 1 && s.startsWith('0'));
}

function parseV2(buf: Buffer): ProxyHeaderResult {
  const n = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  if (!buf.subarray(0, n).equals(PROXY_V2_SIGNATURE.subarray(0, n))) return { state: 'invalid', why: 'no PROXY signature' };
  if (buf.length < V2_HEADER) return NEED_MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { state: 'invalid', why: 'v2 header with another version' };
  const command = verCmd & 0x0f;
  const family = buf[13]!;
  const payload = buf.readUInt16BE(14);
  const length = V2_HEADER + payload;
  if (buf.length < length) return NEED_MORE;
  if (command === 0x0) return { state: 'ok', length, source: undefined }; // LOCAL
  if (command !== 0x1) return { state: 'invalid', why: 'v2 header with an unknown command' };
  const body = buf.subarray(V2_HEADER, length);
  switch (family) {
    case 0x11: // TCP over IPv4
    case 0x12: // UDP over IPv4
      if (body.length < 12) return { state: 'invalid', why: 'v2 IPv4 addresses truncated' };
      return { state: 'ok', length, source: { address: [...body.subarray(0, 4)].join('.'), port: body.readUInt16BE(8) } };
    case 0x21: // TCP over IPv6
    case 0x22:
      if (body.length < 36) return { state: 'invalid', why: 'v2 IPv6 addresses truncated' };
      return { state: 'ok', length, source: { address: ipv6Text(body.subarray(0, 16)), port: body.readUInt16BE(32) } };
    default:
      // AF_UNSPEC or AF_UNIX: no address to believe; the connection's own stands.
      return { state: 'ok', length, source: undefined };
  }
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // IPv4-mapped: as a dotted quad, which clientIP() then unmaps.
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  // Canonical compression of the longest run of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** --trusted-proxies: the hops whose PROXY headers and X-Forwarded-For/X-Real-IP are believed. */
export class TrustedProxies {
  readonly #list = new net.BlockList();
  readonly cidrs: readonly string[];

  /** @param cidrs Normalised CIDRs (`10.0.0.0/8`, `2001:db8::/32`); empty = nobody. */
  constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs;
    for (const c of cidrs) addCidr(this.#list, c);
  }

  get empty(): boolean {
    return this.cidrs.length === 0;
  }

  has(address: string): boolean {
    return this.cidrs.length > 0 && inList(this.#list, address);
  }
}

/** Adds `address/prefix` to a BlockList in its family. */
export function addCidr(list: net.BlockList, cidr: string): void {
  const slash = cidr.lastIndexOf('/');
  const address = cidr.slice(0, slash);
  list.addSubnet(address, Number(cidr.slice(slash + 1)), net.isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** Whether `address` (unmapped, as clientIP() gives it) is in `list`; not an IP address = not in it. */
export function inList(list: net.BlockList, address: string): boolean {
  if (net.isIPv4(address)) return list.check(address, 'ipv4');
  if (net.isIPv6(address)) return list.check(address, 'ipv6');
  return false;
}

// What a PROXY header said about a connection, kept beside its socket (a TLS socket's is its raw socket's).
const SOURCES = new WeakMap<Socket, { readonly address: string; readonly port: number }>();

export function setProxiedSource(socket: Socket, source: { readonly address: string; readonly port: number }): void {
  SOURCES.set(socket, source);
}

/** The connection's peer: the PROXY header's source when there was one, else the socket's remote address. */
export function peerAddress(socket: Socket): { address: string; port: number | undefined } {
  const proxied = SOURCES.get(socket) ?? SOURCES.get((socket as Socket & { _parent?: Socket })._parent as Socket);
  if (proxied !== undefined) return { address: unmap(proxied.address), port: proxied.port };
  return { address: unmap(socket.remoteAddress ?? ''), port: socket.remotePort };
}

/** The address without the IPv4-mapped prefix (`::ffff:1.2.3.4` → `1.2.3.4`). */
export function unmap(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Who made a request: `client` is what every per-client feature uses, `peer` the hop wsgate heard it from. */
export interface ClientAddress {
  readonly client: string;
  readonly peer: string;
}

/**
 * The request's client: X-Forwarded-For (walked from the right past trusted hops), else X-Real-IP, when the peer
 * is trusted; the peer otherwise.
 */
export function resolveClient(peer: string, headers: { readonly [k: string]: string | string[] | undefined }, trusted: TrustedProxies | undefined): ClientAddress {
  if (trusted === undefined || !trusted.has(peer)) return { client: peer, peer };
  const xff = headers['x-forwarded-for'];
  const chain = (Array.isArray(xff) ? xff.join(',') : (xff ?? '')).split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = unmap(stripPort(chain[i]!));
    if (net.isIP(hop) === 0) break; // garbage: believe nothing further left
    if (!trusted.has(hop) || i === 0) return { client: hop, peer };
  }
  const real = headers['x-real-ip'];
  const r = typeof real === 'string' ? unmap(real.trim()) : undefined;
  if (r !== undefined && net.isIP(r) !== 0) return { client: r, peer };
  return { client: peer, peer };
}

/** `1.2.3.4:5678` and `[2001:db8::1]:443` as some balancers write them → the address. */
function stripPort(hop: string): string {
  if (hop.startsWith('[')) {
    const end = hop.indexOf(']');
    return end > 0 ? hop.slice(1, end) : hop;
  }
  const colon = hop.indexOf(':');
  return colon > 0 && hop.indexOf(':', colon + 1) < 0 ? hop.slice(0, colon) : hop;
}

/** How a listener takes PROXY headers: from whom, and how long the header may take. */
export interface ProxyProtocolIn {
  readonly trusted: TrustedProxies;
  readonly timeoutMs: number;
}

export type ProxyReadOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: 'bad_proxy_header' | 'proxy_not_trusted'; readonly why: string };

/**
 * Reads the PROXY header off a freshly accepted socket, records its source (setProxiedSource), and puts back what
 * followed it, so that whoever reads the socket next sees the client's first byte first. Calls `done` once.
 */
export function readProxyHeader(socket: Socket, o: ProxyProtocolIn, done: (r: ProxyReadOutcome) => void): void {
  const peer = unmap(socket.remoteAddress ?? '');
  if (!o.trusted.empty && !o.trusted.has(peer)) {
    done({ ok: false, reason: 'proxy_not_trusted', why: `${peer} is not in --trusted-proxies` });
    return;
  }
  let buf: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (r: ProxyReadOutcome, rest?: Buffer): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('close', onClose);
    // What followed the header goes back first, so that the next owner's first read starts with the client's bytes.
    if (rest !== undefined && rest.length > 0) socket.unshift(rest);
    done(r);
  };
  const timer = setTimeout(() => finish({ ok: false, reason: 'bad_proxy_header', why: 'no PROXY header in time' }), o.timeoutMs);
  const onClose = (): void => finish({ ok: false, reason: 'bad_proxy_header', why: 'closed before its PROXY header' });
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.state === 'need-more') continue;
      if (r.state === 'invalid') return finish({ ok: false, reason: 'bad_proxy_header', why: r.why });
      if (r.source !== undefined) setProxiedSource(socket, r.source);
      return finish({ ok: true }, buf.subarray(r.length));
    }
  };
  socket.on('readable', onReadable);
  socket.once('close', onClose);
}
