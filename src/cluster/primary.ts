// The primary of a multi-process wsgate: it owns configuration (files or the controller), the admin server, metric
// aggregation and the pod's connection limits; N forked workers own the data plane. Each worker binds the same
// ports with SO_REUSEPORT, so the kernel spreads new connections across them without a hop through this process.
//
// The numbered life of the pool:
//  1. start(): every data port is probed with an exclusive bind (port-probe.ts): a port anyone else holds fails the
//     start with WSGATE_ERR_LISTEN, as one process would; port 0 becomes one concrete port for every worker, held
//     (bound, not listening: port-probe.ts) until they have bound it. The admin server listens. No worker exists yet;
//  2. the first apply(): tunnel ports are probed the same way, then N workers are forked, each given the table with
//     its init message: a worker applies it, then binds. Nothing listens before it can route;
//  3. every later table: ports new to it are probed first (one held elsewhere is left out of what workers get, and
//     /readyz names it); it goes to every worker; apply() resolves when all have acknowledged it, or at its deadline,
//     when a worker that has not is killed and replaced;
//  4. a worker that dies is replaced and given the current table before it binds; its connection slots are freed,
//     its counters and histograms kept (retired-metrics.ts); the others' connections are untouched;
//  5. stop() tells every worker to drain and waits for them to exit (killing one that outlives the grace period).
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../cli/node-flags.ts';
import { AggregatorRegistry } from 'prom-client';
import { MonotonicCounters } from './monotonic.ts';
import { AdminServer } from '../admin/server.ts';
import type { CertificateError, DataPlane } from '../dataplane.ts';
import type { RelayInfo } from '../gateway.ts';
import { ErrorCodes, WsgateError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { EMPTY_TABLE, type RoutingTable } from '../model/table.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import type { ToPrimary, ToWorker, WorkerInit, WorkerMetrics } from './messages.ts';
import { holdPort, probePort, type PortHold } from './port-probe.ts';
import { RetiredMetrics } from './retired-metrics.ts';
import { Requests, type Answer } from './requests.ts';
import { PrimaryBudget } from './slot-budget.ts';
import { RateLimiter } from '../proxy/rate.ts';

export interface PoolOptions {
  /** Worker processes (≥ 1). */
  readonly workers: number;
  readonly init: WorkerInit;
  readonly log: Logger;
  /** The primary's own metrics (config reloads, ...), served together with the workers'. */
  readonly metrics: Metrics;
  readonly adminAddr?: ListenAddress;
  /** [requestTimeoutMs=2000] How long the primary waits for a worker's answer to a metrics or status request (ms). */
  readonly requestTimeoutMs?: number;
  /** [applyTimeoutMs=10000] How long a worker may take to acknowledge a table before it is replaced (ms). */
  readonly applyTimeoutMs?: number;
  /** [startTimeoutMs=30000] How long a worker may take from fork to listening before it is killed (ms). */
  readonly startTimeoutMs?: number;
  /** [metricsRefreshMs=5000] How often each worker's metrics snapshot is refreshed between scrapes (ms). */
  readonly metricsRefreshMs?: number;
  /** [retryPortsMs=5000] How often tunnel ports that could not be bound are tried again (ms). */
  readonly retryPortsMs?: number;
  /** Why the configuration source is not ready (e.g. informers not synced), checked before the workers. */
  readonly sourceNotReady?: () => string | undefined;
}

interface WorkerState {
  readonly worker: Worker;
  listening: boolean;
  /** The table sequence number this worker last acknowledged. */
  appliedSeq: number;
  startedAt: number;
  /** Tunnel ports this worker could not bind, as of its last acknowledgement. */
  failedPorts: readonly number[];
  /** Its last metrics snapshot. */
  metrics: WorkerMetrics | undefined;
  /** Killed by this primary (deadline missed): replaced at once, not treated as a crash. */
  killed: boolean;
}

/** A worker that dies this soon after starting is crashing: wait before replacing it (ms). */
const CRASH_WINDOW_MS = 5_000;
const RESPAWN_DELAY_MS = 1_000;

export class WorkerPool implements DataPlane {
  readonly #o: PoolOptions;
  readonly #log: Logger;
  readonly #workers = new Map<number, WorkerState>();
  readonly #requests = new Requests();
  readonly #admin: AdminServer | undefined;
  readonly #budget = new PrimaryBudget();
  /** [issue 12] The pod's request-rate buckets (rate-budget.ts). */
  readonly #rate = new RateLimiter();
  readonly #retired = new RetiredMetrics();
  readonly #applyTimeoutMs: number;
  #init: WorkerInit;
  /** The table as the source gave it (for /debug/routes and readiness). */
  #table: RoutingTable = EMPTY_TABLE;
  /** The table workers were given: without tunnels on ports held by another process. */
  #sent: RoutingTable = EMPTY_TABLE;
  #tableSeq = 0;
  #requestSeq = 0;
  /** Applies run one at a time (the source's and the port retries'). */
  #chain: Promise<unknown> = Promise.resolve();
  /** Tunnel ports held by another process (the probe failed), left out of #sent. */
  #blocked = new Map<number, Error>();
  #forked = false;
  /** Why the first workers could not start (a later apply tries again). */
  #startError: Error | undefined;
  #stopping = false;
  readonly #monotonic = new MonotonicCounters();
  /** beginDrain(): readiness false while the workers still accept. */
  #drainBegun = false;
  #adminAddress: AddressInfo | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Ports the OS chose for port 0, held from the probe until the first workers listen (port-probe.ts). */
  #holds: PortHold[] = [];

  constructor(o: PoolOptions) {
    this.#o = o;
    this.#init = o.init;
    this.#applyTimeoutMs = o.applyTimeoutMs ?? 10_000;
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

  /** Step 1. */
  async start(): Promise<void> {
    // Workers run with wsgate's V8 flags (node-flags.ts) whatever the primary was started with.
    const execArgv = [...process.execArgv.filter((a) => !NODE_FLAGS.includes(a)), ...NODE_FLAGS];
    // The worker's entry point next to this file: the TypeScript source, or the compiled JavaScript of dist/.
    const entry = import.meta.url.endsWith('.ts') ? './worker-main.ts' : './worker-main.js';
    cluster.setupPrimary({ exec: fileURLToPath(new URL(entry, import.meta.url)), args: [], execArgv });
    const probe = async (a: ListenAddress | undefined, what: string): Promise<ListenAddress | undefined> => {
      if (a === undefined) return undefined;
      const port = await probePort(a.host, a.port, what);
      if (a.port === 0) this.#holds.push(await holdPort(a.host, port, what));
      return { ...a, port };
    };
    const http = await probe(this.#init.httpAddr, 'http');
    const https = await probe(this.#init.httpsAddr, 'https');
    this.#init = { ...this.#init, ...(http ? { httpAddr: http } : {}), ...(https ? { httpsAddr: https } : {}) };
    if (this.#admin && this.#o.adminAddr) {
      this.#adminAddress = await this.#admin.listen(this.#o.adminAddr.host, this.#o.adminAddr.port);
    }
    const every = this.#o.metricsRefreshMs ?? 5000;
    if (every > 0) {
      this.#refreshTimer = setInterval(() => void this.#refreshMetrics(), every);
      this.#refreshTimer.unref();
    }
  }

  /** Steps 2 and 3. */
  apply(table: RoutingTable): Promise<{ certificateErrors: readonly CertificateError[] }> {
    return this.#enqueue(() => table);
  }

  /** `table` is read when the apply runs: a retry queued behind a new table re-sends that one, not an older one. */
  #enqueue(table: () => RoutingTable): Promise<{ certificateErrors: readonly CertificateError[] }> {
    const next = this.#chain.then(() => this.#applyNow(table()));
    this.#chain = next.catch(() => {});
    return next;
  }

  async #applyNow(table: RoutingTable): Promise<{ certificateErrors: readonly CertificateError[] }> {
    if (this.#stopping) return { certificateErrors: [] };
    const sent = await this.#withoutBlockedPorts(table);
    // Table, the workers' version of it and its number change together: a worker forked from here on gets this one.
    this.#table = table;
    this.#sent = sent;
    const seq = ++this.#tableSeq;
    let answers: Answer[];
    if (!this.#forked) {
      answers = await this.#startWorkers(seq);
    } else {
      answers = await this.#request({ type: 'table', seq, table: sent }, seq, this.#applyTimeoutMs, (late) => {
        for (const id of late) this.#kill(id, 'did not apply the table in time');
      });
    }
    this.#setRoutes(table);
    this.#scheduleRetry();
    // Every worker loads the same certificates: the first answer speaks for all.
    for (const a of answers) {
      if (a.message.type === 'applied' || a.message.type === 'listening') return { certificateErrors: a.message.certificateErrors };
    }
    return { certificateErrors: [] };
  }

  /** Probes the tunnel ports workers do not hold yet; the table without those held by another process. */
  async #withoutBlockedPorts(table: RoutingTable): Promise<RoutingTable> {
    const ours = new Set(this.#sent.tunnels.map((t) => t.port));
    const blocked = new Map<number, Error>();
    for (const port of new Set(table.tunnels.map((t) => t.port))) {
      if (ours.has(port)) continue;
      try {
        await probePort(this.#init.tunnelHost, port, 'tunnel');
      } catch (err) {
        blocked.set(port, err as Error);
        if (!this.#blocked.has(port)) {
          const e = err as WsgateError;
          this.#log.error({ code: e.code, host: this.#init.tunnelHost, port, err: e.cause }, 'tunnel port held by another process');
        }
      }
    }
    this.#blocked = blocked;
    return blocked.size === 0 ? table : { ...table, tunnels: table.tunnels.filter((t) => !blocked.has(t.port)) };
  }

  /** Step 2: N workers with the table; all must listen, or the start fails (and a later apply tries again). */
  async #startWorkers(seq: number): Promise<Answer[]> {
    const forks = Array.from({ length: this.#o.workers }, () => this.#fork());
    const results = await Promise.allSettled(forks.map((f) => f.listening));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      const err = failed.reason as Error;
      this.#startError = err;
      for (const f of forks) f.worker.process.kill('SIGKILL');
      throw err;
    }
    this.#startError = undefined;
    this.#forked = true;
    this.#releaseHolds();
    return forks.map((f, i) => ({ worker: f.worker.id, message: (results[i] as PromiseFulfilledResult<ToPrimary>).value })).filter(
      (a) => a.message.type === 'listening' && a.message.seq === seq,
    );
  }

  #releaseHolds(): void {
    for (const h of this.#holds) h.release();
    this.#holds = [];
  }

  get table(): RoutingTable {
    return this.#table;
  }

  notReady(): string | undefined {
    if (this.#stopping || this.#drainBegun) return 'draining';
    const source = this.#o.sourceNotReady?.();
    if (source !== undefined) return source;
    if (this.#tableSeq === 0) return 'no routing table yet';
    if (this.#startError) return `listeners not bound: ${this.#startError.message}`;
    let ready = 0;
    const failed = new Set(this.#blocked.keys());
    for (const w of this.#workers.values()) {
      if (w.listening && w.appliedSeq === this.#tableSeq) ready++;
      for (const p of w.failedPorts) failed.add(p);
    }
    if (ready < this.#o.workers) return `${ready} of ${this.#o.workers} workers ready`;
    // The same words as one process (gateway.ts): a port not bound by one worker is not bound.
    if (failed.size > 0) return `tunnel ports not bound: ${[...failed].sort((a, b) => a - b).join(', ')}`;
    return undefined;
  }

  addresses(): { http?: AddressInfo; https?: AddressInfo; admin?: AddressInfo } {
    const addr = (a: ListenAddress | undefined): AddressInfo | undefined =>
      a && a.port !== 0 ? { address: a.host, port: a.port, family: a.host.includes(':') ? 'IPv6' : 'IPv4' } : undefined;
    const http = addr(this.#init.httpAddr);
    const https = addr(this.#init.httpsAddr);
    return { ...(http ? { http } : {}), ...(https ? { https } : {}), ...(this.#adminAddress ? { admin: this.#adminAddress } : {}) };
  }

  async tunnels(): Promise<number> {
    let n = 0;
    for (const s of await this.#workerStatus()) n += s.tunnels;
    return n;
  }

  beginDrain(): void {
    this.#drainBegun = true;
  }

  /** Step 5. */
  async stop(graceMs = 0): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#refreshTimer);
    clearTimeout(this.#retryTimer);
    this.#releaseHolds();
    const exits = [...this.#workers.values()].map((w) => new Promise<void>((resolve) => w.worker.once('exit', () => resolve())));
    for (const w of this.#workers.values()) this.#send(w.worker, { type: 'stop', graceMs });
    // A worker that cannot drain (stopped, hung) must not keep the pod from stopping.
    const killer = setTimeout(() => {
      for (const id of this.#workers.keys()) this.#kill(id, 'did not stop in time');
    }, graceMs + this.#applyTimeoutMs);
    await Promise.all(exits);
    clearTimeout(killer);
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

  /** Tunnel ports held elsewhere, or that a worker could not bind, are tried again with the table re-sent. */
  #scheduleRetry(): void {
    const every = this.#o.retryPortsMs ?? 5000;
    if (every <= 0 || this.#retryTimer !== undefined || this.#stopping) return;
    let failing = this.#blocked.size > 0;
    for (const w of this.#workers.values()) if (w.failedPorts.length > 0) failing = true;
    if (!failing) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#enqueue(() => this.#table).catch((err: unknown) => this.#log.error({ err }, 'tunnel port retry failed'));
    }, every);
    this.#retryTimer.unref();
  }

  /** Forks a worker with the current table; `listening` resolves once it is bound with it. */
  #fork(): { worker: Worker; listening: Promise<ToPrimary> } {
    const worker = cluster.fork();
    // The IPC channel's errors (a write to a worker that just died) are its exit's business.
    worker.on('error', (err) => this.#log.debug({ worker: worker.id, err }, 'worker channel error'));
    const state: WorkerState = {
      worker,
      listening: false,
      appliedSeq: 0,
      startedAt: performance.now(),
      failedPorts: [],
      metrics: undefined,
      killed: false,
    };
    this.#workers.set(worker.id, state);
    const listening = new Promise<ToPrimary>((resolve, reject) => {
      let startFailure: Error | undefined;
      const deadline = setTimeout(() => this.#kill(worker.id, 'did not start in time'), this.#o.startTimeoutMs ?? 30_000);
      deadline.unref();
      worker.on('message', (m: ToPrimary) => {
        switch (m.type) {
          case 'listening':
            clearTimeout(deadline);
            state.listening = true;
            state.appliedSeq = m.seq;
            state.failedPorts = m.failedPorts;
            this.#log.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
            // A table applied while this one started: it gets that one now.
            if (m.seq < this.#tableSeq) this.#send(worker, { type: 'table', seq: this.#tableSeq, table: this.#sent });
            resolve(m);
            return;
          case 'start-failed':
            startFailure = startError(worker.id, m);
            return;
          case 'applied':
            state.appliedSeq = Math.max(state.appliedSeq, m.seq);
            state.failedPorts = m.failedPorts;
            this.#requests.answer(worker.id, m.seq, m);
            if (m.failedPorts.length > 0) this.#scheduleRetry();
            return;
          case 'metrics':
            state.metrics = m.metrics;
            this.#requests.answer(worker.id, m.seq, m);
            return;
          case 'status':
            this.#requests.answer(worker.id, m.seq, m);
            return;
          case 'acquire':
            this.#send(worker, {
              type: 'slot',
              id: m.id,
              granted: this.#workers.has(worker.id) && this.#budget.acquire(worker.id, m.routeId, m.clientIP, m.maxConnections, m.maxPerClient),
            });
            return;
          case 'release':
            this.#budget.release(worker.id, m.routeId, m.clientIP);
            return;
          case 'rate':
            this.#send(worker, { type: 'rate-answer', id: m.id, retryAfter: this.#rate.takeNow(m.routeId, m.clientIP, m.requestsPerSecond, m.burst) });
        }
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(deadline);
        if (!state.listening) reject(startFailure ?? new Error(`worker ${worker.id} exited before listening (code ${code}, signal ${signal})`));
        this.#workerOnExit(state, code, signal);
      });
    });
    // Not every caller waits for it (a replacement): a failure is logged in #workerOnExit.
    listening.catch(() => {});
    this.#send(worker, { type: 'init', init: this.#init, seq: this.#tableSeq, table: this.#sent });
    return { worker, listening };
  }

  /** Step 4. */
  #workerOnExit(state: WorkerState, code: number | null, signal: string | null): void {
    const id = state.worker.id;
    this.#workers.delete(id);
    // Its connections died with it: so did their slots. Its counters stay counted.
    const released = this.#budget.releaseWorker(id);
    if (state.metrics) this.#retired.add(state.metrics);
    // Whatever it was asked, it will not answer.
    this.#requests.forget(id);
    if (this.#stopping || !this.#forked) return;
    this.#log.error({ worker: id, code, signal, released }, 'worker exited; replacing it');
    const crashed = !state.killed && performance.now() - state.startedAt < CRASH_WINDOW_MS;
    const respawn = (): void => {
      if (this.#stopping) return;
      this.#fork().listening.catch((err: unknown) => this.#log.error({ err }, 'replacement worker failed to start'));
    };
    if (crashed) setTimeout(respawn, RESPAWN_DELAY_MS).unref();
    else respawn();
  }

  #kill(id: number, why: string): void {
    const state = this.#workers.get(id);
    if (!state) return;
    state.killed = true;
    this.#log.error({ worker: id, pid: state.worker.process.pid }, `worker ${why}; killing it`);
    // SIGKILL: a stopped (SIGSTOP) or hung process acts on nothing else.
    state.worker.process.kill('SIGKILL');
  }

  #send(worker: Worker, m: ToWorker): void {
    // A worker can die between the check and the write: the error goes to the callback (EPIPE), not to an
    // 'error' event nobody would catch. Its exit is handled in #workerOnExit.
    if (worker.isConnected()) worker.send(m, (err) => err && this.#log.debug({ worker: worker.id, err }, 'message to a worker lost'));
  }

  /** Sends a message to every listening worker and collects their answers (requests.ts). */
  #request(message: ToWorker, seq: number, timeoutMs: number, onTimeout?: (late: number[]) => void): Promise<Answer[]> {
    const asked: number[] = [];
    for (const w of this.#workers.values()) if (w.listening) asked.push(w.worker.id);
    const answers = this.#requests.ask(seq, asked, timeoutMs, onTimeout);
    for (const id of asked) this.#send(this.#workers.get(id)!.worker, message);
    return answers;
  }

  /** Asks every worker for a fresh snapshot; answers are kept per worker as they come (late ones too). */
  async #refreshMetrics(): Promise<void> {
    // Request sequence numbers are negative so they never meet a table's.
    const seq = -++this.#requestSeq;
    await this.#request({ type: 'metrics', seq }, seq, this.#o.requestTimeoutMs ?? 2000);
  }

  async #aggregatedMetrics(): Promise<{ contentType: string; body: string }> {
    await this.#refreshMetrics();
    // A worker that did not answer in time counts with its last snapshot: leaving it out would lower the counters.
    const all: WorkerMetrics[] = [await this.#o.metrics.registry.getMetricsAsJSON()];
    for (const w of this.#workers.values()) if (w.metrics) all.push(w.metrics);
    if (!this.#retired.empty) all.push(this.#retired.snapshot());
    const registry = AggregatorRegistry.aggregate(all);
    const body = this.#monotonic.apply(await registry.metrics());
    this.#monotonic.retain(body);
    return { contentType: registry.contentType, body };
  }

  /** Each worker's live tunnels and readiness, for /debug/workers and for tests of the spread. */
  async #workerStatus(): Promise<
    ({ worker: number; pid: number | undefined; tunnels: number; notReady: string | null; failedPorts: readonly number[] } & RelayInfo)[]
  > {
    const seq = -++this.#requestSeq;
    const answers = await this.#request({ type: 'status', seq }, seq, this.#o.requestTimeoutMs ?? 2000);
    const out: ({ worker: number; pid: number | undefined; tunnels: number; notReady: string | null; failedPorts: readonly number[] } & RelayInfo)[] = [];
    for (const a of answers) {
      if (a.message.type !== 'status') continue;
      const state = this.#workers.get(a.worker);
      out.push({
        worker: a.worker,
        pid: state?.worker.process.pid,
        tunnels: a.message.tunnels,
        notReady: a.message.notReady,
        failedPorts: state?.failedPorts ?? [],
        relay: a.message.relay,
        relayFallback: a.message.relayFallback,
        nativeTunnels: a.message.nativeTunnels,
      });
    }
    return out.sort((x, y) => x.worker - y.worker);
  }
}

/** A worker's start-failed message as the error it was: the stable code and the system error's code survive IPC. */
function startError(worker: number, m: Extract<ToPrimary, { type: 'start-failed' }>): Error {
  const cause = m.causeCode !== undefined || m.causeMessage !== undefined
    ? Object.assign(new Error(m.causeMessage ?? m.causeCode), m.causeCode !== undefined ? { code: m.causeCode } : {})
    : undefined;
  const codes: readonly string[] = Object.values(ErrorCodes);
  const options = cause ? { cause } : undefined;
  if (m.code !== undefined && codes.includes(m.code)) return new WsgateError(m.code as ErrorCode, m.message, options);
  return new Error(`worker ${worker} could not start: ${m.message}`, options);
}
