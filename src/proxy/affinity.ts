// The affinity cookie issued by the proxy (issue 12): loadBalancing policy Cookie. socket.io and other apps that
// long-poll and then upgrade need every request of a session on one endpoint; behind NAT all clients share an IP, so
// hashing the client address piles them onto one endpoint, and the app's own cookie arrives too late to hash on.
//
//  1. A request without a valid cookie is balanced by least connections; the first response (a plain HTTP one, or
//     the 101 of a handshake) sets the cookie, naming the endpoint chosen.
//  2. The cookie's value is an HMAC (SHA-256, truncated) of the endpoint's address and a key: a client can neither
//     read which endpoint it names nor make one up. The key must be the same in every worker and every replica,
//     or a cookie issued by one would be unknown to another: it comes from --affinity-key-file (a Secret mounted
//     as a file); without it, each wsgate pod makes one at start and shares it with its workers only.
//  3. A request whose cookie names a ready endpoint of the route goes there. When that endpoint is gone, not ready,
//     or refuses the connection, the request is balanced again and the response sets a new cookie.
// Cookies are matched by computing the HMAC of each endpoint of the route, once per route backends (a table
// swap brings new arrays, and their cache goes with them).
import { createHmac, randomBytes } from 'node:crypto';
import type { AffinityCookie, Backend } from '../model/table.ts';
import { endpointKey } from './balancer.ts';

/** A key made at start when none is given (--affinity-key-file): good for one pod, not across replicas. */
export function generatedAffinityKey(): Buffer {
  return randomBytes(32);
}

export class Affinity {
  readonly #key: Buffer;
  readonly #byBackends = new WeakMap<readonly Backend[], Map<string, string>>();

  constructor(key: Buffer) {
    this.#key = key;
  }

  /** The cookie value naming `endpoint` (`address:port`). */
  token(endpoint: string): string {
    return createHmac('sha256', this.#key).update(endpoint).digest('base64url').slice(0, 22);
  }

  /** The endpoint key a cookie value names among the route's endpoints, or undefined (absent, forged, gone). */
  endpointOf(value: string | undefined, backends: readonly Backend[]): string | undefined {
    if (value === undefined || value === '') return undefined;
    let tokens = this.#byBackends.get(backends);
    if (tokens === undefined) {
      tokens = new Map();
      for (const b of backends) for (const e of b.endpoints) tokens.set(this.token(endpointKey(e)), endpointKey(e));
      this.#byBackends.set(backends, tokens);
    }
    return tokens.get(value);
  }

  /**
   * The Set-Cookie value for a response from `endpoint`, or undefined when the request's cookie already named it.
   * @param routePath The rule's path: the cookie's Path when the policy names none.
   * @param overTls The request came in on the TLS listener: Secure is sent even if the policy does not ask.
   */
  setCookie(cookie: AffinityCookie, endpoint: string, preferred: string | undefined, routePath: string, overTls: boolean): string | undefined {
    if (preferred === endpoint) return undefined;
    let v = `${cookie.name}=${this.token(endpoint)}; Path=${cookie.path !== '' ? cookie.path : routePath}`;
    if (cookie.maxAgeSeconds > 0) v += `; Max-Age=${cookie.maxAgeSeconds}`;
    if (cookie.sameSite !== '') v += `; SameSite=${cookie.sameSite}`;
    // SameSite=None is refused by browsers without Secure.
    if (cookie.secure || overTls || cookie.sameSite === 'None') v += '; Secure';
    return `${v}; HttpOnly`;
  }
}

/**
 * A 101 head (as received, ending in the blank line) with a Set-Cookie line added before its end; the head as it was
 * when it does not end in CRLF CRLF (llhttp accepted it, so this is only a guard).
 */
export function withSetCookie(head: Buffer, setCookie: string): Buffer {
  const n = head.length;
  if (n < 4 || head[n - 4] !== 13 || head[n - 3] !== 10 || head[n - 2] !== 13 || head[n - 1] !== 10) return head;
  return Buffer.concat([head.subarray(0, n - 2), Buffer.from(`Set-Cookie: ${setCookie}\r\n\r\n`, 'latin1')]);
}
