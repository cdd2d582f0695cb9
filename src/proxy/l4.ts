// The L4 data plane: one TCP listener per tunnel port. A plain port forwards every connection to its tunnel's
// backends; a port with SNI names reads the TLS ClientHello (never decrypting anything), picks the tunnel by server
// name, and replays the bytes it read to the backend before anything else the client sends.
//
// Tables are swapped atomically: a connection is routed with the table that was current when it was accepted, and
// established tunnels belong to the TunnelRegistry, so neither a table swap nor a closed listener touches them.
//
// [issue 12] With --proxy-protocol a connection's PROXY header is read first (client-address.ts) and its source is
// the client every step sees (limits, source ranges, logs, the PROXY header sent on). A tunnel's
// allowedSourceRanges/deniedSourceRanges refuse a connection by closing it at once (source_denied). The HTTPS
// listener hands ssl-passthrough connections here too (passthrough()).
import net from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Outcome, RejectReason } from './outcomes.ts';
import { DEFAULT_POLICY, type LoadBalancing, type PassthroughRoute, type RoutingTable, type TunnelRoute } from '../model/table.ts';
import { sourceAllowed } from './access.ts';
import { peerAddress, readProxyHeader, type ProxyProtocolIn } from './client-address.ts';
import type { Balancer } from './balancer.ts';
import type { ConnectionLimits } from './limits.ts';
import { proxyV1Header, proxyV2Header } from './proxy-protocol.ts';
import { parseClientHello } from './sni.ts';
import type { PendingConnection, TunnelRegistry } from './registry.ts';
import { keepAliveOn, keepAliveOnListener } from './listener-keepalive.ts';
import { connectUpstream } from './upstream.ts';

export interface L4ProxyDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly registry: TunnelRegistry;
  readonly balancer: Balancer;
  readonly limits: ConnectionLimits;
  /** Address the tunnel listeners bind (--tunnel-host; default 0.0.0.0). */
  readonly host: string;
  /** Milliseconds a client on an SNI port has to send its whole ClientHello (default 5000). */
  readonly helloTimeoutMs?: number;
  /** Bind with SO_REUSEPORT, so that several worker processes share each port (default false). */
  readonly reusePort?: boolean;
  /** [issue 12] --proxy-protocol: every connection starts with a PROXY header from a trusted hop. */
  readonly proxyProtocol?: ProxyProtocolIn;
}

/** Why an L4 connection never became a tunnel: the `reason` of wsgate_handshake_rejections_total. */
export type L4RejectReason = Extract<
  RejectReason,
  | 'over_limit'
  | 'hello_timeout'
  | 'bad_client_hello'
  | 'no_route'
  | 'no_endpoint'
  | 'upstream_refused'
  | 'upstream_timeout'
  | 'source_denied'
  | 'bad_proxy_header'
  | 'proxy_not_trusted'
>;

/** The tunnels of one port, indexed for lookup by server name. Built once per table, then only read. */
interface PortRoutes {
  readonly port: number;
  readonly exact: ReadonlyMap<string, TunnelRoute>;
  /** `*.example.com` keyed by `example.com`. */
  readonly wildcard: ReadonlyMap<string, TunnelRoute>;
  /** The SNI-less tunnel: every connection on a plain port, the fallback on an SNI port. */
  readonly plain: TunnelRoute | undefined;
}

/** TunnelRoute carries no load-balancing policy: tunnels always spread by live connections. */
const TUNNEL_LOAD_BALANCING: LoadBalancing = Object.freeze({ policy: 'LeastConnections' });
/** Metric label of a connection rejected before any tunnel was chosen. */
const NO_ROUTE_LABEL = '';

export class L4Proxy {
  readonly #deps: L4ProxyDeps;
  readonly #log: Logger;
  readonly #helloTimeoutMs: number;
  #ports: ReadonlyMap<number, PortRoutes> = new Map();
  readonly #servers = new Map<number, net.Server>();
  readonly #failed = new Map<number, Error>();
  /** Serialises update() and close(), so listeners are never opened twice for one port. */
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(deps: L4ProxyDeps) {
    this.#deps = deps;
    this.#log = deps.log.child({ component: 'l4' });
    this.#helloTimeoutMs = deps.helloTimeoutMs ?? 5000;
  }

  /**
   * Installs a new table: swaps the routes (new connections use them at once), closes the listeners of ports that
   * are gone (their established tunnels stay), and opens listeners for new ports, and for ports that failed to bind
   * before. Resolves when every bind has succeeded or failed; a failed port is logged and listed in failedPorts().
   */
  update(table: RoutingTable): Promise<void> {
    const next = this.#queue.then(() => this.#apply(table));
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Ports with a bound listener, ascending. */
  listening(): number[] {
    return [...this.#servers.keys()].sort((a, b) => a - b);
  }

  /** Ports of the current table whose listener could not bind, ascending (for readiness). */
  failedPorts(): number[] {
    return [...this.#failed.keys()].sort((a, b) => a - b);
  }

  /**
   * Stops listening. Connections already accepted (reading their hello, waiting for a backend, or tunnels) belong
   * to the registry, which drains them (registry.drained(), registry.closeAll()).
   */
  close(): Promise<void> {
    const next = this.#queue.then(() => {
      this.#closed = true;
      this.#ports = new Map();
      for (const [port, server] of this.#servers) this.#closeServer(port, server);
      this.#failed.clear();
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #apply(table: RoutingTable): Promise<void> {
    if (this.#closed) return;
    const ports = indexTunnels(table.tunnels);
    this.#ports = ports;
    for (const [port, server] of this.#servers) {
      if (!ports.has(port)) this.#closeServer(port, server);
    }
    for (const port of this.#failed.keys()) {
      if (!ports.has(port)) this.#failed.delete(port);
    }
    const binds: Promise<void>[] = [];
    for (const port of ports.keys()) {
      if (!this.#servers.has(port)) binds.push(this.#listen(port));
    }
    await Promise.all(binds);
  }

  #listen(port: number): Promise<void> {
    const { host } = this.#deps;
    const server = net.createServer({
      allowHalfOpen: true,
      // Nothing is read until this proxy decides to: an SNI port reads the hello, a plain port resumes in pipe().
      pauseOnConnect: true,
      noDelay: true,
    });
    // TCP keepalive: the listener's, inherited, else each connection's (listener-keepalive.ts).
    let keepAliveInherited = false;
    server.on('connection', (socket) => {
      if (!keepAliveInherited) keepAliveOn(socket);
      this.#serverOnConnection(port, socket);
    });
    return new Promise((resolve) => {
      const onError = (err: Error): void => {
        const error = new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${host}:${port}`, { cause: err });
        this.#failed.set(port, error);
        this.#log.error({ code: error.code, host, port, err }, 'tunnel listener failed to bind');
        resolve();
      };
      server.once('error', onError);
      server.listen({ port, host, reusePort: this.#deps.reusePort === true }, () => {
        server.removeListener('error', onError);
        keepAliveOnListener(server, (yes) => (keepAliveInherited = yes));
        // Errors after bind (e.g. accept() hitting EMFILE) must not crash the process; Node keeps listening.
        server.on('error', (err) => this.#log.error({ port, err }, 'tunnel listener error'));
        if (this.#closed || !this.#ports.has(port)) {
          // The port went away (or the proxy closed) while binding.
          server.close();
        } else {
          this.#servers.set(port, server);
          this.#failed.delete(port);
          this.#log.info({ host, port }, 'tunnel listener bound');
        }
        resolve();
      });
    });
  }

  #closeServer(port: number, server: net.Server): void {
    // close() stops accepting now; its callback would wait for every accepted socket, tunnels included, so the
    // listener is simply forgotten here and the tunnels live on in the registry.
    server.close();
    this.#servers.delete(port);
    this.#log.info({ port }, 'tunnel listener closed');
  }

  #serverOnConnection(port: number, client: net.Socket): void {
    const startedAt = performance.now();
    // The routes as of acceptance: a table swap from here on does not change where this connection goes.
    const routes = this.#ports.get(port);
    if (!routes) {
      client.destroy();
      return;
    }
    // Until the tunnel takes the socket, errors are handled by closing it (see the close checks).
    client.on('error', () => client.destroy());
    // The registry owns the connection from now: a stop sees it, and aborts it if it has not become a tunnel.
    const pending = new PendingL4(client, this.#deps.metrics);
    this.#deps.registry.track(pending);
    client.once('close', () => this.#deps.registry.settle(pending));
    const route = (): void => {
      if (routes.exact.size === 0 && routes.wildcard.size === 0) {
        void this.#forward(routes.plain!, client, undefined, startedAt);
      } else {
        this.#readHello(routes, client, startedAt);
      }
    };
    // [issue 12] The PROXY header first, when the listeners take one.
    const pp = this.#deps.proxyProtocol;
    if (pp === undefined) return route();
    readProxyHeader(client, pp, (r) => {
      if (r.ok) return route();
      this.#log.debug({ port, reason: r.reason, why: r.why }, 'connection refused before routing');
      this.#reject(client, NO_ROUTE_LABEL, r.reason);
    });
  }

  /**
   * [issue 12] A connection on the HTTPS listener whose ClientHello names an ssl-passthrough host (front.ts): a
   * tunnel to that host's backend, the ClientHello first.
   */
  passthrough(client: net.Socket, head: Buffer, route: PassthroughRoute): void {
    const startedAt = performance.now();
    client.pause();
    client.on('error', () => client.destroy());
    const pending = new PendingL4(client, this.#deps.metrics);
    this.#deps.registry.track(pending);
    client.once('close', () => this.#deps.registry.settle(pending));
    const tunnel: TunnelRoute = {
      id: route.id,
      route: route.route,
      port: client.localPort ?? 0,
      sniHostnames: [route.hostname],
      backends: route.backends,
      proxyProtocol: 'None',
      idleTimeoutSeconds: route.idleTimeoutSeconds,
      connectTimeoutSeconds: route.connectTimeoutSeconds,
      maxConnections: 0,
      endpointDrainSeconds: DEFAULT_POLICY.endpointDrainSeconds,
      onRemoval: DEFAULT_POLICY.onRemoval,
      allowedSourceRanges: route.allowedSourceRanges,
      deniedSourceRanges: route.deniedSourceRanges,
    };
    void this.#forward(tunnel, client, head, startedAt);
  }

  /**
   * 1. Read until the ClientHello is complete (or is not TLS, or is bad, or the timeout fires).
   * 2. Pause the socket so that nothing more is read; the bytes read so far go to the backend first.
   * 3. Route by server name: exact, then `*.` wildcard (one label), then the port's SNI-less tunnel.
   */
  #readHello(routes: PortRoutes, client: net.Socket, startedAt: number): void {
    const chunks: Buffer[] = [];
    let length = 0;
    // Removes every listener of this phase, so that a long-lived tunnel holds neither them nor the hello bytes.
    const finish = (): void => {
      clearTimeout(timer);
      client.pause();
      client.removeListener('data', clientOnData);
      client.removeListener('end', clientOnEnd);
      client.removeListener('close', clientOnClose);
      chunks.length = 0;
    };
    const clientOnClose = (): void => clearTimeout(timer);
    const timer = setTimeout(() => {
      finish();
      this.#reject(client, NO_ROUTE_LABEL, 'hello_timeout');
    }, this.#helloTimeoutMs);
    const clientOnEnd = (): void => {
      // The client gave up before finishing its hello: nothing to route, nothing refused.
      finish();
      client.destroy();
    };
    const clientOnData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      const hello = parseClientHello(head);
      if (hello.state === 'need-more') return;
      finish();
      let route: TunnelRoute | undefined;
      if (hello.state === 'ok') {
        route = (hello.serverName !== undefined ? matchServerName(routes, hello.serverName) : undefined) ?? routes.plain;
      } else if (hello.state === 'not-tls') {
        route = routes.plain;
      } else {
        this.#log.debug({ port: routes.port, reason: hello.reason }, 'bad client hello');
        this.#reject(client, NO_ROUTE_LABEL, 'bad_client_hello');
        return;
      }
      if (!route) {
        this.#reject(client, NO_ROUTE_LABEL, 'no_route');
        return;
      }
      void this.#forward(route, client, head, startedAt);
    };
    client.on('data', clientOnData);
    client.on('end', clientOnEnd);
    client.once('close', clientOnClose);
    client.resume();
  }

  /**
   * 1. Take a connection slot of the tunnel (maxConnections).
   * 2. Connect to a backend endpoint.
   * 3. Write the PROXY header and the bytes already read from the client, in that order, before anything else.
   * 4. Hand both sockets to the registry, which joins them and releases the slot and endpoint when they close.
   */
  async #forward(route: TunnelRoute, client: net.Socket, head: Buffer | undefined, startedAt: number): Promise<void> {
    const { limits, balancer, metrics, registry } = this.#deps;
    // [issue 12] The real client: the PROXY header's source when there was one.
    const clientIP = peerAddress(client).address;
    if (!sourceAllowed(clientIP, route.allowedSourceRanges, route.deniedSourceRanges)) {
      this.#log.debug({ route: route.route, client: clientIP }, 'connection refused by source ranges');
      this.#reject(client, route.route, 'source_denied');
      return;
    }
    // A Promise when several workers share the pod's limits (limits.ts); unlimited tunnels are answered at once.
    const admitted = limits.tryAcquire(route.id, clientIP, route.maxConnections, 0);
    if (admitted === false || (admitted !== true && !(await admitted))) {
      this.#reject(client, route.route, 'over_limit');
      return;
    }
    // [issue 14] A TLSRoute's or TCPRoute's backend whose turn it is; a backendRef that did not resolve is no endpoint.
    const backends = balancer.backendsFor(route);
    let upstream;
    try {
      upstream = await connectUpstream(
        {
          routeId: route.id,
          route: route.route,
          backends: backends === 'invalid' ? [] : backends,
          loadBalancing: TUNNEL_LOAD_BALANCING,
          hashInput: { clientIP },
          connectTimeoutSeconds: route.connectTimeoutSeconds,
        },
        balancer,
        metrics,
      );
    } catch (err) {
      limits.release(route.id, clientIP);
      const reason = rejectReasonOf(err);
      this.#log.warn({ route: route.route, client: clientIP, err }, 'tunnel backend connect failed');
      this.#reject(client, route.route, reason);
      return;
    }
    const { socket, pick } = upstream;
    if (client.destroyed) {
      // The client left (or the proxy closed) while the backend was connecting.
      socket.destroy();
      balancer.release(pick.key);
      limits.release(route.id, clientIP);
      PendingL4.of(client).ended('client_abort', route.route);
      return;
    }
    const preface = this.#preface(route, client, head);
    if (preface) socket.write(preface);
    registry.open({
      route: route.route,
      layer: 'l4',
      client,
      upstream: socket,
      clientAddress: clientIP,
      backend: pick.key,
      idleTimeoutMs: route.idleTimeoutSeconds * 1000,
      startedAt,
      // The registry gives the slot and the endpoint back when the tunnel ends.
      routeId: route.id,
      drain: route,
    });
    // Only now, so that a drain always sees the connection, pending or tunnel.
    registry.settle(PendingL4.of(client));
  }

  /** The PROXY header (if the tunnel asks for one) followed by the client bytes read while routing, as one write. */
  #preface(route: TunnelRoute, client: net.Socket, head: Buffer | undefined): Buffer | undefined {
    const peer = peerAddress(client);
    const src = { address: peer.address, port: peer.port };
    const dst = { address: client.localAddress, port: client.localPort };
    let header: Buffer | undefined;
    if (route.proxyProtocol === 'V1') header = proxyV1Header(src, dst);
    else if (route.proxyProtocol === 'V2') header = proxyV2Header(src, dst);
    if (header && head) return Buffer.concat([header, head]);
    return header ?? head;
  }

  #reject(client: net.Socket, route: string, reason: L4RejectReason): void {
    const pending = PendingL4.of(client);
    // Already ended (wsgate stopped it while it was being routed): it was counted then.
    if (!pending.isEnded) {
      this.#deps.metrics.handshakeRejections.inc({ route, reason });
      pending.ended('rejected', route);
    }
    client.destroy();
  }
}

function rejectReasonOf(err: unknown): L4RejectReason {
  if (err instanceof WsgateError) {
    if (err.code === ErrorCodes.NO_ENDPOINT) return 'no_endpoint';
    if (err.code === ErrorCodes.UPSTREAM_TIMEOUT) return 'upstream_timeout';
  }
  return 'upstream_refused';
}

/** Groups the table's tunnels by port. The table is sorted, so the first tunnel to claim a name or port wins. */
export function indexTunnels(tunnels: readonly TunnelRoute[]): ReadonlyMap<number, PortRoutes> {
  const building = new Map<number, { exact: Map<string, TunnelRoute>; wildcard: Map<string, TunnelRoute>; plain?: TunnelRoute }>();
  for (const t of tunnels) {
    let p = building.get(t.port);
    if (!p) {
      p = { exact: new Map(), wildcard: new Map() };
      building.set(t.port, p);
    }
    if (t.sniHostnames.length === 0) {
      p.plain ??= t;
      continue;
    }
    for (const name of t.sniHostnames) {
      const lower = name.toLowerCase();
      if (lower.startsWith('*.')) {
        if (!p.wildcard.has(lower.slice(2))) p.wildcard.set(lower.slice(2), t);
      } else if (!p.exact.has(lower)) {
        p.exact.set(lower, t);
      }
    }
  }
  const out = new Map<number, PortRoutes>();
  for (const [port, p] of building) out.set(port, { port, exact: p.exact, wildcard: p.wildcard, plain: p.plain });
  return out;
}

/**
 * Exact name first, then a `*.` wildcard standing for exactly the first label; [issue 14] then, for tunnels with
 * wildcardAnyDepth (Gateway API TLSRoutes), the most specific wildcard covering more labels.
 */
function matchServerName(routes: PortRoutes, serverName: string): TunnelRoute | undefined {
  const exact = routes.exact.get(serverName);
  if (exact) return exact;
  const dot = serverName.indexOf('.');
  if (dot <= 0) return undefined;
  const one = routes.wildcard.get(serverName.slice(dot + 1));
  if (one) return one;
  for (let d = serverName.indexOf('.', dot + 1); d > 0; d = serverName.indexOf('.', d + 1)) {
    const deeper = routes.wildcard.get(serverName.slice(d + 1));
    if (deeper?.wildcardAnyDepth === true) return deeper;
  }
  return undefined;
}

/** An accepted L4 connection that is not a tunnel yet, as the registry sees it. */
class PendingL4 implements PendingConnection {
  static readonly #bySocket = new WeakMap<net.Socket, PendingL4>();
  readonly #client: net.Socket;
  readonly #metrics: Metrics;

  constructor(client: net.Socket, metrics: Metrics) {
    this.#client = client;
    this.#metrics = metrics;
    PendingL4.#bySocket.set(client, this);
  }

  /** The pending entry of an accepted socket (every accepted socket has one). */
  static of(client: net.Socket): PendingL4 {
    return PendingL4.#bySocket.get(client)!;
  }

  #ended = false;

  get isEnded(): boolean {
    return this.#ended;
  }

  abort(outcome: Outcome): void {
    if (this.#client.destroyed) return;
    // A backend being dialled for it sees the destroyed client and closes itself (#forward).
    this.ended(outcome, NO_ROUTE_LABEL);
    this.#client.destroy();
  }

  /** Counts how the connection ended, once (an abort and the client's own hang-up may both be seen). */
  ended(outcome: Outcome, route: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#metrics.connectionsTotal.inc({ route, layer: 'l4', outcome });
  }
}
