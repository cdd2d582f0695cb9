// A tunnel: two sockets joined after a WebSocket 101 (l7) or an accepted TCP connection (l4), as the registry
// (registry.ts) tracks it. What a tunnel keeps after its handshake is this small record and shared handler
// functions: a closure made during the handshake would keep the handshake's whole scope alive for its life.
import net, { type Socket } from 'node:net';
import type { Histogram } from 'prom-client';
import type { DeferredSeries } from '../metrics/deferred.ts';
import type { Layer, LoadBalancing, OnRemoval, Policy, Rebalance } from '../model/table.ts';
import type { Balancer } from './balancer.ts';
import type { DrainBatch, Drainable } from './drain.ts';
import type { ConnectionLimits } from './limits.ts';
import type { NativeLink, NativeOwner } from './native-relay.ts';
import type { Outcome } from './outcomes.ts';
import type { TunnelRegistry } from './registry.ts';
import { throttleSide, unthrottleSide, writeInto } from './relay.ts';
import type { Failure } from './ws-frames.ts';
import type { WsSeries } from './ws-metrics.ts';
import { WsSession, type SessionOwner, type Side } from './ws-session.ts';

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
  /**
   * What may end the tunnel besides its peers, from its route (a frozen object of the table, shared by all its
   * tunnels): the endpoint drain, the route's removal, and (L7) rebalancing. Default: DEFAULT_DRAIN.
   */
  readonly drain?: DrainPolicy;
  /** ConsistentHash routes: the value the endpoint was chosen by, so that a rebalance moves only what moved. */
  readonly hashKey?: string | undefined;
}

/** The knobs of a route that decide when wsgate closes its tunnels (Policy and TunnelRoute both have them). */
export interface DrainPolicy {
  readonly endpointDrainSeconds: number;
  readonly onRemoval: OnRemoval;
  readonly rebalance?: Rebalance;
  readonly loadBalancing?: LoadBalancing;
}

export const DEFAULT_DRAIN: DrainPolicy = Object.freeze({
  endpointDrainSeconds: 0,
  onRemoval: Object.freeze({ action: 'Keep', graceSeconds: 0 }),
});

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
export class Tunnel implements SessionOwner, Drainable, NativeOwner {
  readonly registry: TunnelRegistry;
  /** Both DETACHED once the tunnel is on the native relay (detach()): the sockets it had are destroyed. */
  client: Socket;
  upstream: Socket;
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
  readonly drain: DrainPolicy;
  readonly hashKey: string | undefined;
  /** A spread close that will end this tunnel (drain.ts), while one is scheduled. */
  drainBatch: DrainBatch | undefined;
  /** When wsgate started closing it (close frames or FIN sent); 0 while it is not closing. */
  closingAt = 0;
  /** On the native relay (native-relay.ts): its sockets were handed over and destroyed; undefined on the JS relay. */
  link: NativeLink | undefined = undefined;

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
    this.drain = o.drain ?? DEFAULT_DRAIN;
    this.hashKey = o.hashKey;
    this.drainBatch = undefined;
    this.session = o.ws ? new WsSession(this, o.ws.policy, o.ws.allowedRsv, now) : undefined;
  }

  // SessionOwner: what the WebSocket session may ask of its tunnel.
  closing(outcome: Outcome): void {
    this.outcome ??= outcome;
    if (this.closingAt === 0) this.closingAt = performance.now();
    this.drainBatch?.cancel(this);
  }

  throttle(): void {
    throttleSide(this.client);
  }

  unthrottle(chunk: Buffer, at: number): void {
    unthrottleSide(this.client, chunk, at);
  }

  violation(failure: Failure, side: Side, closed: boolean): void {
    this.registry.violation(this, failure, side, closed);
  }

  inject(socket: Socket, frame: Buffer): void {
    writeInto(socket, frame);
  }

  /**
   * The tunnel is on the native relay, which owns its descriptors: its destroyed sockets are let go, so that an idle
   * tunnel there keeps no stream objects alive (about 1 KB of RSS per tunnel, measured), only this record and its link.
   */
  detach(link: NativeLink): void {
    this.link = link;
    this.client = DETACHED;
    this.upstream = DETACHED;
  }

  // NativeOwner: the native relay has closed both sockets.
  relayClosed(_link: NativeLink, outcome: Outcome | undefined): void {
    this.registry.relayClosed(this, outcome);
  }
}

/**
 * What a tunnel on the native relay has instead of its sockets: one socket, never connected, destroyed at once and
 * shared by every such tunnel. What the registry does to a tunnel's sockets whatever its relay (the sweep's look at
 * their read buffers, endRelay()) finds nothing to do on it; everything else asks the link.
 */
const DETACHED: Socket = new net.Socket().destroy();

/** Bytes read from the client so far (tunnel traffic and, on L7, the request head). */
export function clientRead(t: Tunnel): number {
  return t.link === undefined ? t.client.bytesRead : t.link.clientRead;
}

/** Bytes written to the client so far. */
export function clientWritten(t: Tunnel): number {
  return t.link === undefined ? t.client.bytesWritten : t.link.clientWritten;
}

/**
 * The metric series of one route and layer, resolved once. The counters and the gauge are deferred
 * (metrics/deferred.ts): prom-client hashes a label object on every call, even a child's.
 */
export interface RouteSeries {
  readonly route: string;
  readonly layer: Layer;
  readonly active: DeferredSeries;
  readonly duration: Histogram.Internal<'route' | 'layer'>;
  readonly bytesUp: DeferredSeries;
  readonly bytesDown: DeferredSeries;
  readonly outcomes: Map<Outcome, DeferredSeries>;
  /** Live tunnels of this route and layer (the gauge's value, which prom-client cannot read back cheaply). */
  live: number;
  /** The WebSocket metrics of the route, made with its first WebSocket session. */
  ws: WsSeries | undefined;
}

export const LAYERS: readonly Layer[] = ['l7', 'l4'];

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

export function destroyOnFinish(this: Socket): void {
  this.destroy();
}

/** Points a side at its peer and tunnel, and gives it the tunnel's error and close handlers. */
export function join(side: Socket, peer: Socket, t: Tunnel): void {
  joinSide(side as TunnelSocket, peer, t);
}

function joinSide(side: TunnelSocket, peer: Socket, t: Tunnel): void {
  side[PEER] = peer;
  side[TUNNEL] = t;
  side.on('error', sideOnError);
  // 'close' comes once; on() rather than once() saves a wrapper closure per socket.
  if (!side.closed) side.on('close', sideOnClose);
}

/** Adds the bytes relayed since the last count to the byte metrics. */
export function countBytes(t: Tunnel): void {
  const up = clientRead(t);
  const down = clientWritten(t);
  if (up > t.countedUp) {
    t.series.bytesUp.inc(up - t.countedUp);
    t.countedUp = up;
  }
  if (down > t.countedDown) {
    t.series.bytesDown.inc(down - t.countedDown);
    t.countedDown = down;
  }
}

/** Closes a socket with an RST where it can (so that a peer sees an abort as an abort). */
export function reset(s: Socket): void {
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
/** At most `max` UTF-16 units of `text`, never half of a surrogate pair (an emoji cut in two). */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, '\ufffd');
}
