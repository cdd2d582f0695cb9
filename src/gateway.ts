// The data plane as one object: L7 and L4 proxies, certificates, the tunnel registry and the admin server, fed with
// routing tables by a source (files, the Kubernetes controller, the sidecar's one route). apply() is the only way in
// for configuration, and it never closes a connection.
//
// Nothing listens before it can route. The data listeners are bound once the gateway is started AND has a table,
// whichever comes last: apply() then start() binds in start(); start() then apply() binds in the first apply(), and
// start() has already checked (cluster/port-probe.ts) that the ports are free, so that a port in use still fails the start.
import type { AddressInfo } from 'node:net';
import { AdminServer, registryMetrics } from './admin/server.ts';
import type { DataPlane } from './dataplane.ts';
import type { Logger } from './log/logger.ts';
import { setCertificateExpiries, setRouteMaxConnections, type Metrics } from './metrics/metrics.ts';
import { EMPTY_TABLE, type RoutingTable } from './model/table.ts';
import { Balancer } from './proxy/balancer.ts';
import { L4Proxy } from './proxy/l4.ts';
import { L7Proxy, type ListenAddress } from './proxy/l7.ts';
import { TrustedProxies } from './proxy/client-address.ts';
import { ConnectionLimits } from './proxy/limits.ts';
import type { RateLimiter } from './proxy/rate.ts';
import { probePort } from './cluster/port-probe.ts';
import type { NormalizeOptions } from './proxy/normalize.ts';
import { TunnelRegistry } from './proxy/registry.ts';
import { chooseRelay, nativeTunnels, type RelayChoice, type RelayStatus } from './proxy/native-relay.ts';
import { CLOSE_HANDSHAKE_TIMEOUT_MS } from './proxy/ws-session.ts';
import { CertificateStore, type CertificatePem } from './tls/cert-store.ts';

export interface GatewayOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Plain HTTP listener; undefined = none. */
  readonly httpAddr?: ListenAddress;
  /** TLS listener; undefined = none. */
  readonly httpsAddr?: ListenAddress;
  /** Admin server (/metrics, /healthz, /readyz, /debug/routes); undefined = none. */
  readonly adminAddr?: ListenAddress;
  /** Bind address of TCPTunnel listeners. */
  readonly tunnelHost: string;
  /** Milliseconds for a request head (and a backend's handshake answer). */
  readonly handshakeTimeoutMs: number;
  /** How request-targets are normalised before routing (src/proxy/normalize.ts; default: its defaults). */
  readonly normalize?: NormalizeOptions;
  /** The certificate for TLS clients whose SNI matches no route. */
  readonly defaultCertificate: CertificatePem;
  /** How often tunnels are swept for idle timeouts and byte counts (ms, default 1000). */
  readonly sweepIntervalMs?: number;
  /** How long the metric series of a deleted route are kept after its last tunnel (ms, default 120000). */
  readonly pruneAfterMs?: number;
  /** Bind every data-plane listener with SO_REUSEPORT: set in worker processes that share ports. */
  readonly reusePort?: boolean;
  /** The connection limits (a worker's asks the primary); default: counted in this process. */
  readonly limits?: ConnectionLimits;
  /**
   * How often tunnel ports that failed to bind are tried again (ms; default 5000, 0 = only on the next table).
   * Workers leave it to the primary, which probes a port before any worker binds it with SO_REUSEPORT.
   */
  readonly retryPortsMs?: number;
  /**
   * Why the source of tables is not ready (the controller: informers that have not listed yet), or undefined;
   * checked by notReady() before the table. Default: always ready.
   */
  readonly sourceNotReady?: () => string | undefined;
  /** [issue 12] The client address, edge policy and ssl-passthrough flags (listener-flags.ts). */
  readonly edge?: EdgeOptions;
  /** [issue 12] Request rates (a worker's asks the primary); default: counted in this process. */
  readonly rate?: RateLimiter;
  /** What relays L4 tunnels (--relay; native-relay.ts): default WSGATE_RELAY, else native (js if it cannot load). */
  readonly relay?: RelayChoice;
}

/** The relay of a data-plane process, as /debug/workers shows it. */
export interface RelayInfo {
  readonly relay: RelayStatus['relay'];
  /** Why the JavaScript relay runs though native was asked for (the addon's load error); null otherwise. */
  readonly relayFallback: string | null;
  /** L4 tunnels on the native relay now. */
  readonly nativeTunnels: number;
}

/** [issue 12] What the listeners do before routing, and the keys and ports the edge policy needs. */
export interface EdgeOptions {
  /** --proxy-protocol: every connection on the HTTP, HTTPS and tunnel listeners starts with a PROXY header. */
  readonly proxyProtocol?: boolean;
  /** --trusted-proxies: CIDRs whose PROXY headers (when given) and X-Forwarded-For/X-Real-IP are believed. */
  readonly trustedProxies?: readonly string[];
  /** --affinity-key-file's content (or the key the primary made); default: one made by this process. */
  readonly affinityKey?: Buffer;
  /** --redirect-https-port: the port HTTPS redirects name (default 443). */
  readonly redirectHttpsPort?: number;
  /** --enable-ssl-passthrough. */
  readonly sslPassthrough?: boolean;
}

export class Gateway implements DataPlane {
  readonly registry: TunnelRegistry;
  readonly certificates: CertificateStore;
  readonly l7: L7Proxy;
  readonly l4: L4Proxy;
  readonly #o: GatewayOptions;
  readonly #admin: AdminServer | undefined;
  /** Live connections per endpoint and round-robin cursors, process-wide. */
  readonly balancer: Balancer;
  #table: RoutingTable = EMPTY_TABLE;
  #applied = false;
  #started = false;
  #listening = false;
  #draining = false;
  #adminAddress: AddressInfo | undefined;
  /** Before the listeners are bound: the ports start() probed (port 0 resolved to the one the OS chose). */
  #httpAddr: ListenAddress | undefined;
  #httpsAddr: ListenAddress | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #relay: RelayStatus;

  constructor(o: GatewayOptions) {
    this.#o = o;
    const log = o.log;
    // The relay of this process's L4 tunnels, said once (a fallback as a warning: native was asked for).
    this.#relay = chooseRelay(o.relay);
    if (this.#relay.fallback === undefined) log.info({ relay: this.#relay.relay }, 'L4 tunnel relay');
    else log.warn({ relay: 'js', fallback: this.#relay.fallback }, 'L4 tunnel relay: native relay not loaded, using the JavaScript relay');
    this.#httpAddr = o.httpAddr;
    this.#httpsAddr = o.httpsAddr;
    const balancer = new Balancer();
    this.balancer = balancer;
    const limits = o.limits ?? new ConnectionLimits();
    this.registry = new TunnelRegistry(o.metrics, log.child({ component: 'tunnel' }), o.sweepIntervalMs, { balancer, limits }, o.pruneAfterMs);
    this.certificates = new CertificateStore(o.defaultCertificate);
    // [issue 12] The client address and the edge policy.
    const e = o.edge ?? {};
    const trusted = new TrustedProxies(e.trustedProxies ?? []);
    const proxyProtocol = e.proxyProtocol === true ? { proxyProtocol: { trusted, timeoutMs: o.handshakeTimeoutMs } } : {};
    this.l4 = new L4Proxy({
      metrics: o.metrics,
      log,
      registry: this.registry,
      balancer,
      limits,
      host: o.tunnelHost,
      reusePort: o.reusePort === true,
      ...proxyProtocol,
    });
    const l4 = this.l4;
    this.l7 = new L7Proxy({
      metrics: o.metrics,
      log: log.child({ component: 'l7' }),
      registry: this.registry,
      balancer,
      limits,
      certificates: this.certificates,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      ...(o.normalize ? { normalize: o.normalize } : {}),
      reusePort: o.reusePort === true,
      ...proxyProtocol,
      ...(trusted.empty ? {} : { trustedProxies: trusted }),
      ...(e.affinityKey !== undefined ? { affinityKey: e.affinityKey } : {}),
      ...(o.rate !== undefined ? { rate: o.rate } : {}),
      ...(e.redirectHttpsPort !== undefined ? { redirectHttpsPort: e.redirectHttpsPort } : {}),
      ...(e.sslPassthrough === true ? { passthrough: (socket, head, route) => l4.passthrough(socket, head, route) } : {}),
      listenerHost: o.tunnelHost,
    });
    if (o.adminAddr) {
      this.#admin = new AdminServer({
        metrics: registryMetrics(o.metrics),
        notReady: () => this.notReady(),
        table: () => this.#table,
        // One process: the same shape as a worker pool's /debug/workers, with one entry.
        debug: { workers: () => [{ worker: 0, pid: process.pid, tunnels: this.registry.size, notReady: this.notReady() ?? null, failedPorts: this.l4.failedPorts(), ...this.relayInfo() }] },
      });
    }
  }

  /** Which relay carries this process's L4 tunnels, and why. */
  relayInfo(): RelayInfo {
    return { relay: this.#relay.relay, relayFallback: this.#relay.fallback ?? null, nativeTunnels: nativeTunnels() };
  }

  get table(): RoutingTable {
    return this.#table;
  }

  /**
   * Binds the admin server, and the L7 listeners if a table is live; otherwise checks that their ports are free
   * (WSGATE_ERR_LISTEN if not) and binds them with the first table. Tunnel listeners follow the table (apply).
   */
  async start(): Promise<void> {
    this.#started = true;
    if (this.#admin && this.#o.adminAddr) {
      this.#adminAddress = await this.#admin.listen(this.#o.adminAddr.host, this.#o.adminAddr.port);
    }
    if (this.#applied) {
      await this.#bind();
      // [issue 14] Gateway API listener ports follow the table.
      await this.l7.ports.update(this.#table.listeners ?? []);
      return;
    }
    // Probed without SO_REUSEPORT even in a worker: a worker is only ever started with its table (worker.ts).
    if (this.#httpAddr) this.#httpAddr = { ...this.#httpAddr, port: await probePort(this.#httpAddr.host, this.#httpAddr.port, 'http') };
    if (this.#httpsAddr) this.#httpsAddr = { ...this.#httpsAddr, port: await probePort(this.#httpsAddr.host, this.#httpsAddr.port, 'https') };
  }

  async #bind(): Promise<void> {
    if (this.#listening || this.#draining) return;
    await this.l7.listen(this.#httpAddr, this.#httpsAddr);
    this.#listening = true;
  }

  /**
   * Makes `table` live: certificates first (so a new host's certificate is there when its route is), then routes.
   * Returns the certificates that could not be loaded. Connections keep the route and backend they were given.
   */
  async apply(table: RoutingTable): Promise<{ certificateErrors: { secret: string; message: string }[] }> {
    const { errors } = this.certificates.update(table.certificates);
    this.l7.update(table);
    await this.l4.update(table);
    this.#table = table;
    this.#applied = true;
    // Rules, not host × rule pairs: a rule serving several hostnames is one route.
    const ids = new Set<string>();
    const labels = new Set<string>();
    for (const vh of [...table.virtualHosts, ...(table.listeners ?? []).flatMap((l) => l.virtualHosts)]) {
      for (const r of vh.routes) {
        ids.add(r.id);
        labels.add(r.route);
      }
    }
    const httpRules = ids.size;
    for (const t of table.tunnels) {
      ids.add(t.id);
      labels.add(t.route);
    }
    for (const p of table.passthrough ?? []) {
      ids.add(p.id);
      labels.add(p.route);
    }
    // What deleted routes leave behind (metric series, round-robin cursors) goes with them; tunnels whose endpoint
    // or route went are closed, spread over their route's window (registry.ts).
    this.registry.setLiveRoutes(labels);
    this.registry.reconcile(table);
    this.balancer.prune(ids);
    this.#o.metrics.routes.set({ kind: 'http' }, httpRules);
    this.#o.metrics.routes.set({ kind: 'tunnel' }, table.tunnels.length);
    setRouteMaxConnections(this.#o.metrics, table);
    setCertificateExpiries(this.#o.metrics, this.certificates.expiries());
    this.#scheduleRetry();
    if (this.#started) {
      await this.#bind();
      await this.l7.ports.update(table.listeners ?? []);
      this.#scheduleRetry();
    }
    return { certificateErrors: errors };
  }

  /** Tunnel ports that did not bind are tried again while they stay in the table. */
  #scheduleRetry(): void {
    const every = this.#o.retryPortsMs ?? 5000;
    if (every <= 0 || this.#retryTimer !== undefined || this.#draining) return;
    if (this.l4.failedPorts().length === 0 && this.l7.ports.failedPorts().length === 0) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void Promise.all([this.l4.update(this.#table), this.l7.ports.update(this.#table.listeners ?? [])]).then(() => this.#scheduleRetry());
    }, every);
    this.#retryTimer.unref();
  }

  /** Why the process should not receive traffic, or undefined when it should. */
  notReady(): string | undefined {
    if (this.#draining) return 'draining';
    // The source first: listeners wait for the first table, which waits for the source, so it is the root cause.
    const source = this.#o.sourceNotReady?.();
    if (source !== undefined) return source;
    if (!this.#applied) return 'no routing table yet';
    if (!this.#listening) return 'listeners not bound';
    const failed = this.l4.failedPorts();
    if (failed.length > 0) return `tunnel ports not bound: ${failed.join(', ')}`;
    const listenerPorts = this.l7.ports.failedPorts();
    if (listenerPorts.length > 0) return `gateway listener ports not bound: ${listenerPorts.join(', ')}`;
    return undefined;
  }

  /** The listeners' addresses; before they are bound, the addresses they will have. */
  addresses(): { http?: AddressInfo; https?: AddressInfo; admin?: AddressInfo } {
    const admin = this.#adminAddress ? { admin: this.#adminAddress } : {};
    if (this.#listening) return { ...this.l7.addresses(), ...admin };
    const info = (a: ListenAddress | undefined): AddressInfo | undefined =>
      a && a.port !== 0 ? { address: a.host, port: a.port, family: a.host.includes(':') ? 'IPv6' : 'IPv4' } : undefined;
    const http = info(this.#httpAddr);
    const https = info(this.#httpsAddr);
    return { ...(http ? { http } : {}), ...(https ? { https } : {}), ...admin };
  }

  tunnels(): number {
    return this.registry.size;
  }

  closeTunnels(): Promise<void> {
    return this.registry.closeAll();
  }

  /**
   * Graceful stop: readiness false, listeners closed, open tunnels given `graceMs` to finish on their own, then
   * closed. The admin server stays up until the end so that the drain can be watched.
   */
  beginDrain(): void {
    this.#draining = true;
  }

  async stop(graceMs = 0): Promise<void> {
    this.#draining = true;
    clearTimeout(this.#retryTimer);
    await Promise.all([this.l7.close(), this.l4.close()]);
    if (this.registry.size + this.registry.pendingSize > 0 && graceMs > 0) {
      // Close frames spread over the window, and a last close handshake's worth of time after it; then the rest
      // is cut.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.registry.drainAll(graceMs),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs + CLOSE_HANDSHAKE_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    await this.registry.closeAll();
    this.registry.stop();
    await this.#admin?.close();
  }
}
