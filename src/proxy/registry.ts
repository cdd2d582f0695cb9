// The registry of live connections: every accepted connection from accept to close, pending (a handshake, an L4
// hello) and then a tunnel (tunnel.ts). Node's servers do not track upgraded sockets (server.close() leaves them
// alone, nodejs/node#53536), so wsgate does; what a stop, a drain or the sweep does reaches every connection here.
//
// One periodic sweep reads each tunnel's socket byte counters: it feeds the byte metrics and the idle timeout at a
// cost independent of traffic, instead of a timer re-armed on every chunk (socket.setTimeout). The same sweep runs
// WebSocket keepalive, flushes the WebSocket counters, cuts closes that did not finish, and rebalances.
//
// wsgate closes tunnels itself, spread over time (drain.ts), in four cases, each with its outcome:
//  1. shutdown (stop): every tunnel, over --drain-timeout; L4 tunnels at the end of the window;
//  2. endpoint_draining (a new table without the tunnel's endpoint in its route): over endpointDrainSeconds;
//  3. route_removed (a new table without the tunnel's route, onRemoval: Close): over graceSeconds;
//  4. rebalance (the sweep, rebalance.enabled): at most maxClosesPerSecond, until the spread is within tolerance.
// "Close" is a 1001 close frame and its close handshake for a WebSocket (1012 for a rebalance), a FIN both ways
// otherwise; whatever has not finished CLOSE_HANDSHAKE_TIMEOUT_MS later is cut.
import type { Socket } from 'node:net';
import type { Gauge } from 'prom-client';
import type { Logger } from '../log/logger.ts';
import { removeRouteSeries, type Metrics } from '../metrics/metrics.ts';
import type { Backend, Layer, LoadBalancing, Rebalance, RoutingTable } from '../model/table.ts';
import { endpointKey } from './balancer.ts';
import { DrainScheduler } from './drain.ts';
import type { Outcome } from './outcomes.ts';
import { pickRebalanceCloses } from './rebalance.ts';
import { handOver, type RelayChoice } from './native-relay.ts';
import { endRelay, joinRelay, sweepRelay } from './relay.ts';
import {
  clientRead,
  clientWritten,
  countBytes,
  cutText,
  destroyOnFinish,
  join,
  LAYERS,
  printable,
  reset,
  Tunnel,
  type PendingConnection,
  type RouteSeries,
  type TunnelOptions,
  type TunnelOwners,
} from './tunnel.ts';
import { countClose, flushSession, wsSeries } from './ws-metrics.ts';
import type { Failure } from './ws-frames.ts';
import { CLOSE_HANDSHAKE_TIMEOUT_MS, type Side } from './ws-session.ts';
import { RateLimitedLog } from '../log/rate-limit.ts';

export type { PendingConnection, TunnelOptions, TunnelOwners } from './tunnel.ts';

/** A route of the live table as drains and rebalancing see it. */
interface LiveRoute {
  readonly backends: readonly Backend[];
  /** Endpoint keys of its backends now. */
  readonly endpoints: ReadonlySet<string>;
  readonly rebalance: Rebalance | undefined;
  readonly loadBalancing: LoadBalancing;
}

export class TunnelRegistry {
  readonly #tunnels = new Set<Tunnel>();
  readonly #pending = new Set<PendingConnection>();
  readonly #series = new Map<string, RouteSeries>();
  /** Route labels of the live table; undefined until the first table (nothing is pruned before it). */
  #liveRoutes: ReadonlySet<string> | undefined;
  /** The live table's routes by id; undefined until the first table (no tunnel is drained before it). */
  #routes: ReadonlyMap<string, LiveRoute> | undefined;
  /** Set by closeAll(): a handshake that completes after it is closed at once instead of becoming a tunnel. */
  #closed = false;
  /** Set by drainAll(): the end of the shutdown window; tunnels opened meanwhile are closed before it. */
  #shutdownEndsAt = 0;
  /** Route labels that left the table, and since when: their series go once the scrapes have seen their last counts. */
  readonly #goneSince = new Map<string, number>();
  readonly #pruneAfterMs: number;
  /** Rebalance closes accrued per route id (fractions of a close, maxClosesPerSecond × time). */
  readonly #rebalanceBudget = new Map<string, number>();
  #lastSweep = performance.now();
  #lastDrainLog = 0;
  readonly #scheduler: DrainScheduler;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #owners: TunnelOwners | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #drainRemaining: Gauge;
  /** Lines peers can cause (protocol violations), rate-limited. */
  readonly #rlog: RateLimitedLog;
  #draining: (() => void) | undefined;
  /** The relay of this registry's L4 tunnels; undefined: the process's (native-relay.ts chooseRelay()). */
  relay: RelayChoice | undefined = undefined;

  /**
   * @param sweepIntervalMs How often byte counters and idle timeouts are checked (default 1000 ms).
   * @param owners Where an ended tunnel gives back its endpoint count and connection slot. A tunnel keeps keys,
   *   not a callback: a closure made during the handshake would keep the handshake's whole scope (request
   *   headers, buffers, timers) alive for as long as the tunnel lives.
   * @param pruneAfterMs How long the metric series of a route that left the table (and has no tunnel left) are
   *   kept, so that scrapes see their last counts (default 120000 ms: a few scrape intervals).
   */
  constructor(metrics: Metrics, log: Logger, sweepIntervalMs = 1000, owners?: TunnelOwners, pruneAfterMs = 120_000) {
    this.#pruneAfterMs = pruneAfterMs;
    this.#metrics = metrics;
    this.#log = log;
    this.#owners = owners;
    this.#drainRemaining = metrics.drainRemaining;
    this.#rlog = new RateLimitedLog(log, metrics.logLinesSuppressed);
    this.#scheduler = new DrainScheduler((item, reason) => this.closeGracefully(item as Tunnel, reason as Outcome));
    this.#timer = setInterval(() => this.sweep(), sweepIntervalMs);
    this.#timer.unref();
  }

  /** Live tunnels. */
  get size(): number {
    return this.#tunnels.size;
  }

  /** Accepted connections that are not tunnels yet. */
  get pendingSize(): number {
    return this.#pending.size;
  }

  /** Spread closes scheduled and not made yet (drains, route removals). */
  get scheduledCloses(): number {
    return this.#scheduler.pending;
  }

  /** Frame trackers of the WebSocket sessions: held, and parked while their tunnel is quiet (ws-session.ts). */
  frameTrackers(): { live: number; parked: number } {
    let live = 0;
    let parked = 0;
    for (const t of this.#tunnels) {
      const s = t.session;
      if (s === undefined) continue;
      const held = (s.tracker(true) === null ? 0 : 1) + (s.tracker(false) === null ? 0 : 1);
      live += held;
      parked += 2 - held;
    }
    return { live, parked };
  }

  /** Live tunnels per endpoint key of one route rule (for /debug and tests of drains and rebalancing). */
  tunnelsByEndpoint(routeId: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const t of this.#tunnels) if (t.routeId === routeId && t.closingAt === 0) out.set(t.backend, (out.get(t.backend) ?? 0) + 1);
    return out;
  }

  /** Takes an accepted connection into the registry; it stays until settle() or abort(). */
  track(p: PendingConnection): void {
    if (this.#closed) {
      p.abort('shutdown');
      return;
    }
    this.#pending.add(p);
  }

  /** A pending connection became a tunnel or ended: it leaves the registry. */
  settle(p: PendingConnection): void {
    if (this.#pending.delete(p)) this.#notifyIfDrained();
  }

  /**
   * Joins the two sockets (both must be connected, with allowHalfOpen) and tracks the tunnel until both close.
   * After closeAll() (a handshake that completed during the final close), the tunnel is closed at once; during a
   * shutdown drain, it is closed before the window ends.
   */
  open(opts: TunnelOptions): void {
    const now = performance.now();
    const t = new Tunnel(this, opts, this.#seriesOf(opts.route, opts.layer), now);
    this.#tunnels.add(t);
    t.series.active.inc();
    t.series.live++;
    this.#log.debug({ route: t.series.route, layer: t.series.layer, client: t.clientAddress, backend: t.backend }, 'tunnel opened');
    // Byte pipes (L4 tunnels, and WebSockets whose route does not inspect frames) go to the native relay when it is
    // loaded and the sockets can be handed over (native-relay.ts). A WebSocket session needs the bytes: JS relay.
    const link = t.session === undefined ? handOver(t.client, t.upstream, t, this.relay) : undefined;
    if (link !== undefined) {
      t.detach(link);
      if (this.#closed) this.fail(t, 'shutdown');
      else if (this.#shutdownEndsAt > 0) this.#scheduler.schedule([t], Math.max(0, this.#shutdownEndsAt - now), 'shutdown', now);
      return;
    }
    join(t.client, t.upstream, t);
    join(t.upstream, t.client, t);
    // A side may already be gone (a client that hung up while its backend was being dialled): its 'close' has
    // been emitted, so count it closed now rather than wait for an event that will not come.
    if (t.client.closed) queueMicrotask(() => this.sideClosed(t, t.upstream));
    if (t.upstream.closed) queueMicrotask(() => this.sideClosed(t, t.client));
    // Both sides may have been paused (a handshake read, pauseOnConnect): the relay resumes them.
    // L4 tunnels relay bulk bytes with larger reads; L7 ones keep small buffers (frames, slow readers).
    joinRelay(t.client, t.upstream, t.session, t.series.layer === 'l4');
    if (t.session) t.series.ws ??= wsSeries(this.#metrics, t.series.route);
    if (this.#closed) this.fail(t, 'shutdown');
    else if (this.#shutdownEndsAt > 0) this.#scheduler.schedule([t], Math.max(0, this.#shutdownEndsAt - now), 'shutdown', now);
  }

  /**
   * Closes every tunnel and pending connection now (outcome `shutdown`), and every one that completes its handshake
   * from here on; resolves when all have ended.
   */
  closeAll(): Promise<void> {
    this.#closed = true;
    this.#scheduler.stop();
    for (const p of [...this.#pending]) p.abort('shutdown');
    for (const t of this.#tunnels) this.fail(t, 'shutdown');
    return this.drained();
  }

  /**
   * The shutdown drain: every tunnel is closed gracefully, L7 ones spread evenly over `windowMs` (so that N clients
   * reconnect at about N/window per second, not all at once), L4 ones (a FIN: nothing to spread a reconnect over
   * but the client's own) at the end of the window. Resolves when every tunnel has ended; the caller cuts what is
   * left after the window (closeAll).
   */
  drainAll(windowMs: number): Promise<void> {
    const now = performance.now();
    this.#shutdownEndsAt = now + windowMs;
    const l7: Tunnel[] = [];
    const l4: Tunnel[] = [];
    for (const t of this.#tunnels) (t.series.layer === 'l4' ? l4 : l7).push(t);
    this.#scheduler.schedule(l7, windowMs, 'shutdown', now);
    if (l4.length > 0) {
      const timer = setTimeout(() => this.#scheduler.schedule(l4, 0, 'shutdown'), windowMs);
      timer.unref();
    }
    this.#logDrain(now);
    return this.drained();
  }

  /**
   * Closes a tunnel the polite way: a WebSocket gets a close frame (1001, or 1012 for a rebalance) and its close
   * handshake; anything else a FIN both ways. The sweep cuts it if it has not ended CLOSE_HANDSHAKE_TIMEOUT_MS later.
   */
  closeGracefully(t: Tunnel, outcome: Outcome): void {
    if (t.open === 0 || t.closingAt > 0) return;
    if (t.session !== undefined) {
      t.session.goingAway(outcome, outcome === 'rebalance' ? 1012 : 1001);
      return;
    }
    t.closing(outcome);
    if (t.link !== undefined) {
      t.link.shutdown();
      return;
    }
    t.client.end();
    t.upstream.end();
  }

  /**
   * A new table is live: tunnels whose endpoint left their route are drained over the route's endpointDrainSeconds,
   * and those whose route left the table are closed over onRemoval.graceSeconds when onRemoval is Close. A tunnel
   * whose endpoint came back before its close keeps going.
   */
  reconcile(table: RoutingTable): void {
    const routes = new Map<string, LiveRoute>();
    const add = (id: string, backends: readonly Backend[], rebalance: Rebalance | undefined, loadBalancing: LoadBalancing): void => {
      if (routes.has(id)) return;
      const endpoints = new Set<string>();
      for (const b of backends) for (const e of b.endpoints) endpoints.add(endpointKey(e));
      routes.set(id, { backends, endpoints, rebalance, loadBalancing });
    };
    for (const vh of table.virtualHosts) for (const r of vh.routes) add(r.id, r.backends, r.policy.rebalance, r.policy.loadBalancing);
    // [issue 14] Gateway API listener ports' routes.
    for (const lp of table.listeners ?? []) {
      for (const vh of lp.virtualHosts) for (const r of vh.routes) add(r.id, r.backends, r.policy.rebalance, r.policy.loadBalancing);
    }
    for (const t of table.tunnels) add(t.id, t.backends, undefined, { policy: 'LeastConnections' });
    // [issue 12] ssl-passthrough hosts are tunnels too (l4.ts passthrough()).
    for (const p of table.passthrough ?? []) add(p.id, p.backends, undefined, { policy: 'LeastConnections' });
    this.#routes = routes;
    if (this.#shutdownEndsAt > 0 || this.#closed) return;
    // Batches by reason and window, so that each is spread over its own window.
    const batches = new Map<string, { outcome: Outcome; windowMs: number; tunnels: Tunnel[] }>();
    const doom = (t: Tunnel, outcome: Outcome, seconds: number): void => {
      const key = `${outcome}\0${seconds}`;
      let b = batches.get(key);
      if (!b) batches.set(key, (b = { outcome, windowMs: seconds * 1000, tunnels: [] }));
      b.tunnels.push(t);
    };
    for (const t of this.#tunnels) {
      if (t.closingAt > 0) continue;
      const r = routes.get(t.routeId);
      if (r === undefined) {
        if (t.drain.onRemoval.action === 'Close') doom(t, 'route_removed', t.drain.onRemoval.graceSeconds);
      } else if (!r.endpoints.has(t.backend)) {
        if (t.drain.endpointDrainSeconds > 0) doom(t, 'endpoint_draining', t.drain.endpointDrainSeconds);
      } else if (t.drainBatch !== undefined) {
        // Its endpoint is back (or its route came back): nothing to close any more.
        this.#scheduler.cancel(t);
      }
    }
    const now = performance.now();
    for (const b of batches.values()) {
      const batch = this.#scheduler.schedule(b.tunnels, b.windowMs, b.outcome, now);
      if (batch) this.#log.info({ reason: b.outcome, tunnels: batch.remaining, windowMs: b.windowMs }, 'closing tunnels, spread');
    }
  }

  /** Resolves when no tunnel and no pending connection is left. */
  drained(): Promise<void> {
    if (this.#tunnels.size === 0 && this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.#draining;
      this.#draining = () => {
        prev?.();
        resolve();
      };
    });
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#scheduler.stop();
  }

  /**
   * Once a second: byte counters, read buffers, WebSocket counters and keepalive, closes that took too long, idle
   * timeouts, rebalancing, and the shutdown drain's progress.
   */
  sweep(now = performance.now()): void {
    const elapsed = Math.max(0, now - this.#lastSweep);
    this.#lastSweep = now;
    for (const t of this.#tunnels) {
      countBytes(t);
      sweepRelay(t.client);
      sweepRelay(t.upstream);
      const session = t.session;
      if (session !== undefined) flushSession(this.#metrics, t.series.route, t.series.ws!, session);
      // A close wsgate started and that did not finish in time is cut.
      if (t.closingAt > 0) {
        if (now - t.closingAt >= CLOSE_HANDSHAKE_TIMEOUT_MS) this.fail(t, t.outcome ?? 'shutdown');
        continue;
      }
      session?.sweep(now);
      // A WebSocket is idle when its endpoints relay nothing (wsgate's keepalive pings do not count); a byte pipe
      // when no byte moves.
      let moved: boolean;
      if (session !== undefined) {
        moved = session.active;
        session.active = false;
      } else {
        const total = clientRead(t) + clientWritten(t);
        moved = total !== t.lastTotal;
        t.lastTotal = total;
      }
      if (moved) {
        t.lastActive = now;
      } else if (t.idleTimeoutMs > 0 && now - t.lastActive >= t.idleTimeoutMs) {
        // A WebSocket gets close frames both ways first, so that its peers see 1001 and not 1006.
        if (session !== undefined) session.closeBoth(1001, 'idle timeout', 1001, 'idle_timeout');
        else this.fail(t, 'idle_timeout');
      }
    }
    this.#rebalance(elapsed);
    if (this.#shutdownEndsAt > 0) this.#logDrain(now);
    if (this.#goneSince.size > 0) this.#pruneGone(now);
  }

  /** Forgets the series of routes gone for pruneAfterMs that have no tunnel left. */
  #pruneGone(now: number): void {
    const due = new Set<string>();
    for (const [route, since] of this.#goneSince) {
      if (now - since >= this.#pruneAfterMs && !this.#hasLive(route)) due.add(route);
    }
    if (due.size === 0) return;
    for (const r of due) this.#goneSince.delete(r);
    this.#forget((r) => due.has(r));
  }

  #logDrain(now: number): void {
    this.#drainRemaining.set(this.#tunnels.size);
    if (now - this.#lastDrainLog < 1000) return;
    this.#lastDrainLog = now;
    this.#log.info({ remaining: this.#tunnels.size, scheduled: this.#scheduler.pending, pending: this.#pending.size }, 'draining');
  }

  /** 4. Closes tunnels of routes whose spread is off by more than their tolerance, within each one's budget. */
  #rebalance(elapsedMs: number): void {
    const routes = this.#routes;
    if (routes === undefined || this.#shutdownEndsAt > 0) return;
    let byRoute: Map<string, Tunnel[]> | undefined;
    for (const t of this.#tunnels) {
      if (t.closingAt > 0 || t.drainBatch !== undefined || t.series.layer !== 'l7') continue;
      if (routes.get(t.routeId)?.rebalance?.enabled !== true) continue;
      byRoute ??= new Map();
      let list = byRoute.get(t.routeId);
      if (!list) byRoute.set(t.routeId, (list = []));
      list.push(t);
    }
    if (byRoute === undefined) {
      this.#rebalanceBudget.clear();
      return;
    }
    for (const [id, tunnels] of byRoute) {
      const r = routes.get(id)!;
      const rb = r.rebalance!;
      // Closes accrue at maxClosesPerSecond, at most one second's worth held over.
      const budget = Math.min(rb.maxClosesPerSecond, (this.#rebalanceBudget.get(id) ?? 0) + (rb.maxClosesPerSecond * elapsedMs) / 1000);
      const picked = pickRebalanceCloses(tunnels, { backends: r.backends, rebalance: rb, loadBalancing: r.loadBalancing }, Math.floor(budget));
      this.#rebalanceBudget.set(id, budget - picked.length);
      if (picked.length === 0) continue;
      const route = picked[0]!.series.route;
      this.#metrics.rebalanceCloses.inc({ route }, picked.length);
      this.#log.info({ route, closes: picked.length, tunnels: tunnels.length }, 'rebalancing');
      for (const t of picked) this.closeGracefully(t, 'rebalance');
    }
    for (const id of this.#rebalanceBudget.keys()) if (!byRoute.has(id)) this.#rebalanceBudget.delete(id);
  }

  /** A side broke RFC 6455 or sent a message over a limit: a log line (rate-limited: peers choose how many). */
  violation(t: Tunnel, failure: Failure, side: Side, closed: boolean): void {
    this.#rlog.warn(
      { route: t.series.route, client: t.clientAddress, backend: t.backend, side, reason: failure, closed },
      'websocket protocol violation',
    );
  }

  /**
   * An error or a decision of ours: both sockets go now; the first reason wins. A reset on one side is passed on
   * as a reset (RST) to the other, so that a peer sees an abort as an abort, not as a clean end of stream.
   */
  fail(t: Tunnel, outcome: Outcome): void {
    t.outcome ??= outcome;
    if (t.link !== undefined) {
      t.link.close(outcome === 'upstream_error', outcome === 'client_abort');
      return;
    }
    if (outcome === 'client_abort') reset(t.upstream);
    else t.upstream.destroy();
    if (outcome === 'upstream_error') reset(t.client);
    else t.client.destroy();
  }

  sideClosed(t: Tunnel, other: Socket): void {
    // The other side may still be flushing bytes this side sent before its FIN: end it, destroy once flushed.
    if (!other.destroyed) {
      if (other.writableFinished) other.destroy();
      else {
        other.end();
        other.once('finish', destroyOnFinish);
      }
    }
    if (--t.open > 0) return;
    this.#ended(t);
  }

  /** The native relay has closed both sockets of a tunnel; `outcome` says why when it was an error. */
  relayClosed(t: Tunnel, outcome: Outcome | undefined): void {
    if (outcome !== undefined) t.outcome ??= outcome;
    t.open = 0;
    this.#ended(t);
  }

  /** Both sides of a tunnel have closed: counts, metrics, the log line, its slot and endpoint given back. */
  #ended(t: Tunnel): void {
    this.#tunnels.delete(t);
    this.#scheduler.cancel(t);
    endRelay(t.client);
    endRelay(t.upstream);
    countBytes(t);
    const outcome = t.outcome ?? 'completed';
    const seconds = (performance.now() - t.startedAt) / 1000;
    const s = t.series;
    const session = t.session;
    if (session !== undefined) {
      session.dispose();
      flushSession(this.#metrics, s.route, s.ws!, session);
      countClose(this.#metrics, s.route, s.ws!, session);
    }
    s.active.dec();
    s.live--;
    let total = s.outcomes.get(outcome);
    if (!total) {
      total = this.#metrics.deferred.connectionsTotal.series({ route: s.route, layer: s.layer, outcome });
      s.outcomes.set(outcome, total);
    }
    total.inc();
    s.duration.observe(seconds);
    // Built only when it is written: at warn, a tunnel's end allocates no log object.
    if (this.#log.isLevelEnabled('info')) {
      this.#log.info(
        {
          route: s.route,
          layer: s.layer,
          client: t.clientAddress,
          backend: t.backend,
          bytesUp: t.countedUp - t.readBase,
          bytesDown: t.countedDown - t.writtenBase,
          durationMs: Math.round(seconds * 1000),
          outcome,
          ...(t.host !== undefined ? { host: t.host } : {}),
          ...(t.path !== undefined ? { path: t.path } : {}),
          ...(session !== undefined
            ? {
                messagesUp: session.messagesUp,
                messagesDown: session.messagesDown,
                initiator: session.initiator,
                closeCode: session.closeCode === 0 ? 1006 : session.closeCode,
                // Chosen by a peer: bounded and escaped (JSON escapes it; control characters are replaced).
                ...(session.closeReason !== '' ? { closeReason: printable(cutText(session.closeReason, 64)) } : {}),
              }
            : {}),
        },
        'tunnel closed',
      );
    }
    this.#owners?.balancer.release(t.backend);
    this.#owners?.limits.release(t.routeId, t.clientAddress);
    if (this.#shutdownEndsAt > 0) this.#drainRemaining.set(this.#tunnels.size);
    this.#notifyIfDrained();
  }

  /**
   * The route labels of the table now live. The metric series of a route that left the table are removed
   * pruneAfterMs after it left and its last tunnel ended, so that deleted routes do not accumulate series forever
   * (Prometheus then stops reporting them, as it does for a deleted pod's).
   */
  setLiveRoutes(routes: ReadonlySet<string>): void {
    const now = performance.now();
    const previous = this.#liveRoutes;
    this.#liveRoutes = routes;
    for (const r of routes) this.#goneSince.delete(r);
    const known = new Set<string>(previous ?? []);
    for (const s of this.#series.values()) known.add(s.route);
    // '' labels what was refused before any route was chosen: never a route that can go.
    for (const r of known) if (r !== '' && !routes.has(r) && !this.#goneSince.has(r)) this.#goneSince.set(r, now);
  }

  #hasLive(route: string): boolean {
    for (const layer of LAYERS) if ((this.#series.get(`${layer}\0${route}`)?.live ?? 0) > 0) return true;
    return false;
  }

  #forget(gone: (route: string) => boolean): void {
    for (const [key, s] of this.#series) if (gone(s.route)) this.#series.delete(key);
    removeRouteSeries(this.#metrics, gone).catch((err: unknown) => this.#log.warn({ err }, 'metric series not pruned'));
  }

  #notifyIfDrained(): void {
    if (this.#tunnels.size === 0 && this.#pending.size === 0 && this.#draining) {
      const d = this.#draining;
      this.#draining = undefined;
      d();
    }
  }

  #seriesOf(route: string, layer: Layer): RouteSeries {
    const key = `${layer}\0${route}`;
    let s = this.#series.get(key);
    if (!s) {
      const m = this.#metrics;
      s = {
        route,
        layer,
        active: m.deferred.connectionsActive.series({ route, layer }),
        duration: m.connectionDuration.labels({ route, layer }),
        bytesUp: m.deferred.tunnelBytes.series({ route, direction: 'upstream' }),
        bytesDown: m.deferred.tunnelBytes.series({ route, direction: 'downstream' }),
        outcomes: new Map(),
        live: 0,
        ws: undefined,
      };
      this.#series.set(key, s);
    }
    return s;
  }
}

