// The proxies under test, configured as equivalently as their models allow: one worker / one thread, the same
// WebSocket route (any path → the echo backend) and L4 tunnel (→ the byte source), idle timeouts of one hour on
// both, X-Forwarded-For added, and one access-log line per session written to a file. wsgate runs with its
// features on: metrics (admin listener), the access log at its default level `info`, connection limits configured,
// WebSocket frames tracked (issue 10: the default, keepalive on toward clients). `wsgate-pipe` is the same wsgate
// with its route's `inspectFrames: false` (a byte pipe): the cost of frame tracking is the difference between the
// two in one run (issue 10's budget). Its L4 tunnel is not measured (frame tracking never applies to L4).
import { NODE_FLAGS } from '../src/cli/node-flags.ts';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { headEnd } from './frames.ts';

export type ProxyName = 'wsgate' | 'wsgate-pipe' | 'wsgate-js' | 'node-min' | 'node-raw' | 'nginx' | 'haproxy';
export type TargetName = 'direct' | ProxyName;

export const NGINX = '/usr/sbin/nginx';
export const HAPROXY = '/usr/sbin/haproxy';
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export interface Ports {
  /** WebSocket listener (the echo backend's own port for `direct`). */
  readonly ws: number;
  /** L4 tunnel listener (the byte source's own port for `direct`). */
  readonly l4: number | null;
}

export interface BackendPorts {
  readonly ws: number;
  readonly source: number;
}

export interface RunningProxy {
  readonly name: ProxyName;
  readonly pid: number;
  readonly ports: Ports;
  /** wsgate's admin listener (/metrics, /debug/workers), null for the others. */
  readonly admin: number | null;
  /**
   * The Node targets (wsgate, node-min): the port their inspector opens on SIGUSR1 (`--inspect-port`), through
   * which the idle phase asks V8 for a full collection before it reads RSS (measure.ts collectGarbage()). Null for
   * nginx and HAProxy, which hold no garbage.
   */
  readonly inspect: number | null;
  readonly notes: readonly string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly dir: string;
  readonly backend: BackendPorts;
  /** CPU(s) to pin the proxy to (`taskset -c` syntax: 0, or 0,1), or null on a one-core machine. */
  readonly cpu: number | string | null;
  /** File descriptors the proxy must be able to hold (2 per held connection, plus room). */
  readonly fds: number;
  /** wsgate only: write a V8 CPU profile into this directory. */
  readonly cpuProfDir?: string;
  /** wsgate only: --workers (default 1; the scaling phase runs 1 and 2). */
  readonly workers?: number;
}

const REPO = resolve(import.meta.dirname, '..');
/** The native relay that node-raw hands its tunnels to (native/, built by npm ci). */
const RELAY_ADDON = join(REPO, 'native/build/Release/wsgate_relay.node');
/**
 * Added to every fixed port of the bench (WSGATE_BENCH_PORT_OFFSET, default 0), so that two benches on one machine
 * (two checkouts) do not collide.
 */
export const PORT_OFFSET = Number(process.env['WSGATE_BENCH_PORT_OFFSET'] ?? 0);
const PROXY_PORTS: Record<ProxyName, { ws: number; l4: number; admin: number; inspect: number }> = {
  wsgate: { ws: 18101 + PORT_OFFSET, l4: 18102 + PORT_OFFSET, admin: 18190 + PORT_OFFSET, inspect: 18103 + PORT_OFFSET },
  'wsgate-pipe': { ws: 18111 + PORT_OFFSET, l4: 18112 + PORT_OFFSET, admin: 18191 + PORT_OFFSET, inspect: 18113 + PORT_OFFSET },
  'wsgate-js': { ws: 18121 + PORT_OFFSET, l4: 18122 + PORT_OFFSET, admin: 18192 + PORT_OFFSET, inspect: 18123 + PORT_OFFSET },
  'node-min': { ws: 18131 + PORT_OFFSET, l4: 0, admin: 0, inspect: 18133 + PORT_OFFSET },
  'node-raw': { ws: 18141 + PORT_OFFSET, l4: 0, admin: 0, inspect: 18143 + PORT_OFFSET },
  nginx: { ws: 18201 + PORT_OFFSET, l4: 18202 + PORT_OFFSET, admin: 0, inspect: 0 },
  haproxy: { ws: 18301 + PORT_OFFSET, l4: 18302 + PORT_OFFSET, admin: 0, inspect: 0 },
};
export const BACKEND_PORTS: BackendPorts = { ws: 18001 + PORT_OFFSET, source: 18002 + PORT_OFFSET };

/**
 * Spawns `cmd args` pinned to `cpu`, with the soft fd limit raised to the hard limit first (the shell's `ulimit`,
 * then `exec`: the pid returned is the command's own).
 */
export function spawnPinned(cpu: number | string | null, cmd: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const pin = cpu === null ? [] : ['taskset', '-c', String(cpu)];
  return spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...pin, cmd, ...args], opts);
}

/** The soft fd limit children get: the hard limit of this process's shell. */
export function childFdLimit(): number {
  const out = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? 1 << 20 : Number(out);
}

export function available(name: ProxyName): { ok: boolean; note?: string } {
  if (name.startsWith('wsgate') || name === 'node-min') return { ok: true };
  if (name === 'node-raw') return existsSync(RELAY_ADDON) ? { ok: true } : { ok: false, note: `the native relay is not built (${RELAY_ADDON})` };
  if (name === 'nginx') return existsSync(NGINX) ? { ok: true } : { ok: false, note: `${NGINX} not installed` };
  return existsSync(HAPROXY) ? { ok: true } : { ok: false, note: `${HAPROXY} not installed` };
}

export async function startProxy(name: ProxyName, o: StartOptions): Promise<RunningProxy> {
  const dir = join(o.dir, name);
  mkdirSync(dir, { recursive: true });
  const ports = PROXY_PORTS[name];
  const notes: string[] = [];
  let child: ChildProcess;
  let l4: number | null = ports.l4;
  const out = openSync(join(dir, 'stdout.log'), 'w');
  const err = openSync(join(dir, 'stderr.log'), 'w');
  const stdio: SpawnOptions['stdio'] = ['ignore', out, err];
  if (name.startsWith('wsgate')) {
    const configDir = join(dir, 'config');
    mkdirSync(configDir, { recursive: true });
    // wsgate-pipe and wsgate-js are byte pipes (inspectFrames: false): on the native relay, and on the JavaScript one.
    const inspectFrames = name !== 'wsgate-pipe' && name !== 'wsgate-js';
    // wsgate and wsgate-pipe relay L4 tunnels natively (splice), wsgate-js with the JavaScript relay (issue 13).
    const relay = name === 'wsgate-js' ? 'js' : 'native';
    writeFileSync(join(configDir, 'bench.yaml'), wsgateConfig(o.backend, ports.l4, inspectFrames));
    if (name === 'wsgate-pipe') l4 = null;
    const nodeArgs = o.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir];
    // Where the inspector would listen if SIGUSR1 opened it (the idle phase does, to collect garbage); nothing
    // listens before that.
    nodeArgs.push(`--inspect-port=127.0.0.1:${ports.inspect}`);
    // The access log is wsgate's stdout (pino, level info): stdout.log.
    // What the image runs: the compiled JavaScript (run.ts builds dist/ first) with wsgate's V8 flags.
    child = spawnPinned(o.cpu, process.execPath, [
      ...NODE_FLAGS,
      ...nodeArgs,
      join(REPO, 'bin/wsgate.js'),
      'serve',
      '--config', configDir,
      '--http-addr', `127.0.0.1:${ports.ws}`,
      '--https-addr', 'off',
      '--admin-addr', `127.0.0.1:${ports.admin}`,
      '--tunnel-host', '127.0.0.1',
      '--drain-timeout', '1s',
      // One data-plane process, as nginx runs one worker and HAProxy one thread: figures are per core. The scaling
      // phase (bench/scaling.ts) runs 1 and 2: with 2, a primary and two workers (src/cluster/).
      '--workers', String(o.workers ?? 1),
      '--relay', relay,
    ], { stdio, cwd: REPO, env: { ...process.env, WSGATE_COMPILED: '1' } });
    notes.push(
      `metrics on 127.0.0.1:${ports.admin}, access log (info) to a file, limits and idle timeout configured, ` +
        (inspectFrames ? 'frames tracked (keepalive toward clients at its default)' : 'inspectFrames: false (a byte pipe)') +
        `, relay ${relay}` + (name === 'wsgate-js' ? ' (its idle, echo and L4 phases only)' : '') + ((o.workers ?? 1) > 1 ? `, --workers ${o.workers}` : ''),
    );
  } else if (name === 'node-min') {
    // Issue 13's "minimal Node 24 proxy" (bench/minimal-proxy.ts): the floor of plain Node streams. WebSocket only.
    l4 = null;
    child = spawnPinned(o.cpu, process.execPath, [`--inspect-port=127.0.0.1:${ports.inspect}`, join(REPO, 'bench/minimal-proxy.ts'), String(ports.ws), String(o.backend.ws)], { stdio, cwd: REPO });
    notes.push('a raw net proxy: hand-split head, two pipes; no checks, metrics or log (the floor of Node streams)');
  } else if (name === 'node-raw') {
    // What a session costs Node without a net.Socket (bench/raw-proxy.ts): raw handles, llhttp, the native relay.
    l4 = null;
    child = spawnPinned(o.cpu, process.execPath, [`--inspect-port=127.0.0.1:${ports.inspect}`, join(REPO, 'bench/raw-proxy.ts'), String(ports.ws), String(o.backend.ws)], { stdio, cwd: REPO });
    notes.push('raw libuv handles, llhttp both ways, then the native relay; no checks, metrics or log (the floor of a session without net.Socket)');
  } else if (name === 'nginx') {
    const stream = existsSync(NGINX_STREAM_MODULE);
    if (!stream) {
      l4 = null;
      notes.push(`nginx stream module missing (${NGINX_STREAM_MODULE}; Debian: apt-get install libnginx-mod-stream): no L4 row`);
    }
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, o, ports, stream));
    child = spawnPinned(o.cpu, NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio });
  } else {
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(o, ports));
    // -db: foreground, no master process; the access log goes to stdout (stdout.log).
    child = spawnPinned(o.cpu, HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio });
  }
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  const ready = await Promise.race([
    waitReady(ports.ws, 15_000).then(() => true),
    exited.then(() => false),
  ]);
  if (!ready) throw new Error(`${name} exited at start; see ${dir}/stderr.log`);
  if (name.startsWith('wsgate')) notes.push(await relayLoaded(ports.admin));
  return {
    name,
    pid,
    ports: { ws: ports.ws, l4 },
    admin: name.startsWith('wsgate') ? ports.admin : null,
    inspect: ports.inspect > 0 ? ports.inspect : null,
    notes,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * What relay the wsgate process actually runs, from its /debug/workers: `--relay native` falls back to the
 * JavaScript relay where the addon does not load (not built: `npm ci --omit=dev`, no compiler), and a run that
 * measured the JavaScript relay under the `native` label would say the wrong thing about both.
 */
async function relayLoaded(adminPort: number): Promise<string> {
  try {
    const workers = (await (await fetch(`http://127.0.0.1:${adminPort}/debug/workers`)).json()) as { relay?: string; relayFallback?: string | null }[];
    const w = workers[0];
    if (w?.relayFallback) {
      process.stderr.write(`bench: wsgate on ${adminPort}: native relay NOT loaded (${w.relayFallback.split('\n')[0]}); its figures are the JavaScript relay's\n`);
      return `relay loaded: js, NOT native (${w.relayFallback.split('\n')[0]})`;
    }
    return `relay loaded: ${w?.relay ?? 'unknown'}`;
  } catch (err) {
    return `relay loaded: unknown (/debug/workers: ${err instanceof Error ? err.message : String(err)})`;
  }
}

/** Resolves once a WebSocket handshake on `port` is answered 101 (the route is live, not only the listener). */
export async function waitReady(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await handshakeOk(port)) return;
    if (Date.now() > deadline) throw new Error(`no 101 on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function handshakeOk(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.on('connect', () =>
      s.write(
        'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (headEnd(buf) >= 0) done(buf.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101');
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

function wsgateConfig(b: BackendPorts, l4Port: number, inspectFrames: boolean): string {
  const service = (name: string, port: number): string => `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: bench }
spec:
  ports: [{ name: main, port: 80, targetPort: ${port} }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  namespace: bench
  labels: { kubernetes.io/service-name: ${name} }
addressType: IPv4
ports: [{ name: main, port: ${port} }]
endpoints:
  - addresses: ["127.0.0.1"]
    conditions: { ready: true }
---
`;
  return `# Generated by bench/proxies.ts: the bench's routes, with wsgate's features on.
${service('echo', b.ws)}${service('source', b.source)}apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: echo, namespace: bench }
spec:
  rules:
    - path: { type: Prefix, value: / }
      backends: [{ service: echo, port: 80 }]
  policy:
    idleTimeoutSeconds: 3600
    maxConnections: 100000
    maxConnectionsPerClient: 50000${inspectFrames ? '' : '\n    inspectFrames: false'}
---
apiVersion: wsgate.io/v1alpha1
kind: TCPTunnel
metadata: { name: source, namespace: bench }
spec:
  port: ${l4Port}
  backends: [{ service: source, port: 80 }]
  idleTimeoutSeconds: 3600
  maxConnections: 100000
`;
}

function nginxConfig(dir: string, o: StartOptions, ports: { ws: number; l4: number }, stream: boolean): string {
  const streamBlock = `
stream {
    log_format tunnel '$remote_addr [$time_local] $protocol $status $bytes_sent $bytes_received $session_time';
    access_log ${dir}/stream-access.log tunnel;
    server {
        listen 127.0.0.1:${ports.l4} backlog=4096;
        proxy_pass 127.0.0.1:${o.backend.source};
        proxy_timeout 1h;
    }
}
`;
  return `# Generated by bench/proxies.ts.
${stream ? `load_module ${NGINX_STREAM_MODULE};` : ''}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile ${o.fds};
events { worker_connections ${o.fds}; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy_temp;
    upstream echo { server 127.0.0.1:${o.backend.ws}; }
    server {
        listen 127.0.0.1:${ports.ws} backlog=4096;
        location / {
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }
    }
}
${stream ? streamBlock : ''}`;
}

function haproxyConfig(o: StartOptions, ports: { ws: number; l4: number }): string {
  const maxconn = Math.floor(o.fds / 2) - 100;
  return `# Generated by bench/proxies.ts.
global
    nbthread 1
    maxconn ${maxconn}
    log stdout format raw local0 info

defaults
    log global
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    maxconn ${maxconn}

frontend ws
    mode http
    option httplog
    option forwardfor
    bind 127.0.0.1:${ports.ws}
    default_backend echo

backend echo
    mode http
    server s1 127.0.0.1:${o.backend.ws}

frontend l4
    mode tcp
    option tcplog
    bind 127.0.0.1:${ports.l4}
    default_backend source

backend source
    mode tcp
    server s1 127.0.0.1:${o.backend.source}
`;
}
