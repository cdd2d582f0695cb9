// The registry of live tunnels: two sockets joined after a WebSocket 101 (l7) or an accepted TCP connection (l4).
// Node's servers do not track upgraded sockets (server.close() leaves them alone, nodejs/node#53536), so wsgate does.
// One periodic sweep reads each tunnel's socket byte counters: it feeds the byte metrics and the idle timeout at a
// cost independent of traffic, instead of a timer re-armed on every chunk (socket.setTimeout).
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.ts';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { removeRouteSeries, type Metrics } from '../metrics/metrics.ts';
import type { Layer, Policy } from '../model/table.ts';
import type { Balancer } from './balancer.ts';
import type { ConnectionLimits } from './limits.ts';
import type { Outcome } from './outcomes.ts';
import { endRelay, joinRelay, sweepRelay, throttleSide, unthrottleSide } from './relay.ts';
import { countClose, flushSession, wsSeries, type WsSeries } from './ws-metrics.ts';
import { CLOSE_HANDSHAKE_TIMEOUT_MS, WsSession, type SessionOwner } from './ws-session.ts';

export interface TunnelOptions {
  readonly route: string;
  readonly layer: Layer;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly clientAddress: string;
  /** The endpoint (`address:port`, the balancer's key). */
  readonly backend: string;
  /** 0 = no idle timeout. */
  readonly idleTimeoutMs: number;
  /**
   * Bytes the client socket had already read/written that are not tunnel traffic (an HTTP request head and a
   * 101 response), subtracted from the byte counts.
   */
  readonly clientReadBase?: number;
  readonly clientWrittenBase?: number;
  /** When the connection was accepted (performance.now()), for the duration histogram. */
  readonly startedAt: number;
  /** The route rule whose connection limits this tunnel holds a slot of (released with the endpoint at the end). */
  readonly routeId: string;
  /**
   * An L7 WebSocket tunnel whose route inspects frames: the route's policy (keepalive, limits, strictness) and the
   * RSV bits the negotiated extensions explain. Undefined: a byte pipe (L4, or inspectFrames: false).
   */
  readonly ws?: { readonly policy: Policy; readonly allowedRsv: number };
  /** For the `tunnel closed` line: the host and path the handshake was routed on. */
  readonly host?: string | undefined;
  readonly path?: string;
}

/**
 * A connection that has been accepted but is not a tunnel yet: an L7 handshake (request head read, backend being
 * dialled or answering) or an L4 connection (ClientHello being read, backend being dialled). The registry owns it
 * from accept to close, so that a stop or a drain sees it; it leaves the registry through `settle()` (it became a
 * tunnel, or it ended), or through `abort()` when wsgate stops.
 */
export interface PendingConnection {
  /** Ends the connection now (wsgate is stopping): sockets destroyed, slots released, outcome counted once. */
  abort(outcome: Outcome): void;
}

/** What tunnels hold while they live, given back when they end: a connection slot and an endpoint's count. */
export interface TunnelOwners {
  readonly balancer: Balancer;
  readonly limits: ConnectionLimits;
}

/**
 * What a tunnel keeps after its handshake: the two sockets and a few numbers. Every field is set in the
 * constructor, so all tunnels share one shape; nothing here closes over the request that made the tunnel.
 */
class Tunnel implements SessionOwner {
  readonly registry: TunnelRegistry;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly series: RouteSeries;
  readonly clientAddress: string;
  readonly backend: string;
  readonly idleTimeoutMs: number;
  readonly startedAt: number;
  readonly readBase: number;
  readonly writtenBase: number;
  readonly routeId: string;
  /** client.bytesRead + client.bytesWritten at the last sweep that saw traffic. */
  lastTotal: number;
  lastActive: number;
  countedUp: number;
  countedDown: number;
  outcome: Outcome | undefined;
  open = 2;
  readonly session: WsSession | undefined;
  readonly host: string | undefined;
  readonly path: string | undefined;

  constructor(registry: TunnelRegistry, o: TunnelOptions, series: RouteSeries, now: number) {
    this.registry = registry;
    this.client = o.client;
    this.upstream = o.upstream;
    this.series = series;
    this.clientAddress = o.clientAddress;
    this.backend = o.backend;
    this.idleTimeoutMs = o.idleTimeoutMs;
    this.startedAt = o.startedAt;
    this.readBase = o.clientReadBase ?? 0;
    this.writtenBase = o.clientWrittenBase ?? 0;
    this.routeId = o.routeId;
    this.lastTotal = o.client.bytesRead + o.client.bytesWritten;
    this.lastActive = now;
    this.countedUp = this.readBase;
    this.countedDown = this.writtenBase;
    this.outcome = undefined;
    this.host = o.host;
    this.path = o.path;
    this.session = o.ws ? new WsSession(this, o.ws.policy, o.ws.allowedRsv, now) : undefined;
  }

  // SessionOwner: what the WebSocket session may ask of its tunnel.
  closing(outcome: Outcome): void {
    this.outcome ??= outcome;
  }

  throttle(): void {
    throttleSide(this.client);
  }

  unthrottle(chunk: Buffer, at: number): void {
    unthrottleSide(this.client, chunk, at);
  }
}

/**
 * The metric series of one route and layer, resolved once: prom-client hashes a label object on every call,
 * which a tunnel's open and close would otherwise pay five times.
 */
interface RouteSeries {
  readonly route: string;
  readonly layer: Layer;
  readonly active: Gauge.Internal<'route' | 'layer'>;
  readonly duration: Histogram.Internal<'route' | 'layer'>;
  readonly bytesUp: Counter.Internal;
  readonly bytesDown: Counter.Internal;
  readonly outcomes: Map<Outcome, Counter.Internal>;
  /** Live tunnels of this route and layer (the gauge's value, which prom-client cannot read back cheaply). */
  live: number;
  /** The WebSocket metrics of the route, made with its first WebSocket session. */
  ws: WsSeries | undefined;
}

const LAYERS: readonly Layer[] = ['l7', 'l4'];

// The two sockets of a tunnel point at each other and at their tunnel through these; the handlers below are
// shared by every tunnel, so a tunnel costs no closures.
const PEER = Symbol('wsgate.peer');
const TUNNEL = Symbol('wsgate.tunnel');

interface TunnelSocket extends Socket {
  [PEER]: Socket;
  [TUNNEL]: Tunnel;
}

function sideOnError(this: TunnelSocket): void {
  const t = this[TUNNEL];
  t.registry.fail(t, this === t.client ? 'client_abort' : 'upstream_error');
}

function sideOnClose(this: TunnelSocket): void {
  const t = this[TUNNEL];
  t.registry.sideClosed(t, this[PEER]);
}

function destroyOnFinish(this: Socket): void {
  this.destroy();
}

export class TunnelRegistry {
  readonly #tunnels = new Set<Tunnel>();
  readonly #pending = new Set<PendingConnection>();
  readonly #series = new Map<string, RouteSeries>();
  /** Route labels of the live table; undefined until the first table (nothing is pruned before it). */
  #liveRoutes: ReadonlySet<string> | undefined;
  /** Set by closeAll(): a handshake that completes after it is closed at once instead of becoming a tunnel. */
  #closed = false;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #owners: TunnelOwners | undefined;
  readonly #timer: NodeJS.Timeout;
  #draining: (() => void) | undefined;

  /**
   * @param sweepIntervalMs How often byte counters and idle timeouts are checked (default 1000 ms).
   * @param owners Where an ended tunnel gives back its endpoint count and connection slot. A tunnel keeps keys,
   *   not a callback: a closure made during the handshake would keep the handshake's whole scope (request
   *   headers, buffers, timers) alive for as long as the tunnel lives.
   */
  constructor(metrics: Metrics, log: Logger, sweepIntervalMs = 1000, owners?: TunnelOwners) {
    this.#metrics = metrics;
    this.#log = log;
    this.#owners = owners;
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
   * After closeAll() (a handshake that completed during the final close), the tunnel is closed at once.
   */
  open(opts: TunnelOptions): void {
    const t = new Tunnel(this, opts, this.#seriesOf(opts.route, opts.layer), performance.now());
    this.#tunnels.add(t);
    t.series.active.inc();
    t.series.live++;
    this.#log.debug({ route: t.series.route, layer: t.series.layer, client: t.clientAddress, backend: t.backend }, 'tunnel opened');
    join(t.client as TunnelSocket, t.upstream, t);
    join(t.upstream as TunnelSocket, t.client, t);
    // A side may already be gone (a client that hung up while its backend was being dialled): its 'close' has
    // been emitted, so count it closed now rather than wait for an event that will not come.
    if (t.client.closed) queueMicrotask(() => this.sideClosed(t, t.upstream));
    if (t.upstream.closed) queueMicrotask(() => this.sideClosed(t, t.client));
    // Both sides may have been paused (a handshake read, pauseOnConnect): the relay resumes them.
    joinRelay(t.client, t.upstream, t.session);
    if (t.session) t.series.ws ??= wsSeries(this.#metrics, t.series.route);
    if (this.#closed) this.fail(t, 'shutdown');
  }

  /**
   * Closes every tunnel and pending connection now (outcome `shutdown`), and every one that completes its handshake
   * from here on; resolves when all have ended.
   */
  closeAll(): Promise<void> {
    this.#closed = true;
    for (const p of [...this.#pending]) p.abort('shutdown');
    for (const t of this.#tunnels) this.fail(t, 'shutdown');
    return this.drained();
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
  }

  /** Reads every tunnel's byte counters: adds the deltas to the byte metrics and closes idle tunnels. */
  sweep(now = performance.now()): void {
    for (const t of this.#tunnels) {
      countBytes(t);
      sweepRelay(t.client);
      sweepRelay(t.upstream);
      const session = t.session;
      if (session !== undefined) {
        flushSession(this.#metrics, t.series.route, t.series.ws!, session);
        // A close wsgate started and that did not finish in time is cut.
        if (session.closingAt > 0 && now - session.closingAt >= CLOSE_HANDSHAKE_TIMEOUT_MS) {
          this.fail(t, t.outcome ?? 'shutdown');
          continue;
        }
        session.sweep(now);
      }
      const total = t.client.bytesRead + t.client.bytesWritten;
      if (total !== t.lastTotal) {
        t.lastTotal = total;
        t.lastActive = now;
      } else if (t.idleTimeoutMs > 0 && now - t.lastActive >= t.idleTimeoutMs) {
        // A WebSocket gets close frames both ways first, so that its peers see 1001 and not 1006.
        if (session !== undefined && !session.closingStarted) session.closeBoth(1001, 'idle timeout', 1001, 'idle_timeout');
        else if (session === undefined) this.fail(t, 'idle_timeout');
      }
    }
  }

  /**
   * An error or a decision of ours: both sockets go now; the first reason wins. A reset on one side is passed on
   * as a reset (RST) to the other, so that a peer sees an abort as an abort, not as a clean end of stream.
   */
  fail(t: Tunnel, outcome: Outcome): void {
    t.outcome ??= outcome;
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
    this.#tunnels.delete(t);
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
      total = this.#metrics.connectionsTotal.labels({ route: s.route, layer: s.layer, outcome });
      s.outcomes.set(outcome, total);
    }
    total.inc();
    s.duration.observe(seconds);
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
              ...(session.closeReason !== '' ? { closeReason: printable(session.closeReason.slice(0, 64)) } : {}),
            }
          : {}),
      },
      'tunnel closed',
    );
    this.#owners?.balancer.release(t.backend);
    this.#owners?.limits.release(t.routeId, t.clientAddress);
    if (this.#liveRoutes !== undefined && !this.#liveRoutes.has(s.route) && !this.#hasLive(s.route)) {
      this.#forget((r) => r === s.route);
    }
    this.#notifyIfDrained();
  }

  /**
   * The route labels of the table now live. The metric series of a route that left the table are removed once its
   * last tunnel has ended, so that deleted routes do not accumulate series forever (Prometheus then stops reporting
   * them, as it does for a deleted pod's).
   */
  setLiveRoutes(routes: ReadonlySet<string>): void {
    this.#liveRoutes = routes;
    // '' labels what was refused before any route was chosen: never a route that can go.
    this.#forget((r) => r !== '' && !routes.has(r) && !this.#hasLive(r));
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
        active: m.connectionsActive.labels({ route, layer }),
        duration: m.connectionDuration.labels({ route, layer }),
        bytesUp: m.tunnelBytes.labels({ route, direction: 'upstream' }),
        bytesDown: m.tunnelBytes.labels({ route, direction: 'downstream' }),
        outcomes: new Map(),
        live: 0,
        ws: undefined,
      };
      this.#series.set(key, s);
    }
    return s;
  }
}

function join(side: TunnelSocket, peer: Socket, t: Tunnel): void {
  side[PEER] = peer;
  side[TUNNEL] = t;
  side.on('error', sideOnError);
  // 'close' comes once; on() rather than once() saves a wrapper closure per socket.
  if (!side.closed) side.on('close', sideOnClose);
}

function countBytes(t: Tunnel): void {
  const up = t.client.bytesRead;
  const down = t.client.bytesWritten;
  if (up > t.countedUp) {
    t.series.bytesUp.inc(up - t.countedUp);
    t.countedUp = up;
  }
  if (down > t.countedDown) {
    t.series.bytesDown.inc(down - t.countedDown);
    t.countedDown = down;
  }
}

function reset(s: Socket): void {
  if (s.destroyed) return;
  // libuv refuses to reset a socket whose write side is shutting down (uv_tcp_close_reset answers EINVAL), and
  // a failed reset leaves Node's close to an error path: after end(), a plain close is all there is.
  if (s.writableEnded || s.connecting) {
    s.destroy();
    return;
  }
  try {
    s.resetAndDestroy();
  } catch {
    // A TLS socket's handle cannot send an RST: a plain close is the best left.
    s.destroy();
  }
}

/** A peer-chosen text for a log line: control characters replaced. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, '\ufffd');
}
