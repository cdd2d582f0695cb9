// Issue 9, item 18 (the data plane's half): one slow worker must not stall every later table. A worker that has not
// acknowledged a table by apply()'s deadline is killed and replaced, and apply() resolves without it; the replacement
// gets the current table before it binds. The slow worker is a real fault: a process stopped with SIGSTOP (it acts on
// nothing, SIGTERM included, until SIGKILL). With --workers 1 the table is applied in the serving process itself:
// there is no other process to wait for, and nothing here to check.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { serve, type Server } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { converge, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, handshakeStatus, webSocketRoute, type ConfigDir, type Obj } from '../helpers/serve-harness.ts';

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate deadline test' });
const APPLY_TIMEOUT_MS = 1_500;

interface WorkerStatus {
  pid: number;
  notReady: string | null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Rejects after `ms`: a bound on a wait that must end, not a measurement. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms: ${what}`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

describe(`wsgate serve --workers ${Math.max(2, defaultWorkers())} with a worker stopped by SIGSTOP`, { timeout: 90_000 }, () => {
  let echo: WsBackend;
  let dir: ConfigDir;
  let server: Server;
  let admin: string;
  const stopped: number[] = [];

  function config(host: string): Obj[] {
    return [...backendService('echo', echo.port), webSocketRoute('r', { hostnames: [host], rules: [{ backends: [{ service: 'echo' }] }] })];
  }

  async function workers(): Promise<WorkerStatus[]> {
    return (await (await fetch(`${admin}/debug/workers`)).json()) as WorkerStatus[];
  }

  before(async () => {
    echo = await startWsBackend();
    dir = createConfigDir();
    dir.write('config.yaml', config('v1.test'));
    // Port 0 with several workers: the port the OS chose is held from the primary's probe until the workers bind it
    // (test/cluster/worker-start.test.ts), so no other test's outgoing connection can take it meanwhile.
    server = await startServe({ host: '127.0.0.1', port: 0 });
    admin = `http://127.0.0.1:${server.plane.addresses().admin!.port}`;
  });

  function startServe(local: { host: string; port: number }): Promise<Server> {
    return serve({
      log: silentLogger(),
      logLevel: 'silent',
      metrics: createMetrics('test', { defaultMetrics: false }),
      configPath: dir.path,
      ingressClass: 'wsgate',
      httpAddr: local,
      adminAddr: local,
      tunnelHost: '127.0.0.1',
      handshakeTimeoutMs: 5000,
      defaultCertificate,
      // Its own reloads only: the test calls reload() and waits for it.
      debounceMs: 60_000,
      workers: Math.max(2, defaultWorkers()),
      applyTimeoutMs: APPLY_TIMEOUT_MS,
    });
  }

  after(async () => {
    for (const pid of stopped) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await server?.stop();
    await echo?.close();
    dir?.dispose();
  });

  test('applies the next table without it: the stopped worker is killed and replaced, and the replacement serves the new table', async () => {
    const before = await workers();
    const victim = before[0]!.pid;
    process.kill(victim, 'SIGSTOP');
    stopped.push(victim);
    dir.write('config.yaml', config('v2.test'));
    // Bounded: without a deadline this never resolves.
    assert.equal(await within(server.reload(), 10 * APPLY_TIMEOUT_MS, 'the reload'), true);
    await converge(() => !alive(victim), 'the stopped worker gone', 1, 10_000);
    await converge(async () => {
      const now = await workers();
      return server.plane.notReady() === undefined && now.length === before.length && !now.some((w) => w.pid === victim);
    }, 'a replacement worker, and every worker ready', 3, 30_000);
    // Every worker serves the new table: 20 in a row over the kernel's spread.
    for (let i = 0; i < 20; i++) {
      const port = server.plane.addresses().http!.port;
      assert.equal(await handshakeStatus(`ws://127.0.0.1:${port}/`, 'v2.test'), 101);
      assert.equal(await handshakeStatus(`ws://127.0.0.1:${port}/`, 'v1.test'), 404);
    }
  });

  test('stops even with a stopped worker: it is killed once the grace period and the deadline have passed', async () => {
    const victim = (await workers())[0]!.pid;
    process.kill(victim, 'SIGSTOP');
    stopped.push(victim);
    await within(server.stop(0), 10 * APPLY_TIMEOUT_MS, 'the stop');
    await converge(() => !alive(victim), 'the stopped worker gone', 1, 10_000);
  });
});
