// Starts a real Gateway (the whole data plane) on 127.0.0.1 with ephemeral ports, for proxy tests.
import type { AddressInfo } from 'node:net';
import { Gateway, type EdgeOptions } from '../../src/gateway.ts';
import { silentLogger, type Logger } from '../../src/log/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import type { RoutingTable } from '../../src/model/table.ts';
import { metricSum } from './metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly metrics: Metrics;
  readonly http: AddressInfo;
  readonly https: AddressInfo;
  readonly admin: AddressInfo;
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string;
  /** The value of one sample of a metric, 0 when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate test default' });

export async function startGateway(
  t: RoutingTable,
  o: { handshakeTimeoutMs?: number; sweepIntervalMs?: number; log?: Logger; pruneAfterMs?: number; edge?: EdgeOptions; host?: string } = {},
): Promise<TestGateway> {
  const metrics = createMetrics('test', { defaultMetrics: false });
  const gateway = new Gateway({
    log: o.log ?? silentLogger(),
    metrics,
    httpAddr: { host: o.host ?? '127.0.0.1', port: 0 },
    httpsAddr: { host: o.host ?? '127.0.0.1', port: 0 },
    adminAddr: { host: '127.0.0.1', port: 0 },
    tunnelHost: o.host ?? '127.0.0.1',
    ...(o.edge ? { edge: o.edge } : {}),
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    defaultCertificate,
    ...(o.sweepIntervalMs ? { sweepIntervalMs: o.sweepIntervalMs } : {}),
    // Deleted routes' series go at the next sweep by default (tests of pruning need not wait for scrapes).
    pruneAfterMs: o.pruneAfterMs ?? 0,
  });
  await gateway.start();
  await gateway.apply(t);
  const a = gateway.addresses();
  return {
    gateway,
    metrics,
    http: a.http!,
    https: a.https!,
    admin: a.admin!,
    wsUrl: `ws://127.0.0.1:${a.http!.port}`,
    metric: (name, labels) => metricSum(metrics, name, labels),
    close: () => gateway.stop(0),
  };
}
