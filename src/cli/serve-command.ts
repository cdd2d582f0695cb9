// `wsgate serve --config PATH [flags]`: the flags and the process around serve() (serve.ts): logger, metrics,
// signals. Loaded by main.ts only when this command runs.
import { existsSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { createLogger } from '../log/logger.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { BadFlagError, parseFlags } from './flags.ts';
import { LISTENER_OPTIONS, LISTENER_USAGE, parseListenerFlags } from './listener-flags.ts';
import { serve } from './serve.ts';

const SERVE_OPTIONS = {
  config: { type: 'string' },
  'allow-invalid-config': { type: 'boolean' },
  // The listener, admin and log flags, shared with `controller` (listener-flags.ts).
  ...LISTENER_OPTIONS,
} as const satisfies ParseArgsConfig['options'];

export const SERVE_USAGE = `Usage: wsgate serve --config PATH [flags]

Serves the Ingress, WebSocketRoute and TCPTunnel objects in a YAML file or directory, with the Services,
EndpointSlices and Secrets they name. The files are watched: a change that validates is applied without dropping
open connections; one that does not is logged and the last good configuration keeps serving.

Flags:
  --config PATH              YAML file or directory of Ingress, WebSocketRoute, TCPTunnel, Service,
                             EndpointSlice and Secret objects (required)
  --allow-invalid-config     start even if the configuration has problems, serving the valid objects
                             (default: refuse to start, exit 2, listing every problem)
${LISTENER_USAGE}
Example: wsgate serve --config examples/quickstart/ --http-addr 127.0.0.1:8080
`;

export async function runServe(args: string[], o: { version: string }): Promise<void> {
  const v = parseFlags(args, SERVE_OPTIONS, 'serve');
  if (v.help) {
    process.stdout.write(SERVE_USAGE);
    return;
  }
  if (!v.config) throw new BadFlagError('serve needs --config PATH: a YAML file or a directory of YAML files');
  if (!existsSync(v.config)) {
    throw new BadFlagError(`--config=${v.config}: no such file or directory; give a YAML file or a directory of them`);
  }
  const f = parseListenerFlags(v);
  const workers = f.workers;
  const log = createLogger(f.logLevel);
  const server = await serve({
    log,
    metrics: createMetrics(o.version),
    configPath: v.config,
    allowInvalidConfig: v['allow-invalid-config'] === true,
    ingressClass: f.ingressClass,
    ...(f.httpAddr ? { httpAddr: f.httpAddr } : {}),
    ...(f.httpsAddr ? { httpsAddr: f.httpsAddr } : {}),
    ...(f.adminAddr ? { adminAddr: f.adminAddr } : {}),
    tunnelHost: f.tunnelHost,
    handshakeTimeoutMs: f.handshakeTimeoutMs,
    normalize: f.normalize,
    defaultCertificate: f.defaultCertificate,
    workers,
    logLevel: f.logLevel,
    version: o.version,
    watchIngressWithoutClass: f.watchIngressWithoutClass,
    edge: f.edge,
    relay: f.relay,
  });
  if (f.affinityKeyGenerated) log.info('no --affinity-key-file: affinity cookies use a key made at start, known to this process group only');
  const a = server.plane.addresses();
  log.info({ http: a.http, https: a.https, admin: a.admin, workers, version: o.version }, 'wsgate serving');
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: closing every tunnel now');
      void server.plane.closeTunnels();
      return;
    }
    stopping = true;
    void (async () => {
      // Readiness false at once; the listeners keep accepting for the delay, while load balancers notice.
      server.plane.beginDrain();
      log.info({ signal, tunnels: await server.plane.tunnels(), drainDelayMs: f.drainDelayMs, drainMs: f.drainMs }, 'draining');
      if (f.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, f.drainDelayMs));
      await server.stop(f.drainMs);
      log.info('stopped');
      log.flush();
      process.exitCode = 0;
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
