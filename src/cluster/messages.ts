// The IPC protocol between the primary (configuration, admin, aggregation) and its data-plane workers.
// Tables travel as plain JSON: a RoutingTable is plain data by design.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { LevelWithSilent } from 'pino';
import type { CertificateError } from '../dataplane.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import type { RoutingTable } from '../model/table.ts';

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** Everything a worker needs to build its Gateway. */
export interface WorkerInit {
  readonly httpAddr?: ListenAddress;
  readonly httpsAddr?: ListenAddress;
  readonly tunnelHost: string;
  readonly handshakeTimeoutMs: number;
  readonly defaultCertificate: { certPem: string; keyPem: string };
  readonly logLevel: LevelWithSilent;
  readonly version: string;
  readonly sweepIntervalMs?: number;
}

export type ToWorker =
  | { readonly type: 'init'; readonly init: WorkerInit }
  | { readonly type: 'table'; readonly seq: number; readonly table: RoutingTable }
  | { readonly type: 'metrics'; readonly seq: number }
  | { readonly type: 'status'; readonly seq: number }
  | { readonly type: 'stop'; readonly graceMs: number }
  | { readonly type: 'close-tunnels' };

export type ToPrimary =
  | { readonly type: 'listening'; readonly http?: number; readonly https?: number }
  | { readonly type: 'start-failed'; readonly message: string }
  | { readonly type: 'applied'; readonly seq: number; readonly certificateErrors: readonly CertificateError[] }
  | { readonly type: 'metrics'; readonly seq: number; readonly metrics: WorkerMetrics }
  | { readonly type: 'status'; readonly seq: number; readonly tunnels: number; readonly notReady: string | null };
