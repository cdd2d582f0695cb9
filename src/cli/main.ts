// The `wsgate` command. Each subcommand parses its own flags strictly: an unknown flag or a bad value exits 2 with
// a message that says what to change.
import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WsgateError } from '../errors.ts';
import { createLogger } from '../log/logger.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { loadConfig } from '../sources/files.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { snapshotFromObjects } from '../translate/objects.ts';
import { renderResult } from '../translate/render.ts';
import { translate } from '../translate/translate.ts';
import { BadFlagError, parseAddress, parseDuration, parseLogLevel, parseName } from './flags.ts';
import { serve } from './serve.ts';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `wsgate ${VERSION}: an ingress proxy for WebSockets and other long-lived connections

Usage:
  wsgate serve --config PATH [flags]     serve the objects in a YAML file or directory (watched for changes)
  wsgate translate -f PATH [flags]       print the routing table and statuses the objects translate to
  wsgate version                         print the version
  wsgate help                            this text

Flags of serve:
  --config PATH              YAML file or directory of Ingress, WebSocketRoute, TCPTunnel, Service,
                             EndpointSlice and Secret objects (required)
  --http-addr HOST:PORT      plain HTTP/WebSocket listener, or "off" (default 0.0.0.0:8080)
  --https-addr HOST:PORT     TLS listener, certificates chosen by SNI, or "off" (default 0.0.0.0:8443)
  --admin-addr HOST:PORT     /metrics, /healthz, /readyz, /debug/routes, or "off" (default 0.0.0.0:9090)
  --tunnel-host HOST         bind address of TCPTunnel listeners (default 0.0.0.0)
  --handshake-timeout DUR    time for a client's request head and a backend's handshake answer (default 10s)
  --drain-timeout DUR        on SIGTERM, time open tunnels get to finish before they are closed (default 30s)
  --default-cert FILE        PEM certificate for TLS clients no route matches (default: generated at start)
  --default-key FILE         its PEM private key
  --ingress-class NAME       IngressClass whose Ingresses are served (default wsgate)
  --log-level LEVEL          fatal, error, warn, info, debug, trace or silent (default info)

Flags of translate:
  -f, --file PATH            YAML file or directory
  --ingress-class NAME       (default wsgate)
`;

const SERVE_OPTIONS = {
  config: { type: 'string' },
  'http-addr': { type: 'string', default: '0.0.0.0:8080' },
  'https-addr': { type: 'string', default: '0.0.0.0:8443' },
  'admin-addr': { type: 'string', default: '0.0.0.0:9090' },
  'tunnel-host': { type: 'string', default: '0.0.0.0' },
  'handshake-timeout': { type: 'string', default: '10s' },
  'drain-timeout': { type: 'string', default: '30s' },
  'default-cert': { type: 'string' },
  'default-key': { type: 'string' },
  'ingress-class': { type: 'string', default: 'wsgate' },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

const TRANSLATE_OPTIONS = {
  file: { type: 'string', short: 'f' },
  'ingress-class': { type: 'string', default: 'wsgate' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new BadFlagError(`${(err as Error).message.split('\n')[0]} (see: wsgate ${command} --help)`);
  }
}

async function runServe(args: string[]): Promise<void> {
  const v = parse(args, SERVE_OPTIONS, 'serve');
  if (v.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!v.config) throw new BadFlagError('serve needs --config PATH: a YAML file or a directory of YAML files');
  if (Boolean(v['default-cert']) !== Boolean(v['default-key'])) {
    throw new BadFlagError('--default-cert and --default-key go together: give both, or neither to generate one');
  }
  const log = createLogger(parseLogLevel(v['log-level']));
  const metrics = createMetrics(VERSION);
  const tunnelHost = v['tunnel-host'];
  const handshakeTimeoutMs = parseDuration('handshake-timeout', v['handshake-timeout']);
  const drainMs = parseDuration('drain-timeout', v['drain-timeout']);
  if (handshakeTimeoutMs <= 0) throw new BadFlagError('--handshake-timeout must be more than 0');
  if (!existsSync(v.config)) {
    throw new BadFlagError(`--config=${v.config}: no such file or directory; give a YAML file or a directory of them`);
  }
  const defaultCertificate =
    v['default-cert'] && v['default-key']
      ? loadDefaultCertificate(v['default-cert'], v['default-key'])
      : generateSelfSigned({ commonName: 'wsgate default certificate' });
  const server = await serve({
    log,
    metrics,
    configPath: v.config,
    ingressClass: parseName('ingress-class', v['ingress-class']),
    httpAddr: parseAddress('http-addr', v['http-addr']),
    httpsAddr: parseAddress('https-addr', v['https-addr']),
    adminAddr: parseAddress('admin-addr', v['admin-addr']),
    tunnelHost,
    handshakeTimeoutMs,
    defaultCertificate,
  });
  const a = server.gateway.addresses();
  log.info({ http: a.http, https: a.https, admin: a.admin, version: VERSION }, 'wsgate serving');
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: closing every tunnel now');
      void server.gateway.registry.closeAll();
      return;
    }
    stopping = true;
    log.info({ signal, tunnels: server.gateway.registry.size, drainMs }, 'draining');
    void server.stop(drainMs).then(() => {
      log.info('stopped');
      log.flush();
      process.exitCode = 0;
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Reads and checks --default-cert/--default-key: a file that cannot be used is a bad flag, not a crash. */
function loadDefaultCertificate(certFile: string, keyFile: string): { certPem: string; keyPem: string } {
  const read = (flag: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new BadFlagError(`--${flag}=${file}: cannot read it (${(err as Error).message})`);
    }
  };
  const pem = { certPem: read('default-cert', certFile), keyPem: read('default-key', keyFile) };
  try {
    // Also refuses a key that does not belong to the certificate.
    createSecureContext({ cert: pem.certPem, key: pem.keyPem });
  } catch (err) {
    throw new BadFlagError(
      `--default-cert=${certFile} --default-key=${keyFile}: not a usable PEM certificate and key (${(err as Error).message})`,
    );
  }
  return pem;
}

async function runTranslate(args: string[]): Promise<void> {
  const v = parse(args, TRANSLATE_OPTIONS, 'translate');
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
        throw new BadFlagError(`unknown command "${command}": use serve, translate, version or help`);
    }
  } catch (err) {
    if (err instanceof BadFlagError) {
      process.stderr.write(`wsgate: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof WsgateError) {
      const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
      process.stderr.write(`wsgate: ${err.code}: ${err.message}${cause}\n`);
      process.exit(1);
    }
    throw err;
  }
}
