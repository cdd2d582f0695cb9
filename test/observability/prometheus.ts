// A real Prometheus server (Debian's `prometheus` package, /usr/bin/prometheus) for the observability tests: on
// 127.0.0.1, a temporary data directory, a one-second scrape and evaluation interval, the given targets and rule
// files. Its log goes to a file, printed when it fails to start.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

export interface Prometheus {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** GET /api/v1/<path>; throws unless Prometheus answers status "success". */
  api<T = unknown>(path: string, params?: Record<string, string>): Promise<T>;
  log(): string;
  close(): Promise<void>;
}

export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** A free loopback port (Prometheus cannot listen on port 0 and say which port it got). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startPrometheus(o: { targets: readonly string[]; ruleFiles: readonly string[] }): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: o.ruleFiles,
      scrape_configs: [{ job_name: 'wsgate', static_configs: [{ targets: o.targets }] }],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dir, 'prometheus.log');
  const logFd = openSync(logFile, 'w');
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const log = (): string => readFileSync(logFile, 'utf8');

  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 200))]);
    if (code !== 'running' || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus did not become ready (exit ${String(code)}):\n${log()}`);
    }
  }

  return {
    url,
    log,
    async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
      const res = await fetch(`${url}/api/v1/${path}?${new URLSearchParams(params).toString()}`);
      const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
      if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
      return body.data;
    },
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An instant query's vector (throws on a scalar, string or matrix result). */
export async function query(p: Prometheus, expr: string): Promise<Sample[]> {
  const data = await p.api<{ resultType: string; result: Sample[] }>('query', { query: expr });
  if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not a vector`);
  return data.result;
}
