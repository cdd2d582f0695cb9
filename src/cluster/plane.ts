// Chooses the data plane: one in-process Gateway, or a primary with N worker processes.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { LevelWithSilent } from 'pino';
import type { DataPlane } from '../dataplane.ts';
import { Gateway, type EdgeOptions, type GatewayOptions } from '../gateway.ts';
import type { WorkerInit } from './messages.ts';
import { WorkerPool } from './primary.ts';

export interface PlaneOptions extends GatewayOptions {
  /** Data-plane processes; 1 = serve in this process (default 1). */
  readonly workers?: number;
  /** The workers' log level (they log on their own). */
  readonly logLevel?: LevelWithSilent;
  readonly version?: string;
  /** [applyTimeoutMs=10000] With workers: how long one may take to acknowledge a table before it is replaced (ms). */
  readonly applyTimeoutMs?: number;
}

export function createDataPlane(o: PlaneOptions): DataPlane {
  const workers = o.workers ?? 1;
  if (workers <= 1) return new Gateway(o);
  return new WorkerPool({
    workers,
    log: o.log,
    metrics: o.metrics,
    ...(o.sourceNotReady ? { sourceNotReady: o.sourceNotReady } : {}),
    ...(o.adminAddr ? { adminAddr: o.adminAddr } : {}),
    ...(o.applyTimeoutMs === undefined ? {} : { applyTimeoutMs: o.applyTimeoutMs }),
    init: {
      ...(o.httpAddr ? { httpAddr: o.httpAddr } : {}),
      ...(o.httpsAddr ? { httpsAddr: o.httpsAddr } : {}),
      tunnelHost: o.tunnelHost,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      ...(o.normalize ? { normalize: o.normalize } : {}),
      defaultCertificate: o.defaultCertificate,
      logLevel: o.logLevel ?? 'info',
      version: o.version ?? '0.0.0',
      ...(o.sweepIntervalMs ? { sweepIntervalMs: o.sweepIntervalMs } : {}),
      ...(o.relay ? { relay: o.relay } : {}),
      ...(o.edge ? { edge: edgeInit(o.edge) } : {}),
    },
  });
}

/** [issue 12] The edge options as a worker's init carries them: the key as base64 (IPC is JSON). */
function edgeInit(e: EdgeOptions): NonNullable<WorkerInit['edge']> {
  const { affinityKey, ...rest } = e;
  return { ...rest, ...(affinityKey !== undefined ? { affinityKey: affinityKey.toString('base64') } : {}) };
}

/**
 * The default of --workers: the cores this process may use. In a container with a CPU limit that is the limit
 * (cgroup v2 `cpu.max`, rounded up), not the node's cores: a pod limited to 2 CPUs on a 64-core node runs 2 workers.
 */
export function defaultWorkers(cpuMaxPath = '/sys/fs/cgroup/cpu.max'): number {
  const cores = availableParallelism();
  try {
    const [quota, period] = readFileSync(cpuMaxPath, 'utf8').trim().split(/\s+/);
    if (quota && quota !== 'max' && period) return Math.max(1, Math.min(cores, Math.ceil(Number(quota) / Number(period))));
  } catch {
    // No cgroup v2 limit readable: every available core.
  }
  return cores;
}
