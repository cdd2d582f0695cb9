// `wsgate sidecar`: the data plane in front of one app in the same pod. A Gateway with a one-route table
// (table.ts), readiness from the app's port (probe.ts), and a drain in three steps on SIGTERM (drain()).
import type { AddressInfo } from 'node:net';
import { Gateway } from '../gateway.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Endpoint, Policy } from '../model/table.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { UpstreamProbe } from './probe.ts';
import { sidecarTable } from './table.ts';

export interface SidecarOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The route label in metrics and logs. */
  readonly name: string;
  readonly upstream: Endpoint;
  readonly listen: ListenAddress;
  /** Admin server (/metrics, /healthz, /readyz, /debug/routes); undefined = none. */
  readonly adminAddr?: ListenAddress;
  readonly policy: Policy;
  /** Milliseconds for a client's request head and the app's answer to a handshake. */
  readonly handshakeTimeoutMs: number;
  /** Milliseconds between two probes of the upstream port. */
  readonly probeIntervalMs: number;
  /** Milliseconds between SIGTERM and closing the listener: time for the endpoint to leave the Service. */
  readonly drainDelayMs: number;
  /** Milliseconds open tunnels get, once the listener is closed, to end on their own before they are closed. */
  readonly drainTimeoutMs: number;
}

export interface Sidecar {
  readonly gateway: Gateway;
  readonly probe: UpstreamProbe;
  addresses(): { listen: AddressInfo; admin?: AddressInfo };
  /**
   * The graceful stop:
   *  1. readiness false now (`draining`), the listener still accepts: until the endpoint has left every
   *     Service's EndpointSlice, clients may still be sent here;
   *  2. after drainDelayMs the listener closes: new connections are refused;
   *  3. open tunnels get drainTimeoutMs to end on their own; the rest are closed (outcome `shutdown`).
   * A second call (a second signal) skips what is left of the delay and closes every tunnel now.
   */
  drain(): Promise<void>;
}

export async function startSidecar(o: SidecarOptions): Promise<Sidecar> {
  const log = o.log.child({ component: 'sidecar' });
  const probe = new UpstreamProbe({ upstream: o.upstream, intervalMs: o.probeIntervalMs, log });
  let draining = false;
  const gateway = new Gateway({
    log: o.log,
    metrics: o.metrics,
    httpAddr: o.listen,
    ...(o.adminAddr ? { adminAddr: o.adminAddr } : {}),
    tunnelHost: o.listen.host,
    handshakeTimeoutMs: o.handshakeTimeoutMs,
    // No TLS listener; the Gateway wants a default certificate all the same.
    defaultCertificate: generateSelfSigned({ commonName: 'wsgate sidecar' }),
    sourceNotReady: () => (draining ? 'draining' : probe.notReady()),
  });
  await gateway.apply(sidecarTable({ name: o.name, upstream: o.upstream, policy: o.policy }));
  await gateway.start();
  await probe.start();

  let stopped: Promise<void> | undefined;
  let skipDelay: (() => void) | undefined;
  const drain = (): Promise<void> => {
    if (stopped) {
      // Second call: no more waiting.
      skipDelay?.();
      void gateway.closeTunnels();
      return stopped;
    }
    draining = true;
    stopped = (async () => {
      log.info({ tunnels: gateway.tunnels(), drainDelayMs: o.drainDelayMs, drainTimeoutMs: o.drainTimeoutMs }, 'draining');
      if (o.drainDelayMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, o.drainDelayMs);
          skipDelay = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      log.info({ tunnels: gateway.tunnels() }, 'listener closing: new connections refused');
      const closing = gateway.stop(o.drainTimeoutMs);
      probe.stop();
      await closing;
      log.info('stopped');
    })();
    return stopped;
  };

  return {
    gateway,
    probe,
    addresses() {
      const a = gateway.addresses();
      if (!a.http) throw new Error('sidecar listener not bound');
      return { listen: a.http, ...(a.admin ? { admin: a.admin } : {}) };
    },
    drain,
  };
}
