// `wsgate serve` in process, fed from a real temporary config directory: object builders (written as YAML), a
// config directory whose writes are atomic (temp file + rename, as editors and ConfigMap volumes do), a log capture,
// and waits for a reload to become live. Reloads have no completion event: tests converge on what the admin
// server's /debug/routes (or /metrics) shows, several successes in a row, bounded by a deadline.
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { WebSocket, type ClientOptions } from 'ws';
import { stringify } from 'yaml';
import { serve, type Server } from '../../src/cli/serve.ts';
import { createLogger, silentLogger, type Logger } from '../../src/log/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { metricSum } from './metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { converge, openClient, type Client } from './l7-peers.ts';

export type Obj = Record<string, unknown>;

// ---- object builders ------------------------------------------------------------------------------------------

export function service(name: string, o: { namespace?: string; port?: number; portName?: string; targetPort?: number | string } = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.namespace ?? 'default' },
    spec: { ports: [{ name: o.portName ?? 'http', port: o.port ?? 80, targetPort: o.targetPort ?? 'http' }] },
  };
}

/** An EndpointSlice of `serviceName` whose ready endpoints are 127.0.0.1 on `port` (the named port `http`). */
export function endpointSlice(serviceName: string, port: number, o: { namespace?: string; name?: string; portName?: string } = {}): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: o.name ?? `${serviceName}-1`,
      namespace: o.namespace ?? 'default',
      labels: { 'kubernetes.io/service-name': serviceName },
    },
    addressType: 'IPv4',
    ports: [{ name: o.portName ?? 'http', port }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
  };
}

/** A Service and its EndpointSlice pointing at a local backend port. */
export function backendService(name: string, port: number): Obj[] {
  return [service(name), endpointSlice(name, port)];
}

export interface RuleSpec {
  path?: string;
  pathType?: 'Exact' | 'Prefix';
  backends: Array<{ service: string; port?: number | string; weight?: number }>;
  policy?: Obj;
}

export function webSocketRoute(
  name: string,
  o: { namespace?: string; hostnames?: string[]; rules: RuleSpec[]; policy?: Obj; tlsSecret?: string },
): Obj {
  const spec: Obj = {
    rules: o.rules.map((r) => ({
      path: { type: r.pathType ?? 'Prefix', value: r.path ?? '/' },
      backends: r.backends.map((b) => ({ service: b.service, port: b.port ?? 80, ...(b.weight === undefined ? {} : { weight: b.weight }) })),
      ...(r.policy ? { policy: r.policy } : {}),
    })),
  };
  if (o.hostnames) spec.hostnames = o.hostnames;
  if (o.policy) spec.policy = o.policy;
  if (o.tlsSecret) spec.tls = { secretName: o.tlsSecret };
  return { apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name, namespace: o.namespace ?? 'default' }, spec };
}

export function tlsSecret(name: string, pem: { certPem: string; keyPem: string }, namespace = 'default'): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(pem.certPem).toString('base64'), 'tls.key': Buffer.from(pem.keyPem).toString('base64') },
  };
}

export function toYaml(objects: readonly Obj[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

// ---- the config directory -------------------------------------------------------------------------------------

export interface ConfigDir {
  readonly path: string;
  /** Writes `objects` as multi-document YAML to `name`, atomically. */
  write(name: string, objects: readonly Obj[]): string;
  /** Writes `text` as it is to `name`, atomically. */
  writeText(name: string, text: string): string;
  remove(name: string): void;
  dispose(): void;
}

let tmpSeq = 0;

export function createConfigDir(): ConfigDir {
  const path = mkdtempSync(join(tmpdir(), 'wsgate-serve-'));
  const writeText = (name: string, text: string): string => {
    const file = join(path, name);
    // A hidden temporary name: the loader skips dotfiles, so a half-written file is never read.
    const tmp = join(path, `.${name}.${process.pid}.${tmpSeq++}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, file);
    return file;
  };
  return {
    path,
    writeText,
    write: (name, objects) => writeText(name, toYaml(objects)),
    remove: (name) => unlinkSync(join(path, name)),
    dispose: () => rmSync(path, { recursive: true, force: true }),
  };
}

// ---- logs -----------------------------------------------------------------------------------------------------

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A pino logger writing JSON lines into memory, and the lines so far. */
export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;
  #partial = '';

  constructor(level: 'info' | 'debug' | 'warn' = 'info') {
    const sink = new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        this.#partial += chunk.toString();
        let nl: number;
        while ((nl = this.#partial.indexOf('\n')) >= 0) {
          const line = this.#partial.slice(0, nl);
          this.#partial = this.#partial.slice(nl + 1);
          if (line.trim() !== '') this.lines.push(JSON.parse(line) as LogLine);
        }
        cb();
      },
    });
    this.logger = createLogger(level, sink);
  }

  find(predicate: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(predicate);
  }

  /** Waits (bounded) until a line matching `predicate` has been logged, and returns it. */
  async waitFor(predicate: (l: LogLine) => boolean, what: string, timeoutMs = 10_000): Promise<LogLine> {
    let found: LogLine | undefined;
    await converge(() => (found = this.find(predicate)) !== undefined, `log line: ${what}`, 1, timeoutMs);
    return found!;
  }
}

// ---- the server -----------------------------------------------------------------------------------------------

export interface ServeHarness {
  readonly server: Server;
  readonly metrics: Metrics;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly adminPort: number;
  /** http://127.0.0.1:ADMIN */
  readonly adminUrl: string;
  /** ws://127.0.0.1:HTTP */
  readonly wsUrl: string;
  /** The sum of a metric's samples whose labels include `labels`; 0 when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The hostnames in the live table, as /debug/routes shows them. */
  liveHosts(): Promise<string[]>;
  /**
   * Waits until /debug/routes satisfies `predicate` on several successive polls (bounded): the reload that
   * produced it is live. Use a marker that only the awaited configuration has.
   */
  awaitTable(predicate: (hosts: string[], table: DebugTable) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(graceMs?: number): Promise<void>;
}

export interface DebugTable {
  virtualHosts: Array<{ hostname: string; routes: Array<{ route: string; path: string; backends: Array<{ name: string; weight: number }> }> }>;
  certificates: Array<{ secret: string; hostnames: string[] }>;
  tunnels: unknown[];
}

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate serve test default' });

export async function startServe(
  configPath: string,
  o: { log?: Logger; defaultMetrics?: boolean; debounceMs?: number; workers?: number } = {},
): Promise<ServeHarness> {
  const metrics = createMetrics('test', { defaultMetrics: o.defaultMetrics ?? false });
  const local = { host: '127.0.0.1', port: 0 };
  const server = await serve({
    log: o.log ?? silentLogger(),
    metrics,
    configPath,
    ingressClass: 'wsgate',
    httpAddr: local,
    httpsAddr: local,
    adminAddr: local,
    tunnelHost: '127.0.0.1',
    handshakeTimeoutMs: 10_000,
    defaultCertificate,
    debounceMs: o.debounceMs ?? 20,
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
  });
  const a = server.plane.addresses();
  const adminUrl = `http://127.0.0.1:${a.admin!.port}`;
  const debugTable = async (): Promise<DebugTable> => {
    const res = await fetch(`${adminUrl}/debug/routes`);
    if (res.status !== 200) throw new Error(`/debug/routes answered ${res.status}`);
    return (await res.json()) as DebugTable;
  };
  const liveHosts = async (): Promise<string[]> => (await debugTable()).virtualHosts.map((v) => v.hostname);
  return {
    server,
    metrics,
    httpPort: a.http!.port,
    httpsPort: a.https!.port,
    adminPort: a.admin!.port,
    adminUrl,
    wsUrl: `ws://127.0.0.1:${a.http!.port}`,
    metric: (name, labels) => metricSum(metrics, name, labels),
    liveHosts,
    async awaitTable(predicate, what, timeoutMs = 10_000) {
      await converge(
        async () => {
          const t = await debugTable();
          return predicate(t.virtualHosts.map((v) => v.hostname), t);
        },
        what,
        3,
        timeoutMs,
      );
    },
    close: (graceMs = 0) => server.stop(graceMs),
  };
}

/** Waits (bounded, several successes in a row) until a metric satisfies `predicate`. */
export async function awaitMetric(
  h: ServeHarness,
  name: string,
  labels: Record<string, string>,
  predicate: (v: number) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<number> {
  let last = NaN;
  await converge(async () => predicate((last = await h.metric(name, labels))), what, 3, timeoutMs);
  return last;
}

// ---- clients --------------------------------------------------------------------------------------------------

/** Opens a `ws` client to `url` with the given Host header (routing is by host). */
export function openWithHost(url: string, host: string, opts: ClientOptions & { servername?: string } = {}): Promise<Client> {
  return openClient(url, [], { ...opts, headers: { ...opts.headers, Host: host } });
}

/** The status a WebSocket handshake to `url` with Host `host` is answered with: 101, or the refusal's status. */
export async function handshakeStatus(url: string, host: string): Promise<number> {
  const ws = new WebSocket(url, { headers: { Host: host } });
  try {
    return await new Promise<number>((resolve, reject) => {
      ws.once('open', () => resolve(101));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.once('error', reject);
    });
  } finally {
    ws.on('error', () => {});
    ws.terminate();
  }
}
