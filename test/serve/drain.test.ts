// The shutdown drain of issue 11, from the outside: `wsgate serve` holds 1,000 WebSockets (800 `ws` clients in this
// process, 200 Python `websockets` clients in another), gets SIGTERM with --drain-timeout 10s, and must close them
// all with 1001 Going Away, spread over the window, so that they reconnect at about 100 a second and not all at
// once: no 1-second bucket holds more than twice the mean. Then it exits 0. With one process and with the default
// --workers (each worker spreads its own tunnels over the same window).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { closeServer, converge, listen, openClient, startWsBackend, type Client, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';

const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));
const PYTHON = '/usr/bin/python3';
const WS_CLIENTS = 800;
const PY_CLIENTS = 200;
const WINDOW_S = 10;

// Opens N connections, says "open N" once all are up, then prints "closed <code> <seconds since the first close>"
// for each as the server closes it. A client that is closed answers the close (websockets does), as browsers do.
const PY_CLIENTS_SCRIPT = `
import asyncio, sys, time, websockets

async def hold(uri, opened, out):
    async with websockets.connect(uri, compression=None, ping_interval=None) as ws:
        opened.append(ws)
        try:
            await ws.wait_closed()
        finally:
            out.append((ws.close_code, time.monotonic()))

async def main(uri, n):
    opened, out = [], []
    tasks = [asyncio.create_task(hold(uri, opened, out)) for _ in range(n)]
    while len(opened) < n:
        await asyncio.sleep(0.05)
    print("open", n, flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    for code, t in out:
        print("closed", code, t, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
`;

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

let echo: WsBackend;
let dir: ConfigDir;

before(async () => {
  echo = await startWsBackend();
  dir = createConfigDir();
  dir.write('config.yaml', [...backendService('echo', echo.port), webSocketRoute('echo', { rules: [{ path: '/', backends: [{ service: 'echo' }] }] })]);
});

after(async () => {
  await echo.close();
  dir.dispose();
});

/** Counts per 1-second bucket of the window, from the first close. */
function buckets(times: readonly number[]): number[] {
  const first = Math.min(...times);
  const out: number[] = [];
  for (const t of times) {
    const b = Math.floor((t - first) / 1000);
    out[b] = (out[b] ?? 0) + 1;
  }
  return Array.from(out, (n) => n ?? 0);
}

describe('the shutdown drain', () => {
  for (const workers of ['1', undefined] as const) {
    test(`closes 1,000 WebSockets with 1001 spread over --drain-timeout, then exits 0 (${workers ? '--workers 1' : 'default --workers'})`, { timeout: 120_000 }, async () => {
      const [http, admin] = [await freePort(), await freePort()];
      const args = [...NODE_FLAGS, BIN, 'serve', '--config', dir.path, '--http-addr', `127.0.0.1:${http}`, '--https-addr', 'off'];
      args.push('--admin-addr', `127.0.0.1:${admin}`, '--log-level', 'warn', '--drain-timeout', `${WINDOW_S}s`);
      if (workers) args.push('--workers', workers);
      const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
      const exited = once(child, 'exit').then(([code]) => code as number | null);
      let py: ChildProcess | undefined;
      const clients: Client[] = [];
      try {
        await converge(async () => (await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined))?.ok === true, 'ready', 3, 30_000);
        // Python clients first, in their own process; their close times come back on stdout.
        py = spawn(PYTHON, ['-c', PY_CLIENTS_SCRIPT, `ws://127.0.0.1:${http}/`, String(PY_CLIENTS)], { stdio: ['ignore', 'pipe', 'inherit'] });
        const pyLines = createInterface({ input: py.stdout! });
        const pyClosed: { code: number; t: number }[] = [];
        const pyOpen = new Promise<void>((resolve) => {
          pyLines.on('line', (line) => {
            const [what, a, b] = line.split(' ');
            if (what === 'open') resolve();
            else if (what === 'closed') pyClosed.push({ code: Number(a), t: Number(b) });
          });
        });
        const pyDone = once(py, 'exit');
        await pyOpen;
        for (let i = 0; i < WS_CLIENTS; i++) clients.push(await openClient(`ws://127.0.0.1:${http}/`));
        const wsClosed = clients.map((c) => c.closed.then((r) => ({ ...r, t: performance.now() })));
        await converge(
          async () => {
            const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
            const m = /^wsgate_connections_active\{route="default\/echo",layer="l7"\} (\d+)/m.exec(text);
            return Number(m?.[1]) === WS_CLIENTS + PY_CLIENTS;
          },
          'every client connected',
          2,
          30_000,
        );

        child.kill('SIGTERM');
        const ws = await Promise.all(wsClosed);
        await pyDone;
        assert.equal(await exited, 0);

        // Every client saw Going Away: none saw an abnormal closure.
        assert.deepEqual([...new Set(ws.map((r) => r.code))], [1001]);
        assert.equal(pyClosed.length, PY_CLIENTS);
        assert.deepEqual([...new Set(pyClosed.map((r) => r.code))], [1001]);
        // Spread: the ws clients' close times (this process's clock) per second of the window, none over twice the
        // mean. (The Python clients' clock is another process's; their count and codes are checked above.)
        const perSecond = buckets(ws.map((r) => r.t));
        const mean = WS_CLIENTS / perSecond.length;
        // The Python clients connected first and the drain goes oldest first: the ws clients fill the last 80% of
        // the window.
        const share = WS_CLIENTS / (WS_CLIENTS + PY_CLIENTS);
        assert.ok(perSecond.length >= Math.floor(WINDOW_S * share) - 1, `closes spread over ${perSecond.length} s: ${perSecond.join(' ')}`);
        for (const n of perSecond) assert.ok(n <= 2 * mean, `a second held ${n} closes, the mean is ${mean.toFixed(0)}: ${perSecond.join(' ')}`);
      } finally {
        for (const c of clients) c.ws.terminate();
        py?.kill('SIGKILL');
        if (child.exitCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
    });
  }
});
