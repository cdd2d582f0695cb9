// `wsgate sidecar` as the kubelet runs it: a real subprocess (bin/wsgate.js on this Node) on free loopback ports,
// its JSON log lines, its admin endpoints, and its exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { closeServer, converge, listen } from '../helpers/l7-peers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface LogLine {
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly listenPort: number;
  readonly adminPort: number;
  /** ws://127.0.0.1:LISTEN */
  readonly url: string;
  readonly exited: Promise<Exit>;
  /** The JSON log lines so far. */
  logs(): LogLine[];
  /** GET on the admin server; code 0 when nothing answers. Throws once the process has exited. */
  admin(path: string): Promise<{ code: number; body: string }>;
  /** The sum of a metric's samples whose labels include `labels`, from /metrics; 0 when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

const children = new Set<ChildProcess>();

/** Kills every sidecar still running: for after() hooks. */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

/** Runs `wsgate ARGS` to completion (killed if it outlives 20 s). */
export async function runWsgate(...args: string[]): Promise<Exit> {
  const { child, exited } = spawnWsgate(args);
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

function spawnWsgate(args: readonly string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; exited: Promise<Exit>; out: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(child, 'close').then(([code, signal]) => {
    children.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr };
  });
  return { child, exited, out: () => stdout };
}

export function parseLogs(stdout: string): LogLine[] {
  return stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

/**
 * Starts `wsgate sidecar --upstream 127.0.0.1:UPSTREAM` plus `args` on free ports, and waits (bounded) until its
 * admin server answers. It is not necessarily ready: that follows the app.
 */
export async function startSidecarProcess(upstreamPort: number, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<SidecarProcess> {
  const [listenPort, adminPort] = [await freePort(), await freePort()];
  const { child, exited, out } = spawnWsgate(
    [
      'sidecar',
      '--upstream', `127.0.0.1:${upstreamPort}`,
      '--listen', `127.0.0.1:${listenPort}`,
      '--admin-addr', `127.0.0.1:${adminPort}`,
      '--probe-interval', '50ms',
      ...args,
    ],
    { ...process.env, POD_NAME: '', ...env },
  );
  let exit: Exit | undefined;
  void exited.then((e) => (exit = e));
  const admin = async (path: string): Promise<{ code: number; body: string }> => {
    if (exit) throw new Error(`wsgate sidecar exited (${exit.code}): ${exit.stderr}${exit.stdout}`);
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
      return { code: res.status, body: await res.text() };
    } catch {
      return { code: 0, body: 'not listening' };
    }
  };
  await converge(async () => (await admin('/healthz')).code === 200, 'sidecar /healthz 200', 1, 15_000);
  return {
    child,
    listenPort,
    adminPort,
    url: `ws://127.0.0.1:${listenPort}`,
    exited,
    logs: () => parseLogs(out()),
    admin,
    async metric(name, labels = {}) {
      const { body } = await admin('/metrics');
      let sum = 0;
      for (const line of body.split('\n')) {
        const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
        if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
      }
      return sum;
    },
  };
}
