// The registry of live tunnels: two sockets joined after a WebSocket 101 (l7) or an accepted TCP connection (l4).
// Node's servers do not track upgraded sockets (server.close() leaves them alone, nodejs/node#53536), so wsgate does.
// One periodic sweep reads each tunnel's socket byte counters: it feeds the byte metrics and the idle timeout at a
// cost independent of traffic, instead of a timer re-armed on every chunk (socket.setTimeout).
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.ts';
import type { Metrics, Outcome } from '../metrics/metrics.ts';
import type { Layer } from '../model/table.ts';

export interface TunnelOptions {
  readonly route: string;
  readonly layer: Layer;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly clientAddress: string;
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
  /** Called once when the tunnel has ended (both sockets closed), e.g. to release limits. */
  readonly onEnd?: () => void;
}

interface Tunnel extends TunnelOptions {
  /** client.bytesRead + client.bytesWritten at the last sweep that saw traffic. */
  lastTotal: number;
  lastActive: number;
  countedUp: number;
  countedDown: number;
  outcome: Outcome | undefined;
  open: number;
}

export class TunnelRegistry {
  readonly #tunnels = new Set<Tunnel>();
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #timer: NodeJS.Timeout;
  #draining: (() => void) | undefined;

  /** @param sweepIntervalMs How often byte counters and idle timeouts are checked (default 1000 ms). */
  constructor(metrics: Metrics, log: Logger, sweepIntervalMs = 1000) {
    this.#metrics = metrics;
    this.#log = log;
    this.#timer = setInterval(() => this.sweep(), sweepIntervalMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#tunnels.size;
  }

  /** Joins the two sockets (both must be connected, with allowHalfOpen) and tracks the tunnel until both close. */
  open(opts: TunnelOptions): void {
    const { client, upstream } = opts;
    const now = performance.now();
    const t: Tunnel = {
      ...opts,
      lastTotal: client.bytesRead + client.bytesWritten,
      lastActive: now,
      countedUp: opts.clientReadBase ?? 0,
      countedDown: opts.clientWrittenBase ?? 0,
      outcome: undefined,
      open: 2,
    };
    this.#tunnels.add(t);
    this.#metrics.connectionsActive.inc({ route: t.route, layer: t.layer });
    client.setTimeout(0);
    upstream.setTimeout(0);
    client.setNoDelay(true);

    // pipe() carries backpressure and half-close: the end of one side's reads becomes end() on the other's writes.
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => this.#fail(t, 'client_error'));
    upstream.on('error', () => this.#fail(t, 'upstream_error'));
    // A side may already be gone (a client that hung up while its backend was being dialled): its 'close' has
    // been emitted, so count it closed now rather than wait for an event that will not come.
    if (client.closed) queueMicrotask(() => this.#sideClosed(t, upstream));
    else client.once('close', () => this.#sideClosed(t, upstream));
    if (upstream.closed) queueMicrotask(() => this.#sideClosed(t, client));
    else upstream.once('close', () => this.#sideClosed(t, client));
  }

  /** Closes every tunnel now (outcome `shutdown`) and resolves when all have ended. */
  closeAll(): Promise<void> {
    for (const t of this.#tunnels) this.#fail(t, 'shutdown');
    return this.drained();
  }

  /** Resolves when no tunnel is left. */
  drained(): Promise<void> {
    if (this.#tunnels.size === 0) return Promise.resolve();
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
      this.#countBytes(t);
      const total = t.client.bytesRead + t.client.bytesWritten;
      if (total !== t.lastTotal) {
        t.lastTotal = total;
        t.lastActive = now;
      } else if (t.idleTimeoutMs > 0 && now - t.lastActive >= t.idleTimeoutMs) {
        this.#fail(t, 'idle_timeout');
      }
    }
  }

  #countBytes(t: Tunnel): void {
    const up = t.client.bytesRead;
    const down = t.client.bytesWritten;
    if (up > t.countedUp) {
      this.#metrics.tunnelBytes.inc({ route: t.route, direction: 'upstream' }, up - t.countedUp);
      t.countedUp = up;
    }
    if (down > t.countedDown) {
      this.#metrics.tunnelBytes.inc({ route: t.route, direction: 'downstream' }, down - t.countedDown);
      t.countedDown = down;
    }
  }

  /**
   * An error or a decision of ours: both sockets go now; the first reason wins. A reset on one side is passed on
   * as a reset (RST) to the other, so that a peer sees an abort as an abort, not as a clean end of stream.
   */
  #fail(t: Tunnel, outcome: Outcome): void {
    t.outcome ??= outcome;
    if (outcome === 'client_error') reset(t.upstream);
    else t.upstream.destroy();
    if (outcome === 'upstream_error') reset(t.client);
    else t.client.destroy();
  }

  #sideClosed(t: Tunnel, other: Socket): void {
    // The other side may still be flushing bytes this side sent before its FIN: end it, destroy once flushed.
    if (!other.destroyed) {
      if (other.writableFinished) other.destroy();
      else {
        other.end();
        other.once('finish', () => other.destroy());
      }
    }
    if (--t.open > 0) return;
    this.#tunnels.delete(t);
    this.#countBytes(t);
    const outcome = t.outcome ?? 'completed';
    const seconds = (performance.now() - t.startedAt) / 1000;
    const labels = { route: t.route, layer: t.layer };
    this.#metrics.connectionsActive.dec(labels);
    this.#metrics.connectionsTotal.inc({ ...labels, outcome });
    this.#metrics.connectionDuration.observe(labels, seconds);
    this.#log.info(
      {
        route: t.route,
        layer: t.layer,
        client: t.clientAddress,
        backend: t.backend,
        bytesUp: t.countedUp - (t.clientReadBase ?? 0),
        bytesDown: t.countedDown - (t.clientWrittenBase ?? 0),
        durationMs: Math.round(seconds * 1000),
        outcome,
      },
      'tunnel closed',
    );
    t.onEnd?.();
    if (this.#tunnels.size === 0 && this.#draining) {
      const d = this.#draining;
      this.#draining = undefined;
      d();
    }
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
