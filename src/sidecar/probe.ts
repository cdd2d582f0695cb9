// Readiness that follows the app: a TCP connect to the upstream port every interval. The sidecar is not ready while
// the app refuses (not started yet, restarting, gone), so the Service sends it no new connections.
import net from 'node:net';
import type { Logger } from '../log/logger.ts';
import type { Endpoint } from '../model/table.ts';

export type UpstreamState = 'unknown' | 'up' | 'down';

export interface UpstreamProbeOptions {
  readonly upstream: Endpoint;
  /** [intervalMs=1000] Time between two connects, in milliseconds. */
  readonly intervalMs?: number;
  /** [timeoutMs=intervalMs] A connect that has not completed in this time counts as down. */
  readonly timeoutMs?: number;
  readonly log: Logger;
}

export class UpstreamProbe {
  readonly #o: UpstreamProbeOptions;
  readonly #intervalMs: number;
  #state: UpstreamState = 'unknown';
  #lastError = '';
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(o: UpstreamProbeOptions) {
    this.#o = o;
    this.#intervalMs = o.intervalMs ?? 1000;
  }

  get state(): UpstreamState {
    return this.#state;
  }

  /** Why the app is not reachable, or undefined when it is. */
  notReady(): string | undefined {
    const { address, port } = this.#o.upstream;
    if (this.#state === 'up') return undefined;
    if (this.#state === 'unknown') return `upstream ${address}:${port} not checked yet`;
    return `upstream ${address}:${port} not accepting connections (${this.#lastError})`;
  }

  /** Probes once now, then every interval until stop(). Resolves after the first probe. */
  async start(): Promise<void> {
    await this.#probeOnce();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#probeOnce().then(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #probeOnce(): Promise<void> {
    const { address, port } = this.#o.upstream;
    const error = await new Promise<string | undefined>((resolve) => {
      const socket = net.connect({ host: address, port });
      const timer = setTimeout(() => {
        socket.destroy();
        resolve('connect timeout');
      }, this.#o.timeoutMs ?? this.#intervalMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        // A probe is not a client: close at once, and let a reset from the app pass quietly.
        socket.on('error', () => {});
        socket.destroy();
        resolve(undefined);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(err.code ?? err.message);
      });
    });
    if (this.#stopped) return;
    const next: UpstreamState = error === undefined ? 'up' : 'down';
    if (next !== this.#state) {
      const log = this.#o.log;
      if (next === 'up') log.info({ upstream: `${address}:${port}` }, 'upstream accepting connections: ready');
      else log.warn({ upstream: `${address}:${port}`, error }, 'upstream not accepting connections: not ready');
    }
    this.#state = next;
    this.#lastError = error ?? '';
  }
}
