// A data-plane worker process: one Gateway, listeners bound with SO_REUSEPORT so that the kernel spreads new
// connections across workers, driven entirely by messages from the primary.
import cluster from 'node:cluster';
import { Gateway } from '../gateway.ts';
import { createLogger } from '../log/logger.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { freezeTable } from '../model/table.ts';
import type { ToPrimary, ToWorker, WorkerInit } from './messages.ts';

function send(m: ToPrimary): void {
  process.send?.(m);
}

async function run(init: WorkerInit): Promise<void> {
  const log = createLogger(init.logLevel).child({ worker: cluster.worker?.id });
  const metrics = createMetrics(init.version);
  const gateway = new Gateway({
    log,
    metrics,
    ...(init.httpAddr ? { httpAddr: init.httpAddr } : {}),
    ...(init.httpsAddr ? { httpsAddr: init.httpsAddr } : {}),
    tunnelHost: init.tunnelHost,
    handshakeTimeoutMs: init.handshakeTimeoutMs,
    defaultCertificate: init.defaultCertificate,
    reusePort: true,
    ...(init.sweepIntervalMs ? { sweepIntervalMs: init.sweepIntervalMs } : {}),
  });
  try {
    await gateway.start();
  } catch (err) {
    send({ type: 'start-failed', message: (err as Error).message });
    process.exit(1);
  }
  const a = gateway.addresses();
  send({ type: 'listening', ...(a.http ? { http: a.http.port } : {}), ...(a.https ? { https: a.https.port } : {}) });

  // Messages are handled in order: a table applied before a later one, a stop after both.
  let queue: Promise<void> = Promise.resolve();
  process.on('message', (m: ToWorker) => {
    queue = queue.then(() => handle(m)).catch((err: unknown) => log.error({ err }, 'worker message failed'));
  });

  async function handle(m: ToWorker): Promise<void> {
    switch (m.type) {
      case 'table': {
        const { certificateErrors } = await gateway.apply(freezeTable(m.table));
        send({ type: 'applied', seq: m.seq, certificateErrors });
        return;
      }
      case 'metrics':
        send({ type: 'metrics', seq: m.seq, metrics: await metrics.registry.getMetricsAsJSON() });
        return;
      case 'status':
        send({ type: 'status', seq: m.seq, tunnels: gateway.registry.size, notReady: gateway.notReady() ?? null });
        return;
      case 'close-tunnels':
        // Not queued behind a stop that is waiting for tunnels to drain.
        return;
      case 'stop':
        await gateway.stop(m.graceMs);
        log.flush();
        process.disconnect();
        return;
      case 'init':
        return;
    }
  }
  // A second signal must not wait in the queue behind the drain it cuts short.
  process.on('message', (m: ToWorker) => {
    if (m.type === 'close-tunnels') void gateway.closeTunnels();
  });
}

/** Called in a worker process: waits for its init message, then serves. */
export function runWorker(): void {
  // The primary decides when workers stop; a signal sent to the whole process group is its business.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  process.once('message', (m: ToWorker) => {
    if (m.type === 'init') void run(m.init);
  });
}
