// The flags `serve` and `controller` share: listeners, admin, TLS default certificate, timeouts, log level,
// IngressClass. One table and one parser, so that both commands take the same flags with the same defaults.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ParseArgsConfig } from 'node:util';
import type { ListenAddress } from '../proxy/l7.ts';
import type { NormalizeOptions } from '../proxy/normalize.ts';
import { generateSelfSigned } from '../tls/selfsigned.ts';
import { defaultWorkers } from '../cluster/plane.ts';
import { BadFlagError, parseAddress, parseCount, parseDuration, parseLogLevel, parseName } from './flags.ts';
import type { LOG_LEVELS } from '../log/logger.ts';
import type { EdgeOptions } from '../gateway.ts';
import { generatedAffinityKey } from '../proxy/affinity.ts';
import { normalizeCidr } from '../translate/edge-policy.ts';
import { RELAY_CHOICES, type RelayChoice } from '../proxy/native-relay.ts';

export const LISTENER_OPTIONS = {
  'http-addr': { type: 'string', default: '0.0.0.0:8080' },
  'https-addr': { type: 'string', default: '0.0.0.0:8443' },
  'admin-addr': { type: 'string', default: '0.0.0.0:9090' },
  'tunnel-host': { type: 'string', default: '0.0.0.0' },
  'handshake-timeout': { type: 'string', default: '10s' },
  'drain-delay': { type: 'string', default: '0s' },
  'drain-timeout': { type: 'string', default: '30s' },
  'default-cert': { type: 'string' },
  'default-key': { type: 'string' },
  'ingress-class': { type: 'string', default: 'wsgate' },
  'watch-ingress-without-class': { type: 'boolean' },
  'proxy-protocol': { type: 'boolean' },
  'trusted-proxies': { type: 'string' },
  'affinity-key-file': { type: 'string' },
  'redirect-https-port': { type: 'string', default: '443' },
  'enable-ssl-passthrough': { type: 'boolean' },
  'log-level': { type: 'string', default: 'info' },
  'path-escaped-slashes': { type: 'string', default: 'reject' },
  'path-backslashes': { type: 'string', default: 'reject' },
  'path-merge-slashes': { type: 'boolean', default: false },
  workers: { type: 'string' },
  relay: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const LISTENER_USAGE = `  --http-addr HOST:PORT      plain HTTP/WebSocket listener, or "off" (default 0.0.0.0:8080)
  --https-addr HOST:PORT     TLS listener, certificates chosen by SNI, or "off" (default 0.0.0.0:8443)
  --admin-addr HOST:PORT     /metrics, /healthz, /readyz, /debug/routes, or "off" (default 0.0.0.0:9090)
  --tunnel-host HOST         bind address of TCPTunnel listeners (default 0.0.0.0)
  --handshake-timeout DUR    time for a client's request head and a backend's handshake answer (default 10s)
  --drain-delay DUR          on SIGTERM, time readiness is false while new connections are still accepted, so
                             that load balancers notice (default 0s; the Helm chart sets 5s)
  --drain-timeout DUR        then the listeners close and every tunnel gets a 1001 (a FIN for L4), the closes
                             spread evenly over this window so clients do not reconnect all at once (default 30s;
                             0 = close everything at once)
  --default-cert FILE        PEM certificate for TLS clients no route matches (default: generated at start)
  --default-key FILE         its PEM private key
  --ingress-class NAME       IngressClass whose Ingresses are served (default wsgate; "nginx" takes over
                             ingress-nginx's Ingresses during a migration: docs/migrating-from-ingress-nginx.md)
  --watch-ingress-without-class  also serve Ingresses that name no class (default: only when the IngressClass
                             of --ingress-class is wsgate's and the default class)
  --proxy-protocol           every connection on the HTTP, HTTPS and tunnel listeners starts with a PROXY
                             protocol v1 or v2 header (from a load balancer); others are closed (default off)
  --trusted-proxies CIDR,... hops whose PROXY headers and X-Forwarded-For/X-Real-IP are believed: with
                             --proxy-protocol, connections from elsewhere are closed (default: none; with
                             --proxy-protocol alone, every peer may send a PROXY header)
  --affinity-key-file FILE   the key of affinity cookies (loadBalancing Cookie), e.g. a mounted Secret: give
                             every replica the same (default: a key made at start, shared by this pod's workers
                             only, so a cookie from one replica is unknown to another)
  --redirect-https-port PORT the port HTTPS redirects send clients to (default 443)
  --enable-ssl-passthrough   serve ingress-nginx's ssl-passthrough on the TLS listener: a ClientHello naming
                             such a host is passed to its backend undecrypted (default off)
  --log-level LEVEL          fatal, error, warn, info, debug, trace or silent (default info)
  --path-escaped-slashes P   %2F and %5C in a request path: reject (400, the default), keep (left encoded,
                             never a separator), or decode (a slash that separates segments)
  --path-backslashes P       a \ in a request path: reject (400, the default) or slash (read as /)
  --path-merge-slashes       merge runs of / in request paths before routing (default: keep them)
  --workers N                data-plane processes sharing the ports (default: the cores this process may use,
                             a container's CPU limit included; 1 = everything in one process)
  --relay R                  what relays L4 tunnels (and WebSockets not inspected: inspectFrames false):
                             native (splice(2) on a thread of its own, when the addon is built and loads;
                             otherwise js, said in the log and /debug/workers) or js (default:
                             $WSGATE_RELAY, else native)
`;

type ListenerValues = {
  [K in keyof typeof LISTENER_OPTIONS]?: (typeof LISTENER_OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

export interface ListenerFlags {
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly ingressClass: string;
  readonly httpAddr: ListenAddress | undefined;
  readonly httpsAddr: ListenAddress | undefined;
  readonly adminAddr: ListenAddress | undefined;
  readonly tunnelHost: string;
  readonly handshakeTimeoutMs: number;
  readonly drainMs: number;
  readonly drainDelayMs: number;
  readonly defaultCertificate: { certPem: string; keyPem: string };
  readonly workers: number;
  /** How request-targets are normalised before routing (normalize.ts). */
  readonly normalize: NormalizeOptions;
  /** [issue 12] --watch-ingress-without-class. */
  readonly watchIngressWithoutClass: boolean;
  /** [issue 12] The client address, edge policy and ssl-passthrough flags. */
  readonly edge: EdgeOptions;
  /** No --affinity-key-file: the key was made now (a warning at start). */
  readonly affinityKeyGenerated: boolean;
  /** --relay: what relays L4 tunnels (native-relay.ts). */
  readonly relay: RelayChoice;
}

/** Checks and converts the shared flags; a bad value is a BadFlagError (exit 2). */
export function parseListenerFlags(v: ListenerValues): ListenerFlags {
  if (Boolean(v['default-cert']) !== Boolean(v['default-key'])) {
    throw new BadFlagError('--default-cert and --default-key go together: give both, or neither to generate one');
  }
  const logLevel = parseLogLevel(v['log-level'] ?? 'info');
  const handshakeTimeoutMs = parseDuration('handshake-timeout', v['handshake-timeout'] ?? '10s');
  const drainMs = parseDuration('drain-timeout', v['drain-timeout'] ?? '30s');
  const drainDelayMs = parseDuration('drain-delay', v['drain-delay'] ?? '0s');
  if (handshakeTimeoutMs <= 0) throw new BadFlagError('--handshake-timeout must be more than 0');
  const ingressClass = parseName('ingress-class', v['ingress-class'] ?? 'wsgate');
  const affinityKey = readAffinityKey(v['affinity-key-file']);
  const httpAddr = parseAddress('http-addr', v['http-addr'] ?? '0.0.0.0:8080');
  const httpsAddr = parseAddress('https-addr', v['https-addr'] ?? '0.0.0.0:8443');
  const adminAddr = parseAddress('admin-addr', v['admin-addr'] ?? '0.0.0.0:9090');
  const defaultCertificate =
    v['default-cert'] && v['default-key']
      ? loadDefaultCertificate(v['default-cert'], v['default-key'])
      : generateSelfSigned({ commonName: 'wsgate default certificate' });
  return {
    logLevel,
    ingressClass,
    httpAddr,
    httpsAddr,
    adminAddr,
    tunnelHost: v['tunnel-host'] ?? '0.0.0.0',
    handshakeTimeoutMs,
    drainMs,
    drainDelayMs,
    defaultCertificate,
    workers: v.workers === undefined ? defaultWorkers() : parseCount('workers', v.workers, 1, 256),
    normalize: parseNormalize(v),
    watchIngressWithoutClass: v['watch-ingress-without-class'] === true,
    edge: {
      proxyProtocol: v['proxy-protocol'] === true,
      trustedProxies: parseCidrList('trusted-proxies', v['trusted-proxies']),
      affinityKey: affinityKey ?? generatedAffinityKey(),
      redirectHttpsPort: parseCount('redirect-https-port', v['redirect-https-port'] ?? '443', 1, 65535),
      sslPassthrough: v['enable-ssl-passthrough'] === true,
    },
    affinityKeyGenerated: affinityKey === undefined,
    relay: parseRelay(v.relay),
  };
}

/** --relay, else WSGATE_RELAY, else native. */
function parseRelay(flag: string | undefined): RelayChoice {
  const env = process.env['WSGATE_RELAY'];
  const value = flag ?? (env === undefined || env === '' ? 'native' : env);
  if (!(RELAY_CHOICES as readonly string[]).includes(value)) {
    const source = flag === undefined ? `WSGATE_RELAY=${value}` : `--relay=${value}`;
    throw new BadFlagError(`${source}: must be native or js`);
  }
  return value as RelayChoice;
}

function parseNormalize(v: ListenerValues): NormalizeOptions {
  const slashes = v['path-escaped-slashes'] ?? 'reject';
  if (slashes !== 'reject' && slashes !== 'keep' && slashes !== 'decode') {
    throw new BadFlagError(`--path-escaped-slashes=${slashes}: must be reject, keep or decode`);
  }
  const backslash = v['path-backslashes'] ?? 'reject';
  if (backslash !== 'reject' && backslash !== 'slash') {
    throw new BadFlagError(`--path-backslashes=${backslash}: must be reject or slash`);
  }
  return { escapedSlashes: slashes, backslash, mergeSlashes: v['path-merge-slashes'] === true };
}

/** --trusted-proxies: comma-separated CIDRs or addresses, IPv4 or IPv6. */
function parseCidrList(flag: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const cidr = normalizeCidr(item);
    if (cidr === undefined) throw new BadFlagError(`--${flag}=${value}: "${item}" is not a CIDR or an address (e.g. 10.0.0.0/8, 2001:db8::/32)`);
    out.push(cidr);
  }
  return out;
}

/** --affinity-key-file: at least 16 bytes (surrounding whitespace, as a Secret file may end in a newline, is not). */
function readAffinityKey(file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (err) {
    throw new BadFlagError(`--affinity-key-file=${file}: cannot read it (${(err as Error).message})`);
  }
  const key = Buffer.from(text.toString('latin1').trim(), 'latin1');
  if (key.length < 16) throw new BadFlagError(`--affinity-key-file=${file}: the key has ${key.length} bytes; give at least 16 (e.g. openssl rand -base64 32)`);
  return key;
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
