// Supervised informers: one per watched kind, on client-node's ListWatch, which lists, watches from the list's
// resourceVersion, relists after a 410 Gone, and reconnects after a clean end of a watch — but stops for good
// after any other error (a refused connection, a 5xx, a failed list). So each informer here is supervised:
//
//   1. Every error is counted (wsgate_controller_watch_errors_total{kind}) and the ListWatch is restarted after a
//      capped exponential backoff with jitter (restartDelay); the attempt count resets once a list or a watch
//      connection succeeds. A restart resumes from the last resourceVersion; when that is too old, the API server
//      answers 410 and the ListWatch relists.
//   2. A watchdog relists (a fresh ListWatch, a fresh list) when nothing — no list, no watch event — has arrived
//      for `watchdogMs`: the cure for watches that stall silently (kubernetes-client/javascript#958, #364).
//   3. Objects reach the consumer through a tap on the list function and on the watch callback: `onList` with the
//      whole collection (the consumer replaces what it knew, so a relist also reports deletions missed while
//      disconnected), `onUpsert`/`onDelete` per watch event. The ListWatch's own cache keeps only each object's
//      name, namespace and resourceVersion: the consumer's store is the one copy of the objects.
//   4. hasSynced() turns true at the first complete list and stays true: readiness waits for it once; later
//      outages do not take the data plane out of service.
import { ERROR, ListWatch, Watch, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { KindSource, ObjectList } from './kinds.ts';

export interface InformerHandlers {
  /** The whole collection, after each (re)list. */
  onList(items: readonly KubernetesObject[]): void;
  onUpsert(obj: KubernetesObject): void;
  onDelete(obj: KubernetesObject): void;
}

export interface BackoffOptions {
  /** [baseMs=500] Delay before the first restart, before jitter (ms). */
  readonly baseMs?: number;
  /** [maxMs=30000] Cap of the delay (ms). */
  readonly maxMs?: number;
}

export interface InformerOptions {
  readonly kc: KubeConfig;
  readonly source: KindSource;
  readonly handlers: InformerHandlers;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly backoff?: BackoffOptions;
  /** [watchdogMs=300000] Relist when no list or watch event has arrived for this long (ms). */
  readonly watchdogMs?: number;
  /** [random=Math.random] Source of jitter, for tests. */
  readonly random?: () => number;
}

/**
 * The delay before restart number `attempt` (0-based): base·2^attempt capped at max, then "equal jitter" — a
 * uniformly random point in its upper half — so that informers (and replicas) that failed together do not
 * reconnect together (kubernetes-client/javascript#1933).
 */
export function restartDelay(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = o.baseMs ?? 500;
  const max = o.maxMs ?? 30_000;
  const capped = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.round(capped / 2 + (random() * capped) / 2);
}

/** What the ListWatch keeps of an object: enough to track resourceVersions, none of the payload. */
function skeleton(obj: KubernetesObject): KubernetesObject {
  const m = obj.metadata ?? {};
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: { name: m.name, namespace: m.namespace, resourceVersion: m.resourceVersion },
  };
}

type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;
type DoneCallback = (err: unknown) => void;

export class SupervisedInformer {
  readonly kind: string;
  readonly #o: InformerOptions;
  readonly #log: Logger;
  readonly #watch: Watch;
  #lw: ListWatch<KubernetesObject> | undefined;
  #synced = false;
  #stopped = true;
  #attempt = 0;
  #lastActivity = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(o: InformerOptions) {
    this.#o = o;
    this.kind = o.source.kind;
    this.#log = o.log.child({ kind: o.source.kind });
    this.#watch = new Watch(o.kc);
  }

  /** True once the first complete list has been delivered. */
  hasSynced(): boolean {
    return this.#synced;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#lastActivity = Date.now();
    const watchdogMs = this.#o.watchdogMs ?? 300_000;
    this.#watchdog = setInterval(() => this.#watchdogOnTick(watchdogMs), Math.max(10, Math.floor(watchdogMs / 4)));
    this.#watchdog.unref();
    this.#begin();
  }

  /** Forgets the watch and lists again from scratch. */
  relist(): void {
    if (this.#stopped) return;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.#begin();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#watchdog);
    const lw = this.#lw;
    this.#lw = undefined;
    await lw?.stop();
  }

  /** A fresh ListWatch: it lists first, then watches. The previous one, if any, is stopped and ignored. */
  #begin(): void {
    void this.#lw?.stop();
    const lw: ListWatch<KubernetesObject> = new ListWatch(
      this.#o.source.path,
      this.#tappedWatch(() => this.#lw === lw),
      () => this.#list(lw),
      false,
      this.#o.source.labelSelector,
      this.#o.source.fieldSelector,
    );
    this.#lw = lw;
    lw.on(ERROR, (err: unknown) => this.#listWatchOnError(lw, err));
    this.#run(lw, () => lw.start());
  }

  #run(lw: ListWatch<KubernetesObject>, step: () => Promise<void>): void {
    // start() rejects only when opening a watch throws before any request (credentials, configuration).
    step().catch((err: unknown) => this.#listWatchOnError(lw, err));
  }

  async #list(lw: ListWatch<KubernetesObject>): Promise<ObjectList> {
    const list = await this.#o.source.list();
    if (this.#lw !== lw) return { items: [], metadata: list.metadata ?? {} };
    const items = list.items ?? [];
    this.#activity();
    this.#o.handlers.onList(items);
    if (!this.#synced) {
      this.#synced = true;
      this.#log.debug({ objects: items.length }, 'informer synced');
    }
    return { items: items.map(skeleton), metadata: list.metadata ?? {} };
  }

  /** client-node's Watch, with each event handed to the consumer before the ListWatch sees its skeleton. */
  #tappedWatch(current: () => boolean): Watch {
    const real = this.#watch;
    const tapped = {
      watch: async (path: string, params: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: DoneCallback) => {
        let ended = false;
        const controller = await real.watch(
          path,
          params,
          (phase: string, obj: unknown, raw?: unknown) => {
            if (!current()) return;
            if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
              const o = obj as KubernetesObject;
              this.#activity();
              if (phase === 'DELETED') this.#o.handlers.onDelete(o);
              else this.#o.handlers.onUpsert(o);
              callback(phase, skeleton(o), raw);
              return;
            }
            callback(phase, obj, raw);
          },
          (err: unknown) => {
            ended = true;
            done(err);
          },
        );
        // The request was answered 200 and the stream is open: the API server is back.
        if (!ended && current()) this.#attempt = 0;
        return controller;
      },
    };
    return tapped as unknown as Watch;
  }

  #activity(): void {
    this.#lastActivity = Date.now();
    this.#attempt = 0;
  }

  #listWatchOnError(lw: ListWatch<KubernetesObject>, err: unknown): void {
    if (this.#stopped || this.#lw !== lw || this.#restartTimer !== undefined) return;
    this.#o.metrics.controllerWatchErrors.inc({ kind: this.kind });
    const delayMs = restartDelay(this.#attempt++, this.#o.backoff, this.#o.random);
    this.#log.warn({ err: describeError(err), attempt: this.#attempt, delayMs }, 'watch failed; restarting after backoff');
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped || this.#lw !== lw) return;
      // Resumes from the last resourceVersion (or lists, if there is none yet or it was Gone).
      this.#run(lw, () => lw.start());
    }, delayMs);
    this.#restartTimer.unref();
  }

  #watchdogOnTick(watchdogMs: number): void {
    if (this.#stopped || this.#restartTimer !== undefined) return;
    const silentMs = Date.now() - this.#lastActivity;
    if (silentMs < watchdogMs) return;
    this.#log.info({ silentMs }, 'watch silent for too long; relisting');
    this.#lastActivity = Date.now();
    this.#begin();
  }
}

/** A short description of a list or watch error for a log line (client-node errors carry large bodies). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; statusCode?: unknown; cause?: unknown };
    const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
    const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
    return `${status === undefined ? '' : `HTTP ${status}: `}${e.message.split('\n')[0] ?? ''}${cause}`.slice(0, 300);
  }
  return String(err).slice(0, 300);
}
