// The IPC protocol between the primary (configuration, admin, aggregation, the pod's connection limits) and its
// data-plane workers. Tables travel as plain JSON: a RoutingTable is plain data by design.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { LevelWithSilent } from 'pino';
import type { CertificateError } from '../dataplane.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import type { RoutingTable } from '../model/table.ts';
import type { NormalizeOptions } from '../proxy/normalize.ts';
import type { RelayInfo } from '../gateway.ts';
import type { RelayChoice } from '../proxy/native-relay.ts';
import type { RateAnswer, RateRequest } from './rate-budget.ts';
import type { SlotAnswer, SlotRelease, SlotRequest } from './slot-budget.ts';

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** Everything a worker needs to build its Gateway. Ports are concrete: the primary has probed them (never 0). */
export interface WorkerInit {
  readonly httpAddr?: ListenAddress;
  readonly httpsAddr?: ListenAddress;
  readonly tunnelHost: string;
  readonly handshakeTimeoutMs: number;
  readonly normalize?: NormalizeOptions;
  readonly defaultCertificate: { certPem: string; keyPem: string };
  readonly logLevel: LevelWithSilent;
  readonly version: string;
  readonly sweepIntervalMs?: number;
  /** --relay. */
  readonly relay?: RelayChoice;
  /** [issue 12] The edge flags; the affinity key as base64, the same in every worker of the pod. */
  readonly edge?: {
    readonly proxyProtocol?: boolean;
    readonly trustedProxies?: readonly string[];
    readonly affinityKey?: string;
    readonly redirectHttpsPort?: number;
    readonly sslPassthrough?: boolean;
  };
}

export type ToWorker =
  // The worker applies `table` (sequence `seq`) before it binds anything: nothing listens before it can route.
  | { readonly type: 'init'; readonly init: WorkerInit; readonly seq: number; readonly table: RoutingTable }
  | { readonly type: 'table'; readonly seq: number; readonly table: RoutingTable }
  | { readonly type: 'metrics'; readonly seq: number }
  | { readonly type: 'status'; readonly seq: number }
  | { readonly type: 'stop'; readonly graceMs: number }
  | { readonly type: 'close-tunnels' }
  | SlotAnswer
  | RateAnswer;

export type ToPrimary =
  /** Bound, with the table of sequence `seq` live. */
  | {
      readonly type: 'listening';
      readonly seq: number;
      readonly http?: number;
      readonly https?: number;
      readonly certificateErrors: readonly CertificateError[];
      readonly failedPorts: readonly number[];
    }
  /** Could not start; `code` is the WsgateError code and `causeCode` the system error's (EADDRINUSE, ...). */
  | {
      readonly type: 'start-failed';
      readonly message: string;
      readonly code?: string;
      readonly causeCode?: string;
      readonly causeMessage?: string;
    }
  /** Table `seq` is live; `failedPorts` are the tunnel ports this worker could not bind. */
  | {
      readonly type: 'applied';
      readonly seq: number;
      readonly certificateErrors: readonly CertificateError[];
      readonly failedPorts: readonly number[];
    }
  | { readonly type: 'metrics'; readonly seq: number; readonly metrics: WorkerMetrics }
  | ({ readonly type: 'status'; readonly seq: number; readonly tunnels: number; readonly notReady: string | null } & RelayInfo)
  | SlotRequest
  | SlotRelease
  | RateRequest;
