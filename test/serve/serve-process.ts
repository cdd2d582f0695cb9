// `wsgate serve` as a real subprocess (bin/wsgate.js on this Node) for the lifecycle tests: started with the default
// --workers (this machine's cores, at least 2 here) or with --workers 1, on ports the test chose, with its JSON log,
// its admin endpoints and its exit. Every scenario of the lifecycle runs under both settings (WORKER_SETTINGS).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { closeServer, converge, listen } from '../helpers/l7-peers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));

/** The default (no --workers flag: one per core) and one process. */
export const WORKER_SETTINGS = [
  { name: 'the default --workers', args: [] as string[] },
  { name: '--workers 1', args: ['--workers', '1'] },
] as const;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly adminPort: number;
  readonly exited: Promise<Exit>;
  /** The exit, once it has happened. */
  exit(): Exit | undefined;
  stdout(): string;
  /** GET on the admin server; code 0 when nothing answers. Throws once the process has exited. */
  admin(path: string): Promise<{ code: number; body: string }>;
  /** Waits (bounded, several in a row) until /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then the exit (SIGKILL after 20 s). */
  stop(): Promise<Exit>;
}

const children = new Set<ChildProcess>();

/** Kills every process still running: for after() hooks. */
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

/**
 * Starts `wsgate serve --config CONFIG` on 127.0.0.1 (https off) with `args` added; does not wait for anything.
 * `httpPort`/`adminPort` default to free ports.
 */
export async function spawnServe(config: string, args: readonly string[], o: { httpPort?: number; adminPort?: number } = {}): Promise<ServeProcess> {
  const httpPort = o.httpPort ?? (await freePort());
  const adminPort = o.adminPort ?? (await freePort());
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--config', config, '--http-addr', `127.0.0.1:${httpPort}`, '--https-addr', 'off', '--admin-addr', `127.0.0.1:${adminPort}`,
      '--tunnel-host', '127.0.0.1', '--drain-timeout', '1s', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let stdout = '';
  let stderr = '';
  let exit: Exit | undefined;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(child, 'close').then(([code, signal]) => {
    children.delete(child);
    exit = { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr };
    return exit;
  });
  const admin = async (path: string): Promise<{ code: number; body: string }> => {
    if (exit) throw new Error(`wsgate exited (${exit.code}): ${exit.stderr}${exit.stdout.slice(-2000)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`);
      return { code: res.status, body: await res.text() };
    } catch {
      return { code: 0, body: 'not listening' };
    }
  };
  return {
    child,
    httpPort,
    adminPort,
    exited,
    exit: () => exit,
    stdout: () => stdout,
    admin,
    ready: (timeoutMs = 45_000) => converge(async () => (await admin('/readyz')).code === 200, '/readyz 200', 2, timeoutMs),
    async stop() {
      if (!exit) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export interface WorkerStatus {
  readonly worker: number;
  readonly pid: number;
  readonly tunnels: number;
  readonly notReady: string | null;
  readonly failedPorts: readonly number[];
}

/** /debug/workers of a process with workers. */
export async function workerStatus(p: ServeProcess): Promise<WorkerStatus[]> {
  return JSON.parse((await p.admin('/debug/workers')).body) as WorkerStatus[];
}

/** Every sample of a Prometheus exposition, keyed by `name{labels}`, with the type of its family. */
export function parseExposition(text: string): Map<string, { type: string; value: number }> {
  const types = new Map<string, string>();
  const out = new Map<string, { type: string; value: number }>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const series = line.slice(0, space);
    const name = series.split('{')[0]!;
    const family = types.get(name) ?? types.get(name.replace(/_(bucket|sum|count)$/, '')) ?? 'untyped';
    out.set(series, { type: family, value: Number(line.slice(space + 1)) });
  }
  return out;
}
