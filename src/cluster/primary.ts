// The primary of a multi-process wsgate: it owns configuration (files or the controller), the admin server and
// metric aggregation; N forked workers own the data plane. Each worker binds the same ports with SO_REUSEPORT,
// so the kernel spreads new connections across them without a hop through this process.
//
// The numbered life of the pool:
//  1. fork the first worker; once it is listening, its ports are the ports (this matters for port 0);
//  2. fork the others with those ports;
//  3. every table goes to every worker; apply() resolves when all have acknowledged it;
//  4. a worker that dies is replaced and given the current table; the others' connections are untouched;
//  5. stop() tells every worker to drain and waits for them to exit.
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import { AdminServer } from '../admin/server.ts';
import type { CertificateError, DataPlane } from '../dataplane.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { EMPTY_TABLE, type RoutingTable } from '../model/table.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import type { ToPrimary, ToWorker, WorkerInit, WorkerMetrics } from './messages.ts';

export interface PoolOptions {
  /** Worker processes (≥ 1). */
  readonly workers: number;
  readonly init: WorkerInit;
  readonly log: Logger;
  /** The primary's own metrics (config reloads, ...), served together with the workers'. */
  readonly metrics: Metrics;
  readonly adminAddr?: ListenAddress;
  /** How long the primary waits for a worker's answer to a metrics or status request (ms, default 2000). */
  readonly requestTimeoutMs?: number;
  /** Why the configuration source is not ready (e.g. informers not synced), checked before the workers. */
  readonly sourceNotReady?: () => string | undefined;
}

interface WorkerState {
  readonly worker: Worker;
  listening: boolean;
  /** The table sequence number this worker last acknowledged. */
  appliedSeq: number;
  startedAt: number;
}

interface Answer {
  readonly worker: number;
  readonly message: ToPrimary;
}

interface Pending {
  readonly waiting: Set<number>;
  readonly answers: Answer[];
  readonly resolve: (answers: Answer[]) => void;
}

/** A worker that dies this soon after starting is crashing: wait before replacing it (ms). */
const CRASH_WINDOW_MS = 5_000;
const RESPAWN_DELAY_MS = 1_000;

export class WorkerPool implements DataPlane {
  readonly #o: PoolOptions;
  readonly #log: Logger;
  readonly #workers = new Map<number, WorkerState>();
  readonly #pending = new Map<number, Pending>();
  readonly #admin: AdminServer | undefined;
  #init: WorkerInit;
  #table: RoutingTable = EMPTY_TABLE;
  #tableSeq = 0;
  #requestSeq = 0;
  #stopping = false;
  #adminAddress: AddressInfo | undefined;
  #ports: { http?: number; https?: number } = {};

  constructor(o: PoolOptions) {
    this.#o = o;
    this.#init = o.init;
    this.#log = o.log.child({ component: 'workers' });
    if (o.adminAddr) {
      this.#admin = new AdminServer({
        metrics: () => this.#aggregatedMetrics(),
        notReady: () => this.notReady(),
        table: () => this.#table,
        debug: { workers: () => this.#workerStatus() },
      });
    }
  }

  async start(): Promise<void> {
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.ts', import.meta.url)), args: [] });
    const first = await this.#fork();
    // Workers after the first bind the ports it got, so that port 0 means one port for all of them.
    const http = this.#init.httpAddr && first.http !== undefined ? { ...this.#init.httpAddr, port: first.http } : this.#init.httpAddr;
    const https = this.#init.httpsAddr && first.https !== undefined ? { ...this.#init.httpsAddr, port: first.https } : this.#init.httpsAddr;
    this.#init = { ...this.#init, ...(http ? { httpAddr: http } : {}), ...(https ? { httpsAddr: https } : {}) };
    this.#ports = first;
    await Promise.all(Array.from({ length: this.#o.workers - 1 }, () => this.#fork()));
    if (this.#admin && this.#o.adminAddr) {
      this.#adminAddress = await this.#admin.listen(this.#o.adminAddr.host, this.#o.adminAddr.port);
    }
  }

  async apply(table: RoutingTable): Promise<{ certificateErrors: readonly CertificateError[] }> {
    this.#table = table;
    const seq = ++this.#tableSeq;
    const answers = await this.#request({ type: 'table', seq, table }, seq, Infinity);
    this.#setRoutes(table);
    // Every worker loads the same certificates: the first answer speaks for all.
    const first = answers[0]?.message;
    return { certificateErrors: first?.type === 'applied' ? first.certificateErrors : [] };
  }

  get table(): RoutingTable {
    return this.#table;
  }

  notReady(): string | undefined {
    if (this.#stopping) return 'draining';
    const source = this.#o.sourceNotReady?.();
    if (source !== undefined) return source;
    if (this.#tableSeq === 0) return 'no routing table yet';
    let ready = 0;
    for (const w of this.#workers.values()) if (w.listening && w.appliedSeq === this.#tableSeq) ready++;
    if (ready < this.#o.workers) return `${ready} of ${this.#o.workers} workers ready`;
    return undefined;
  }

  addresses(): { http?: AddressInfo; https?: AddressInfo; admin?: AddressInfo } {
    const addr = (a: ListenAddress | undefined, port: number | undefined): AddressInfo | undefined =>
      a && port !== undefined ? { address: a.host, port, family: a.host.includes(':') ? 'IPv6' : 'IPv4' } : undefined;
    const http = addr(this.#init.httpAddr, this.#ports.http);
    const https = addr(this.#init.httpsAddr, this.#ports.https);
    return { ...(http ? { http } : {}), ...(https ? { https } : {}), ...(this.#adminAddress ? { admin: this.#adminAddress } : {}) };
  }

  async tunnels(): Promise<number> {
    let n = 0;
    for (const s of await this.#workerStatus()) n += s.tunnels;
    return n;
  }

  async stop(graceMs = 0): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#workers.values()].map((w) => new Promise<void>((resolve) => w.worker.once('exit', () => resolve())));
    for (const w of this.#workers.values()) this.#send(w.worker, { type: 'stop', graceMs });
    await Promise.all(exits);
    await this.#admin?.close();
  }

  closeTunnels(): Promise<void> {
    for (const w of this.#workers.values()) this.#send(w.worker, { type: 'close-tunnels' });
    return Promise.resolve();
  }

  #setRoutes(table: RoutingTable): void {
    const ids = new Set<string>();
    for (const vh of table.virtualHosts) for (const r of vh.routes) ids.add(r.id);
    this.#o.metrics.routes.set({ kind: 'http' }, ids.size);
    this.#o.metrics.routes.set({ kind: 'tunnel' }, table.tunnels.length);
  }

  /** Forks a worker, initialises it, and resolves with its ports once it listens (and has the current table). */
  #fork(): Promise<{ http?: number; https?: number }> {
    const worker = cluster.fork();
    const state: WorkerState = { worker, listening: false, appliedSeq: 0, startedAt: performance.now() };
    this.#workers.set(worker.id, state);
    return new Promise((resolve, reject) => {
      worker.on('message', (m: ToPrimary) => {
        switch (m.type) {
          case 'listening':
            state.listening = true;
            this.#log.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
            if (this.#tableSeq > 0) this.#send(worker, { type: 'table', seq: this.#tableSeq, table: this.#table });
            resolve({ ...(m.http !== undefined ? { http: m.http } : {}), ...(m.https !== undefined ? { https: m.https } : {}) });
            return;
          case 'start-failed':
            reject(new Error(`worker ${worker.id} could not start: ${m.message}`));
            return;
          case 'applied':
            state.appliedSeq = Math.max(state.appliedSeq, m.seq);
            this.#answer(worker.id, m.seq, m);
            return;
          case 'metrics':
          case 'status':
            this.#answer(worker.id, m.seq, m);
        }
      });
      worker.once('exit', (code, signal) => this.#workerOnExit(state, code, signal));
      this.#send(worker, { type: 'init', init: this.#init });
    });
  }

  #workerOnExit(state: WorkerState, code: number | null, signal: string | null): void {
    const id = state.worker.id;
    this.#workers.delete(id);
    // Whatever it was asked, it will not answer.
    for (const [seq, p] of this.#pending) if (p.waiting.delete(id) && p.waiting.size === 0) this.#settle(seq);
    if (this.#stopping) return;
    this.#log.error({ worker: id, code, signal }, 'worker exited; replacing it');
    const crashed = performance.now() - state.startedAt < CRASH_WINDOW_MS;
    const respawn = (): void => {
      if (this.#stopping) return;
      this.#fork().catch((err: unknown) => this.#log.error({ err }, 'replacement worker failed to start'));
    };
    if (crashed) setTimeout(respawn, RESPAWN_DELAY_MS).unref();
    else respawn();
  }

  #send(worker: Worker, m: ToWorker): void {
    if (worker.isConnected()) worker.send(m);
  }

  /** Sends a message to every listening worker and collects their answers (bounded by timeoutMs). */
  #request(message: ToWorker, seq: number, timeoutMs: number): Promise<Answer[]> {
    return new Promise((resolve) => {
      const waiting = new Set<number>();
      for (const w of this.#workers.values()) {
        if (!w.listening) continue;
        waiting.add(w.worker.id);
        this.#send(w.worker, message);
      }
      this.#pending.set(seq, { waiting, answers: [], resolve });
      if (waiting.size === 0) this.#settle(seq);
      else if (Number.isFinite(timeoutMs)) setTimeout(() => this.#settle(seq), timeoutMs).unref();
    });
  }

  #answer(workerId: number, seq: number, m: ToPrimary): void {
    const p = this.#pending.get(seq);
    if (!p || !p.waiting.delete(workerId)) return;
    p.answers.push({ worker: workerId, message: m });
    if (p.waiting.size === 0) this.#settle(seq);
  }

  #settle(seq: number): void {
    const p = this.#pending.get(seq);
    if (!p) return;
    this.#pending.delete(seq);
    p.resolve(p.answers);
  }

  async #aggregatedMetrics(): Promise<{ contentType: string; body: string }> {
    // Request sequence numbers are negative so they never meet a table's.
    const seq = -++this.#requestSeq;
    const answers = await this.#request({ type: 'metrics', seq }, seq, this.#o.requestTimeoutMs ?? 2000);
    const all: WorkerMetrics[] = [await this.#o.metrics.registry.getMetricsAsJSON()];
    for (const a of answers) if (a.message.type === 'metrics') all.push(a.message.metrics);
    const registry = AggregatorRegistry.aggregate(all);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  /** Each worker's live tunnels and readiness, for /debug/workers and for tests of the spread. */
  async #workerStatus(): Promise<{ worker: number; pid: number | undefined; tunnels: number; notReady: string | null }[]> {
    const seq = -++this.#requestSeq;
    const answers = await this.#request({ type: 'status', seq }, seq, this.#o.requestTimeoutMs ?? 2000);
    const out: { worker: number; pid: number | undefined; tunnels: number; notReady: string | null }[] = [];
    for (const a of answers) {
      if (a.message.type !== 'status') continue;
      out.push({
        worker: a.worker,
        pid: this.#workers.get(a.worker)?.worker.process.pid,
        tunnels: a.message.tunnels,
        notReady: a.message.notReady,
      });
    }
    return out.sort((x, y) => x.worker - y.worker);
  }
}
