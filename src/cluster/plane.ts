// Chooses the data plane: one in-process Gateway, or a primary with N worker processes.
import type { LevelWithSilent } from 'pino';
import type { DataPlane } from '../dataplane.ts';
import { Gateway, type GatewayOptions } from '../gateway.ts';
import { WorkerPool } from './primary.ts';

export interface PlaneOptions extends GatewayOptions {
  /** Data-plane processes; 1 = serve in this process (default 1). */
  readonly workers?: number;
  /** The workers' log level (they log on their own). */
  readonly logLevel?: LevelWithSilent;
  readonly version?: string;
}

export function createDataPlane(o: PlaneOptions): DataPlane {
  const workers = o.workers ?? 1;
  if (workers <= 1) return new Gateway(o);
  return new WorkerPool({
    workers,
    log: o.log,
    metrics: o.metrics,
    ...(o.adminAddr ? { adminAddr: o.adminAddr } : {}),
    init: {
      ...(o.httpAddr ? { httpAddr: o.httpAddr } : {}),
      ...(o.httpsAddr ? { httpsAddr: o.httpsAddr } : {}),
      tunnelHost: o.tunnelHost,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      defaultCertificate: o.defaultCertificate,
      logLevel: o.logLevel ?? 'info',
      version: o.version ?? '0.0.0',
      ...(o.sweepIntervalMs ? { sweepIntervalMs: o.sweepIntervalMs } : {}),
    },
  });
}
