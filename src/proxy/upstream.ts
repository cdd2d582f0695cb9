// Opens the TCP connection to a backend endpoint for a new tunnel or request: picks an endpoint, connects with the
// route's timeout, and on refusal tries another ready endpoint (up to MAX_ATTEMPTS) before giving up.
import net from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Backend, BackendTLS, LoadBalancing } from '../model/table.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Balancer, HashInput, Pick } from './balancer.ts';
import { isTlsError, upgradeToTls } from './backend-tls.ts';
import type { ConnectFailure } from './outcomes.ts';

/** Distinct endpoints tried for one connection before it fails with 502. */
const MAX_ATTEMPTS = 3;

export interface UpstreamRequest {
  readonly routeId: string;
  /** Metric label `namespace/name`. */
  readonly route: string;
  readonly backends: readonly Backend[];
  readonly loadBalancing: LoadBalancing;
  readonly hashInput: HashInput;
  readonly connectTimeoutSeconds: number;
  /** TLS to the endpoint (wss://; issue 12, backend-tls.ts); absent or disabled = plain TCP. */
  readonly tls?: BackendTLS;
}

export interface Upstream {
  /** A TLSSocket when the route has backendTLS. */
  readonly socket: net.Socket;
  readonly pick: Pick;
}

/** Why a TCP connect to a backend failed: the reason label of wsgate_upstream_connect_errors_total. */
export function connectFailure(err: NodeJS.ErrnoException): ConnectFailure {
  if (isTlsError(err)) return 'tls';
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    default:
      return 'other';
  }
}

/**
 * Connects to an endpoint of the route. The returned socket is connected, has allowHalfOpen set, no timeout and
 * TCP keepalive on. The caller owns it, and must call balancer.release(pick.key) when it closes.
 * Rejects with a WsgateError whose code is NO_ENDPOINT, UPSTREAM_REFUSED, UPSTREAM_TIMEOUT or UPSTREAM_TLS (its cause
 * the TLS error, whose code names the OpenSSL reason).
 */
export async function connectUpstream(req: UpstreamRequest, balancer: Balancer, metrics: Metrics): Promise<Upstream> {
  const tried = new Set<string>();
  let last: ConnectFailure | undefined;
  let tlsError: Error | undefined;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const pick = balancer.pick(req.routeId, req.backends, req.loadBalancing, req.hashInput, tried);
    if (!pick) break;
    tried.add(pick.key);
    balancer.acquire(pick.key);
    try {
      const socket = await connectOnce(pick, req.connectTimeoutSeconds * 1000);
      // [issue 12] wss://: the TLS handshake, within the same timeout.
      if (req.tls?.enabled === true) return { socket: await upgradeToTls(socket, req.tls, pick.backend, req.connectTimeoutSeconds * 1000), pick };
      return { socket, pick };
    } catch (err) {
      balancer.release(pick.key);
      last = connectFailure(err as NodeJS.ErrnoException);
      metrics.upstreamConnectErrors.inc({ route: req.route, reason: last });
      if (last === 'tls') tlsError = err as Error;
      // A timeout already cost the client connectTimeoutSeconds: answer now rather than multiply the wait.
      if (last === 'timeout') {
        throw new WsgateError(ErrorCodes.UPSTREAM_TIMEOUT, `connect to ${pick.key} timed out`, { cause: err });
      }
    }
  }
  if (last === undefined) throw new WsgateError(ErrorCodes.NO_ENDPOINT, `route ${req.route} has no ready endpoint`);
  if (tlsError !== undefined) {
    throw new WsgateError(ErrorCodes.UPSTREAM_TLS, `TLS to the endpoints of route ${req.route} failed (${(tlsError as NodeJS.ErrnoException).code ?? tlsError.message})`, { cause: tlsError });
  }
  throw new WsgateError(ErrorCodes.UPSTREAM_REFUSED, `no endpoint of route ${req.route} accepted the connection (${last})`);
}

function connectOnce(pick: Pick, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: pick.endpoint.address,
      port: pick.endpoint.port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 60_000,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      const e: NodeJS.ErrnoException = new Error('connect timeout');
      e.code = 'ETIMEDOUT';
      reject(e);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      resolve(socket);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
  });
}
