// The `wsgate` command. Each subcommand parses its own flags strictly: an unknown flag or a bad value exits 2 with
// a message that says what to change.
import { existsSync, readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { ErrorCodes, WsgateError } from '../errors.ts';
import { createLogger } from '../log/logger.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { loadConfig } from '../sources/files.ts';
import { snapshotFromObjects } from '../translate/objects.ts';
import { renderResult } from '../translate/render.ts';
import { translate } from '../translate/translate.ts';
import { BadFlagError, parseFlags, parseName } from './flags.ts';
import { LISTENER_OPTIONS, LISTENER_USAGE, parseListenerFlags } from './listener-flags.ts';
import { serve } from './serve.ts';
import { CONTROLLER_USAGE, runController } from '../controller/cli.ts';
import { SIDECAR_USAGE, runSidecar } from '../sidecar/cli.ts';
import { WEBHOOK_USAGE, runWebhook } from '../webhook/cli.ts';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `wsgate ${VERSION}: an ingress proxy for WebSockets and other long-lived connections

Usage:
  wsgate serve --config PATH [flags]     serve the objects in a YAML file or directory (watched for changes)
  wsgate controller [flags]              serve the Ingresses, WebSocketRoutes and TCPTunnels of a Kubernetes
                                         cluster, and write their status
  wsgate sidecar --upstream HOST:PORT [flags]
                                         proxy one app in its pod: one route, readiness from the app's port
  wsgate webhook --image IMAGE [flags]   inject the sidecar into pods annotated wsgate.io/inject: "true"
  wsgate translate -f PATH [flags]       print the routing table and statuses the objects translate to
  wsgate version                         print the version
  wsgate help                            this text

Flags of serve:
  --config PATH              YAML file or directory of Ingress, WebSocketRoute, TCPTunnel, Service,
                             EndpointSlice and Secret objects (required)
  --allow-invalid-config     start even if the configuration has problems, serving the valid objects
                             (default: refuse to start, exit 2, listing every problem)
${LISTENER_USAGE}
Flags of controller: those of serve except --config, and
${CONTROLLER_USAGE}
Flags of sidecar:
${SIDECAR_USAGE}
Flags of webhook:
${WEBHOOK_USAGE}
Flags of translate:
  -f, --file PATH            YAML file or directory
  --ingress-class NAME       (default wsgate)
`;

const SERVE_OPTIONS = {
  config: { type: 'string' },
  'allow-invalid-config': { type: 'boolean' },
  // The listener, admin and log flags, shared with `controller` (listener-flags.ts).
  ...LISTENER_OPTIONS,
} as const satisfies ParseArgsConfig['options'];

const TRANSLATE_OPTIONS = {
  file: { type: 'string', short: 'f' },
  'ingress-class': { type: 'string', default: 'wsgate' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

async function runServe(args: string[]): Promise<void> {
  const v = parseFlags(args, SERVE_OPTIONS, 'serve');
  if (v.help) {
    process.stdout.write(USAGE);
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
    metrics: createMetrics(VERSION),
    configPath: v.config,
    allowInvalidConfig: v['allow-invalid-config'] === true,
    ingressClass: f.ingressClass,
    ...(f.httpAddr ? { httpAddr: f.httpAddr } : {}),
    ...(f.httpsAddr ? { httpsAddr: f.httpsAddr } : {}),
    ...(f.adminAddr ? { adminAddr: f.adminAddr } : {}),
    tunnelHost: f.tunnelHost,
    handshakeTimeoutMs: f.handshakeTimeoutMs,
    defaultCertificate: f.defaultCertificate,
    workers,
    logLevel: f.logLevel,
    version: VERSION,
  });
  const a = server.plane.addresses();
  log.info({ http: a.http, https: a.https, admin: a.admin, workers, version: VERSION }, 'wsgate serving');
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: closing every tunnel now');
      void server.plane.closeTunnels();
      return;
    }
    stopping = true;
    void (async () => {
      log.info({ signal, tunnels: await server.plane.tunnels(), drainMs: f.drainMs }, 'draining');
      await server.stop(f.drainMs);
      log.info('stopped');
      log.flush();
      process.exitCode = 0;
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function runTranslate(args: string[]): Promise<void> {
  const v = parseFlags(args, TRANSLATE_OPTIONS, 'translate');
  if (v.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!v.file) throw new BadFlagError('translate needs -f PATH: a YAML file or a directory of YAML files');
  const { objects, problems } = await loadConfig(v.file);
  for (const p of problems) {
    const where = [p.file, p.kind, p.namespace && p.name ? `${p.namespace}/${p.name}` : p.name, p.field].filter(Boolean).join(' ');
    process.stderr.write(`${p.code}: ${where}: ${p.message}\n`);
  }
  const result = translate(snapshotFromObjects(objects, parseName('ingress-class', v['ingress-class'])));
  process.stdout.write(renderResult(result));
  if (problems.length > 0) process.exitCode = 1;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await runServe(rest);
      case 'translate':
        return await runTranslate(rest);
      case 'controller':
        return await runController(rest, { usage: USAGE, version: VERSION });
      case 'sidecar':
        return await runSidecar(rest, { usage: USAGE, version: VERSION });
      case 'webhook':
        return await runWebhook(rest, { usage: USAGE, version: VERSION });
      case 'version':
      case '--version':
        process.stdout.write(`${VERSION}\n`);
        return;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return;
      default:
        throw new BadFlagError(`unknown command "${command}": use serve, controller, sidecar, webhook, translate, version or help`);
    }
  } catch (err) {
    if (err instanceof BadFlagError) {
      process.stderr.write(`wsgate: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof WsgateError) {
      const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
      process.stderr.write(`wsgate: ${err.code}: ${err.message}${cause}\n`);
      // A configuration that cannot start is bad input, like a bad flag.
      process.exit(err.code === ErrorCodes.CONFIG_INVALID ? 2 : 1);
    }
    throw err;
  }
}
