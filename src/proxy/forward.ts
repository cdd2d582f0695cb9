// The headers a request carries to its backend: the client's own, casing kept, minus hop-by-hop headers, plus
// X-Forwarded-For/-Proto/-Host/-Port and X-Real-IP. For a WebSocket handshake the upgrade pair is kept.
export interface ForwardInfo {
  /** The real client (client-address.ts): X-Real-IP. */
  readonly clientIP: string;
  /**
   * The hop wsgate heard the request from, appended to X-Forwarded-For [default clientIP]. It differs from clientIP
   * only when a trusted proxy's X-Forwarded-For named the client (issue 12).
   */
  readonly peerIP?: string;
  readonly proto: 'http' | 'https';
  /** The port the client connected to (wsgate's listener). */
  readonly port: number;
  /**
   * The Host to send instead of the client's: the authority of an absolute-form request-target, which RFC 9112
   * §3.2.2 says takes the place of the Host header (and which wsgate routed on).
   */
  readonly host?: string;
}

// RFC 9110 §7.6.1 and the de-facto ones proxies drop.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);
// Set by wsgate; a client's own values would be spoofable.
const OURS = new Set(['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip']);

/**
 * @param rawHeaders The request's rawHeaders ([name, value, name, value, ...]).
 * @param upgrade For a WebSocket handshake: keep the client's Upgrade header and send `Connection: Upgrade`.
 * @param protocols When set, replaces Sec-WebSocket-Protocol with these (the allowed subset of the offer).
 * @returns A flat [name, value, ...] array, suitable for a request head or http.request's `headers`.
 */
export function forwardHeaders(
  rawHeaders: readonly string[],
  info: ForwardInfo,
  upgrade: boolean,
  protocols?: readonly string[],
  /** Set on the request, replacing what the client sent under these names (the auth service's answer; issue 12). */
  extra?: readonly (readonly [string, string])[],
): string[] {
  // Headers named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  let named: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const t of rawHeaders[i + 1]!.split(',')) {
        const n = t.trim().toLowerCase();
        if (n && n !== 'upgrade') (named ??= new Set()).add(n);
      }
    }
  }
  const out: string[] = [];
  let xff: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' && upgrade) {
      out.push(name, value);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || OURS.has(lower) || named?.has(lower)) continue;
    if (extra !== undefined && extra.length > 0 && extra.some(([n]) => n === lower)) continue;
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? value : `${xff}, ${value}`;
      continue;
    }
    if (lower === 'sec-websocket-protocol' && protocols) continue;
    if (lower === 'host') {
      host = info.host ?? value;
      out.push(name, host);
      continue;
    }
    out.push(name, value);
  }
  if (host === undefined && info.host !== undefined) {
    host = info.host;
    out.push('Host', host);
  }
  if (upgrade) {
    out.push('Connection', 'Upgrade');
    if (protocols && protocols.length > 0) out.push('Sec-WebSocket-Protocol', protocols.join(', '));
  }
  if (extra !== undefined) for (const [n, v] of extra) out.push(n, v);
  const hop = info.peerIP ?? info.clientIP;
  out.push('X-Forwarded-For', xff === undefined ? hop : `${xff}, ${hop}`);
  out.push('X-Forwarded-Proto', info.proto);
  if (host !== undefined) out.push('X-Forwarded-Host', host);
  out.push('X-Forwarded-Port', String(info.port));
  out.push('X-Real-IP', info.clientIP);
  return out;
}

/** Serialises a request head for a raw socket. Names and values come from Node's strict parser: no CR/LF. */
export function requestHead(method: string, target: string, headers: readonly string[]): string {
  let s = `${method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${s}\r\n`;
}

/** Removes hop-by-hop headers from a backend response's rawHeaders, for relaying with res.writeHead. */
export function responseHeaders(rawHeaders: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

/** The client's address without the IPv4-mapped prefix (`::ffff:1.2.3.4` → `1.2.3.4`). */
export function clientIP(remoteAddress: string | undefined): string {
  if (!remoteAddress) return '';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}
