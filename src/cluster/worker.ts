// A data-plane worker process: one Gateway, listeners bound with SO_REUSEPORT so that the kernel spreads new
// connections across workers, driven entirely by messages from the primary.
//
// The life of a worker:
//  1. `init` brings the options AND the current table: the worker applies the table, then binds (nothing listens
//     before it can route), then says `listening`. A failure says `start-failed` with its stable code and exits;
//  2. tables, metrics and status requests are handled in the order they came, a stop after them;
//  3. slot and rate answers (connection limits and request rates held by the primary) and `close-tunnels` skip that
//     queue: a connection waiting for a slot or a token, or a second SIGTERM, must not wait behind a drain.
import cluster from 'node:cluster';
import { WsgateError } from '../errors.ts';
import { Gateway, type EdgeOptions } from '../gateway.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { createMetrics, type Metrics } from '../metrics/metrics.ts';
import { freezeTable, type RoutingTable } from '../model/table.ts';
import { ConnectionLimits } from '../proxy/limits.ts';
import { RateLimiter } from '../proxy/rate.ts';
import { WorkerRate } from './rate-budget.ts';
import type { ToPrimary, ToWorker, WorkerInit } from './messages.ts';
import { WorkerBudget } from './slot-budget.ts';

function send(m: ToPrimary): boolean {
  if (!process.connected) return false;
  // A primary gone between the check and the write: the error goes to the callback, and the worker exits on
  // 'disconnect' (cluster).
  process.send?.(m, undefined, {}, () => {});
  return true;
}

interface Running {
  readonly gateway: Gateway;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** Steps 1: apply, bind, report. Exits the process when it cannot start. */
async function start(init: WorkerInit, seq: number, table: RoutingTable, budget: WorkerBudget, rate: WorkerRate): Promise<Running> {
  const log = createLogger(init.logLevel).child({ worker: cluster.worker?.id });
  // The primary owns configuration, leadership and build metrics: a worker exporting them too would be aggregated
  // with the primary's values (a never-set gauge reads 0).
  const metrics = createMetrics(init.version, { worker: true });
  const gateway = new Gateway({
    log,
    metrics,
    ...(init.httpAddr ? { httpAddr: init.httpAddr } : {}),
    ...(init.httpsAddr ? { httpsAddr: init.httpsAddr } : {}),
    tunnelHost: init.tunnelHost,
    handshakeTimeoutMs: init.handshakeTimeoutMs,
    ...(init.normalize ? { normalize: init.normalize } : {}),
    defaultCertificate: init.defaultCertificate,
    reusePort: true,
    // A failed tunnel port is the primary's to retry: it probes before any worker binds with SO_REUSEPORT.
    retryPortsMs: 0,
    limits: new ConnectionLimits(budget),
    ...(init.sweepIntervalMs ? { sweepIntervalMs: init.sweepIntervalMs } : {}),
    ...(init.relay ? { relay: init.relay } : {}),
    // [issue 12] Rates are the pod's (the primary's buckets); the affinity key is the primary's, in every worker.
    rate: new RateLimiter(rate),
    ...(init.edge ? { edge: edgeOptions(init.edge) } : {}),
  });
  try {
    const { certificateErrors } = await gateway.apply(freezeTable(table));
    await gateway.start();
    const a = gateway.addresses();
    send({
      type: 'listening',
      seq,
      ...(a.http ? { http: a.http.port } : {}),
      ...(a.https ? { https: a.https.port } : {}),
      certificateErrors,
      failedPorts: gateway.l4.failedPorts(),
    });
  } catch (err) {
    const e = err as Error;
    const cause = e.cause as NodeJS.ErrnoException | undefined;
    const failed: ToPrimary = {
      type: 'start-failed',
      message: e.message,
      ...(err instanceof WsgateError ? { code: err.code } : {}),
      ...(cause?.code !== undefined ? { causeCode: cause.code } : {}),
      ...(cause?.message !== undefined ? { causeMessage: cause.message } : {}),
    };
    log.flush();
    // The message must leave before the process does.
    await new Promise<void>((resolve) => (process.connected ? process.send?.(failed, undefined, {}, () => resolve()) : resolve()));
    process.exit(1);
  }
  return { gateway, metrics, log };
}

/** [issue 12] The init's edge options, the affinity key back to bytes. */
function edgeOptions(e: NonNullable<WorkerInit['edge']>): EdgeOptions {
  const { affinityKey, ...rest } = e;
  return { ...rest, ...(affinityKey !== undefined ? { affinityKey: Buffer.from(affinityKey, 'base64') } : {}) };
}

async function handle(r: Running, m: ToWorker): Promise<void> {
  const { gateway } = r;
  switch (m.type) {
    case 'table': {
      const { certificateErrors } = await gateway.apply(freezeTable(m.table));
      send({ type: 'applied', seq: m.seq, certificateErrors, failedPorts: gateway.l4.failedPorts() });
      return;
    }
    case 'metrics':
      send({ type: 'metrics', seq: m.seq, metrics: await r.metrics.registry.getMetricsAsJSON() });
      return;
    case 'status':
      send({ type: 'status', seq: m.seq, tunnels: gateway.registry.size, notReady: gateway.notReady() ?? null, ...gateway.relayInfo() });
      return;
    case 'stop':
      await gateway.stop(m.graceMs);
      r.log.flush();
      process.disconnect();
      return;
    case 'init':
    case 'close-tunnels':
    case 'slot':
    case 'rate-answer':
      return;
  }
}

/** Called in a worker process: waits for its init message, then serves. */
export function runWorker(): void {
  // The primary decides when workers stop; a signal sent to the whole process group is its business.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  const budget = new WorkerBudget((m) => send(m));
  const rate = new WorkerRate((m) => send(m));
  process.on('disconnect', () => {
    budget.disconnected();
    rate.disconnected();
  });
  let running: Running | undefined;
  // Messages are handled in order: the start first, a table applied before a later one, a stop after all of them.
  let queue: Promise<Running | undefined> = Promise.resolve(undefined);
  process.on('message', (m: ToWorker) => {
    if (m.type === 'slot') return budget.answer(m);
    if (m.type === 'rate-answer') return rate.answer(m);
    if (m.type === 'close-tunnels') return void running?.gateway.closeTunnels();
    queue = queue
      .then(async (r) => {
        if (m.type === 'init') return r ?? (running = await start(m.init, m.seq, m.table, budget, rate));
        if (r) await handle(r, m);
        return r;
      })
      .catch((err: unknown) => {
        running?.log.error({ err }, 'worker message failed');
        return running;
      });
  });
}
