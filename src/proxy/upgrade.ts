// One WebSocket handshake, from the request head to a tunnel or a refusal. The TunnelRegistry owns it from the
// moment it starts (a stop or a drain sees it), until it becomes a tunnel or ends; every way out goes through one
// method (#toTunnel, #reject, #relayRefusal's end, #abandon, abort), so that slots and endpoints are released and
// the outcome counted exactly once.
//
// The fixed order of checks (plain HTTP requests go through 1, 2 and 4–7 in the same order: l7.ts):
//  1. the request itself (handshake.ts: method, Upgrade, Connection, key, version);
//  2. the route, from the table current now (a later swap does not change it); [issue 14] a Gateway API rule's
//     fixed answer (500) or RequestRedirect ends it here, and its URLRewrite and RequestHeaderModifier shape the head
//     the backend gets (filters.ts);
//  3. Origin, then subprotocols;
//  4–7. the route's edge policy (edge-checks.ts, issue 12): 4. the HTTPS redirect (426, or a redirect),
//     5. source ranges (403), 6. the request rate per client IP (429), 7. external auth (401/403, or 500/503);
//  8. limits (a slot of the rule, and of the client on the rule);
//  9. an endpoint that accepts the TCP connection (upstream.ts: up to 3 tried; the affinity cookie's endpoint
//     first, affinity.ts), and its TLS handshake when the rule has backendTLS (backend-tls.ts);
//  10. the backend's answer, read by llhttp: a 101 makes a tunnel (with the affinity cookie set in it when one is
//     issued), anything else is relayed to the client as it is.
// The client address every step uses is the real client's (client-address.ts), resolved at the edge (l7.ts).
import type { Socket } from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { RateLimitedLog } from '../log/rate-limit.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { HttpRoute } from '../model/table.ts';
import { BackendResponse, type ResponseEvent } from './backend-response.ts';
import { withSetCookie, type Affinity } from './affinity.ts';
import { serverName } from './backend-tls.ts';
import { hashKey, type Balancer, type HashInput } from './balancer.ts';
import { PASS, type EdgeChecks, type EdgeVerdict } from './edge-checks.ts';
import { clientIP, forwardHeaders, requestHead, type ForwardInfo } from './forward.ts';
import { negotiateProtocols, originAllowed, REJECTIONS, rejectionResponse, validateHandshake, type Rejection } from './handshake.ts';
import type { RequestHead } from './handshake-front.ts';
import { hashInput } from './http-forward.ts';
import type { ConnectionLimits } from './limits.ts';
import { CLIENT_CLOSED_REQUEST, type Outcome } from './outcomes.ts';
import type { TargetRejection } from './normalize.ts';
import type { Router } from './router.ts';
import type { PendingConnection, TunnelRegistry } from './registry.ts';
import { keepAliveOn } from './listener-keepalive.ts';
import { connectUpstream, type Upstream } from './upstream.ts';
import { allowedRsvOf } from './ws-session.ts';
import { modifyHeaders, redirectLocation, rewriteRequest } from './filters.ts';

export interface UpgradeDeps {
  readonly metrics: Metrics;
  /** Rate-limited: clients decide how many of these lines there are. */
  readonly rlog: RateLimitedLog;
  readonly registry: TunnelRegistry;
  readonly balancer: Balancer;
  readonly limits: ConnectionLimits;
  /** A backend must answer the handshake in this time (else 504); a refusal relay may stall this long (ms). */
  readonly handshakeTimeoutMs: number;
  /** [issue 12] Steps 4–7. */
  readonly edge: EdgeChecks;
  /** [issue 12] The affinity cookie's key (loadBalancing policy Cookie). */
  readonly affinity: Affinity;
}

/** Where the request arrived: the listener's protocol and port (for X-Forwarded-Proto/-Port). */
export interface ListenerInfo {
  readonly proto: 'http' | 'https';
  readonly port: number;
  /** The listening socket has TCP keepalive, which its connections inherit (listener-keepalive.ts). */
  readonly keepAliveInherited?: boolean;
}

/** What a handshake looks for in the request, resolved at the edge (see l7.ts). */
export interface UpgradeRequest {
  /** The request head: an IncomingMessage, or handshake-front.ts's head read without http.Server. */
  readonly req: RequestHead;
  /** The request-target to send to the backend (normalised). */
  readonly target: string;
  /** The path used for routing (normalised, no query). */
  readonly path: string;
  /** The host routed on (normalised, no port). */
  readonly host: string | undefined;
  /** The Host the backend receives instead of the client's (absolute-form targets). */
  readonly hostHeader?: string | undefined;
  /** Set when the request-target or Host could not be normalised: the handshake is refused with 400. */
  readonly invalid?: TargetRejection;
  /** [issue 12] The real client and the hop it came through (client-address.ts); default: the socket's peer. */
  readonly clientIP?: string;
  readonly peerIP?: string;
}

function noop(): void {}

export class Upgrade implements PendingConnection {
  readonly #d: UpgradeDeps;
  readonly #client: Socket;
  readonly #head: Buffer;
  readonly #startedAt: number;
  readonly #readBase: number;
  readonly #ip: string;
  readonly #host: string | undefined;
  readonly #path: string;
  #route: HttpRoute | undefined;
  #limitHeld = false;
  #upstream: Upstream | undefined;
  #response: BackendResponse | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Set once the handshake has left the registry's pending set (tunnel, refusal, or end). */
  #settled = false;
  /** Set once nothing more may happen: every listener of this handshake is gone. */
  #done = false;
  /** What exactly was wrong with a request refused as bad_request (normalize.ts reasons), for the log line. */
  #detail: string | undefined;
  #hashKey: string | undefined;
  /** [issue 12] The Set-Cookie to add to the 101 (affinity.ts), once the endpoint is known. */
  #setCookie: string | undefined;
  /** The tunnel's client socket must be given TCP keepalive itself: its listener's is not inherited. */
  #keepAlive = true;

  constructor(deps: UpgradeDeps, client: Socket, head: Buffer, r: UpgradeRequest) {
    this.#d = deps;
    this.#client = client;
    this.#head = head;
    this.#startedAt = performance.now();
    this.#readBase = client.bytesRead - head.length;
    this.#ip = r.clientIP ?? clientIP(client.remoteAddress);
    this.#host = r.host;
    this.#path = r.path;
  }

  /** Runs the handshake against `router`'s table. */
  start(r: UpgradeRequest, router: Router, listener: ListenerInfo): void {
    const client = this.#client;
    this.#keepAlive = listener.keepAliveInherited !== true;
    // Errors before the tunnel exists end the handshake through 'close'; the tunnel brings its own handlers.
    client.on('error', noop);
    // on(), not once(): 'close' fires once anyway, and once() wraps the listener in a closure; #end removes it.
    client.on('close', this.#clientOnClose);
    this.#d.registry.track(this);
    if (this.#done) return;

    // 1. The request itself: a target and host that normalise (normalize.ts), then the handshake headers.
    if (r.invalid) {
      this.#detail = r.invalid.reason;
      return this.#reject(REJECTIONS.bad_request);
    }
    const v = validateHandshake(r.req.method, r.req.headers);
    if (!('ok' in v)) return this.#reject(v);
    // 2. The route.
    const route = router.find(r.host, r.path, { method: 'GET', headers: r.req.headers, target: r.target });
    if (!route) return this.#reject(REJECTIONS.no_route);
    this.#route = route;
    const policy = route.policy;
    // 3. Origin, then subprotocols.
    if (!originAllowed(v.origin, policy.allowedOrigins)) return this.#reject(REJECTIONS.origin_not_allowed);
    const protocols = negotiateProtocols(v.protocols, policy.subprotocols);
    if (!protocols) return this.#reject(REJECTIONS.subprotocol_not_allowed);
    // 4–7. [issue 12] The edge policy: redirect, source ranges, rate, external auth (edge-checks.ts).
    const verdict = this.#d.edge.check({
      route,
      proto: listener.proto,
      host: r.host,
      hostHeader: r.hostHeader ?? r.req.headers.host,
      target: r.target,
      method: 'GET',
      clientIP: this.#ip,
      headers: r.req.headers,
      webSocket: true,
    });
    if (verdict === PASS) return this.#admit(r, route, protocols, listener, verdict);
    if (!(verdict instanceof Promise)) return this.#admit(r, route, protocols, listener, verdict);
    void verdict.then(
      (v2) => this.#admit(r, route, protocols, listener, v2),
      () => this.#admit(r, route, protocols, listener, { ok: false, rejection: REJECTIONS.auth_unavailable }),
    );
  }

  /** Steps 8–10, once the edge policy has answered (at once, or after the rate or auth round trip). */
  #admit(r: UpgradeRequest, route: HttpRoute, protocols: readonly string[], listener: ListenerInfo, verdict: EdgeVerdict): void {
    if (this.#done) return;
    if (!verdict.ok) {
      if (verdict.detail !== undefined) this.#detail = verdict.detail;
      return this.#reject(verdict.rejection);
    }
    const policy = route.policy;
    // [issue 14] A Gateway API rule's fixed answer or redirect (filters.ts), and the backend whose turn it is.
    const f = route.filters;
    if (f?.directStatus !== undefined) return this.#reject({ ...REJECTIONS.invalid_backend, status: f.directStatus });
    if (f?.redirect !== undefined) {
      const Location = redirectLocation(f.redirect, route, { scheme: listener.proto, host: r.host, port: listener.port, path: r.path, target: r.target });
      return this.#reject({ ...REJECTIONS.route_redirect, status: f.redirect.statusCode, headers: { Location } });
    }
    const backends = this.#d.balancer.backendsFor(route);
    if (backends === 'invalid') return this.#reject(REJECTIONS.invalid_backend);
    // Everything the backend will be sent is taken from the request now: the request object is not kept.
    const info: ForwardInfo = {
      clientIP: this.#ip,
      ...(r.peerIP !== undefined ? { peerIP: r.peerIP } : {}),
      proto: listener.proto,
      port: listener.port,
      ...(r.hostHeader !== undefined ? { host: r.hostHeader } : {}),
    };
    let headers = forwardHeaders(r.req.rawHeaders, info, true, policy.subprotocols.length > 0 ? protocols : undefined, verdict.headers);
    let target = r.target;
    if (f?.rewrite !== undefined) ({ target, headers } = rewriteRequest(f.rewrite, route, r.path, target, headers));
    if (f?.requestHeaders !== undefined) headers = modifyHeaders(headers, f.requestHeaders);
    const requestBytes = requestHead('GET', target, headers);
    const lb = policy.loadBalancing;
    // Only ConsistentHash and Cookie read the request (headers, cookies, query): the others get the address alone.
    let hash: HashInput = lb.policy === 'ConsistentHash' || lb.policy === 'Cookie' ? hashInput(this.#ip, r.req, r.target) : { clientIP: this.#ip };
    // A ConsistentHash route keeps what the endpoint was chosen by, so that a rebalance moves only what moved.
    if (lb.policy === 'ConsistentHash') this.#hashKey = hashKey(lb.hashOn, hash) ?? this.#ip;
    // [issue 12] A Cookie route prefers the endpoint the affinity cookie names.
    const preferred = lb.policy === 'Cookie' ? this.#d.affinity.endpointOf(hash.cookie?.(lb.cookie.name), route.backends) : undefined;
    if (preferred !== undefined) hash = { ...hash, preferred };
    const overTls = listener.proto === 'https';
    // 8. Limits: a local answer, or (several workers, a limited rule) the pod-wide budget's.
    const admitted = this.#d.limits.tryAcquire(route.id, this.#ip, policy.maxConnections, policy.maxConnectionsPerClient);
    const connect = (ok: boolean): void => {
      if (this.#done) {
        if (ok) this.#d.limits.release(route.id, this.#ip);
        return;
      }
      if (!ok) return this.#reject(REJECTIONS.over_limit);
      this.#limitHeld = true;
      // 9. An endpoint.
      connectUpstream(
        {
          routeId: route.id,
          route: route.route,
          backends,
          loadBalancing: policy.loadBalancing,
          hashInput: hash,
          connectTimeoutSeconds: policy.connectTimeoutSeconds,
          ...(policy.backendTLS.enabled ? { tls: policy.backendTLS } : {}),
        },
        this.#d.balancer,
        this.#d.metrics,
      ).then(
        (up) => {
          // [issue 12] The affinity cookie naming the endpoint, unless the request's already did.
          if (lb.policy === 'Cookie') this.#setCookie = this.#d.affinity.setCookie(lb.cookie, up.pick.key, preferred, route.path, overTls);
          this.#upstreamOnConnect(up, requestBytes);
        },
        (err: unknown) => {
          if (this.#done) return;
          const code = err instanceof WsgateError ? err.code : undefined;
          if (code === ErrorCodes.UPSTREAM_TLS) {
            const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
            this.#detail = `backend TLS: ${cause?.code ?? cause?.message ?? 'failed'}`;
            this.#d.rlog.warn(
              { route: route.route, code: cause?.code, error: cause?.message, serverName: serverName(policy.backendTLS, route.backends[0]?.name ?? '') },
              'backend TLS handshake failed',
            );
          }
          this.#reject(
            code === ErrorCodes.NO_ENDPOINT
              ? REJECTIONS.no_endpoint
              : code === ErrorCodes.UPSTREAM_TIMEOUT
                ? REJECTIONS.upstream_timeout
                : code === ErrorCodes.UPSTREAM_TLS
                  ? REJECTIONS.upstream_tls_error
                  : REJECTIONS.upstream_refused,
          );
        },
      );
    };
    if (typeof admitted === 'boolean') connect(admitted);
    else void (admitted).then(connect, () => connect(false));
  }

  /** wsgate is stopping: the handshake ends now. */
  abort(outcome: Outcome): void {
    if (this.#done) return;
    this.#end();
    this.#upstream?.socket.destroy();
    this.#client.destroy();
    this.#count(outcome);
  }

  // 10. The backend's answer.
  #upstreamOnConnect(up: Upstream, requestBytes: string): void {
    if (this.#done) {
      up.socket.destroy();
      this.#d.balancer.release(up.pick.key);
      return;
    }
    this.#upstream = up;
    const upstream = up.socket;
    upstream.on('error', noop);
    // One write for the head and the bytes that came with it. Header bytes are latin1 as llhttp read them.
    if (this.#head.length > 0) upstream.write(Buffer.concat([Buffer.from(requestBytes, 'latin1'), this.#head]));
    else upstream.write(requestBytes, 'latin1');
    this.#response = new BackendResponse();
    upstream.on('data', this.#upstreamOnData);
    // allowHalfOpen: a backend that sends FIN without an answer gives 'end', not 'close'.
    upstream.on('end', this.#upstreamOnEnd);
    upstream.once('close', this.#upstreamOnClose);
    this.#arm();
  }

  readonly #upstreamOnData = (chunk: Buffer): void => {
    const ev = this.#response!.feed(chunk);
    switch (ev.kind) {
      case 'need-more':
        return;
      case 'invalid':
        return this.#reject(REJECTIONS.upstream_bad_response);
      case 'switched':
        return this.#toTunnel(ev);
      case 'response':
        return this.#relayRefusal(ev);
      case 'body':
        return this.#relay(chunk, ev.complete);
    }
  };

  readonly #upstreamOnEnd = (): void => {
    if (this.#response?.head === undefined) return this.#reject(REJECTIONS.upstream_refused);
    // A close-delimited refusal body ends with the backend's FIN.
    this.#response.end();
    this.#finishRefusal();
  };

  readonly #upstreamOnClose = (): void => {
    if (this.#done) return;
    if (this.#response?.head === undefined) return this.#reject(REJECTIONS.upstream_refused);
    this.#finishRefusal();
  };

  readonly #clientOnClose = (): void => {
    if (this.#done) return;
    // The client went away before the handshake ended: an abort, not an upstream error.
    this.#end();
    this.#upstream?.socket.destroy();
    this.#count('client_abort');
    this.#logLine('handshake abandoned by the client', CLIENT_CLOSED_REQUEST, undefined);
  };

  #toTunnel(ev: Extract<ResponseEvent, { kind: 'switched' }>): void {
    const client = this.#client;
    const up = this.#upstream!;
    const route = this.#route!;
    // The tunnel is opened before the handshake leaves the pending set, so that a drain always sees one of them.
    this.#end(false, false);
    // Nothing more is read from the backend until the tunnel resumes it.
    up.socket.pause();
    // The 101 as received (with the affinity cookie when one is issued: issue 12).
    const head = this.#setCookie === undefined ? ev.raw : withSetCookie(ev.raw, this.#setCookie);
    const writtenBase = client.bytesWritten + head.length;
    // The 101, and in the same write the backend's first frames if they shared its read: they belong to the client
    // (h2o#1272).
    client.write(ev.rest.length > 0 ? Buffer.concat([head, ev.rest]) : head);
    if (this.#keepAlive) keepAliveOn(client);
    client.removeListener('error', noop);
    up.socket.removeListener('error', noop);
    this.#d.metrics.handshakeDuration.observe({ route: route.route }, (performance.now() - this.#startedAt) / 1000);
    // The tunnel now holds the slot and the endpoint; the registry gives both back when it ends.
    this.#limitHeld = false;
    this.#d.registry.open({
      route: route.route,
      layer: 'l7',
      client,
      upstream: up.socket,
      clientAddress: this.#ip,
      backend: up.pick.key,
      idleTimeoutMs: route.policy.idleTimeoutSeconds * 1000,
      clientReadBase: this.#readBase,
      clientWrittenBase: writtenBase,
      startedAt: this.#startedAt,
      routeId: route.id,
      ...(route.policy.inspectFrames ? { ws: { policy: route.policy, allowedRsv: allowedRsvOf(ev.head.rawHeaders) } } : {}),
      host: this.#host,
      path: this.#path,
      drain: route.policy,
      ...(this.#hashKey !== undefined ? { hashKey: this.#hashKey } : {}),
    });
    this.#settle();
  }

  /**
   * A backend that answers a handshake with anything but 101: the client gets that answer as it is, then both
   * close. The relay respects the client's backpressure (a client that does not read holds the backend, not
   * wsgate's memory) and is bounded by a timer re-armed on progress.
   */
  #relayRefusal(ev: Extract<ResponseEvent, { kind: 'response' }>): void {
    const route = this.#route!;
    this.#d.metrics.handshakeRejections.inc({ route: route.route, reason: 'backend_refused_upgrade' });
    this.#count('rejected');
    this.#logLine('backend refused the upgrade', ev.head.status, 'backend_refused_upgrade');
    this.#settle();
    this.#relay(ev.raw, ev.complete);
  }

  #relay(chunk: Buffer, complete: boolean): void {
    const client = this.#client;
    const upstream = this.#upstream!.socket;
    this.#arm();
    if (!client.write(chunk) && !complete) {
      upstream.pause();
      client.once('drain', this.#clientOnDrain);
    }
    if (complete) this.#finishRefusal();
  }

  readonly #clientOnDrain = (): void => {
    if (this.#done) return;
    this.#arm();
    this.#upstream?.socket.resume();
  };

  #finishRefusal(): void {
    if (this.#done) return;
    this.#end();
    this.#upstream?.socket.destroy();
    const client = this.#client;
    // The refusal ends the connection; the socket goes once its last bytes are flushed (or at the timer).
    client.end();
    client.once('finish', destroySocket);
    const timer = setTimeout(destroySocket.bind(client), this.#d.handshakeTimeoutMs);
    timer.unref();
    client.once('close', () => clearTimeout(timer));
  }

  /** wsgate's own refusal: one complete response with Connection: close, then the socket goes. */
  #reject(r: Rejection): void {
    if (this.#done) return;
    this.#end();
    this.#upstream?.socket.destroy();
    const route = this.#route?.route ?? '';
    this.#d.metrics.handshakeRejections.inc({ route, reason: r.reason });
    this.#count('rejected');
    this.#logLine('handshake rejected', r.status, r.reason);
    const client = this.#client;
    if (client.destroyed) return;
    if (!client.writable) {
      client.destroy();
      return;
    }
    client.once('finish', destroySocket);
    client.end(rejectionResponse(r));
  }

  /** Re-arms the deadline: the backend's answer, or the refusal relay's next progress. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#timeout, this.#d.handshakeTimeoutMs);
  }

  readonly #timeout = (): void => {
    if (this.#done) return;
    if (this.#response?.head === undefined) return this.#reject(REJECTIONS.upstream_timeout);
    // A refusal relay that made no progress: the client stopped reading, or the backend stalled.
    this.#end();
    this.#upstream?.socket.destroy();
    this.#client.destroy();
  };

  /** Leaves the registry's pending set (once). */
  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#d.registry.settle(this);
  }

  /**
   * Nothing more happens in this handshake: its listeners and timer go, the slot and endpoint are released unless
   * a tunnel took them over (release = false), and it leaves the registry.
   */
  #end(release = true, settle = true): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#client.removeListener('close', this.#clientOnClose);
    this.#client.removeListener('drain', this.#clientOnDrain);
    const up = this.#upstream;
    if (up) {
      up.socket.removeListener('data', this.#upstreamOnData);
      up.socket.removeListener('end', this.#upstreamOnEnd);
      up.socket.removeListener('close', this.#upstreamOnClose);
    }
    this.#response?.close();
    if (release) {
      if (up) this.#d.balancer.release(up.pick.key);
      if (this.#limitHeld) this.#d.limits.release(this.#route!.id, this.#ip);
      this.#limitHeld = false;
    }
    if (settle) this.#settle();
  }

  #count(outcome: Outcome): void {
    this.#d.metrics.connectionsTotal.inc({ route: this.#route?.route ?? '', layer: 'l7', outcome });
  }

  #logLine(message: string, status: number, reason: string | undefined): void {
    this.#d.rlog.info(
      {
        route: this.#route?.route ?? '',
        host: this.#host,
        path: this.#path,
        status,
        ...(reason !== undefined ? { reason } : {}),
        ...(this.#detail !== undefined ? { detail: this.#detail } : {}),
        client: this.#ip,
      },
      message,
    );
  }
}

function destroySocket(this: Socket): void {
  this.destroy();
}
