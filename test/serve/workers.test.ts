// `wsgate serve --workers 2`: two data-plane processes share the ports (SO_REUSEPORT). Connections spread across
// them, a reload reaches both without dropping anything, /metrics adds up both, and a worker that dies is replaced
// while the other's connections carry on.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { closeServer, converge, listen, openClient, roundTrip, startWsBackend, type Client, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));
const CONNECTIONS = 200;

interface WorkerStatus {
  worker: number;
  pid: number;
  tunnels: number;
  notReady: string | null;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

let echo: WsBackend;
let dir: ConfigDir;
let child: ChildProcess;
let exited = false;
let admin: string;
let wsUrl: string;
const clients: Client[] = [];

function writeConfig(extraHost?: string): void {
  const routes = [webSocketRoute('echo', { rules: [{ path: '/echo', backends: [{ service: 'echo' }] }] })];
  if (extraHost) routes.push(webSocketRoute(`extra-${extraHost}`, { hostnames: [extraHost], rules: [{ path: '/', backends: [{ service: 'echo' }] }] }));
  dir.write('config.yaml', [...backendService('echo', echo.port), ...routes]);
}

async function workers(): Promise<WorkerStatus[]> {
  const res = await fetch(`${admin}/debug/workers`);
  return (await res.json()) as WorkerStatus[];
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ').pop());
  return sum;
}

before(async () => {
  echo = await startWsBackend();
  dir = createConfigDir();
  writeConfig();
  const [httpPort, adminPort] = [await freePort(), await freePort()];
  admin = `http://127.0.0.1:${adminPort}`;
  wsUrl = `ws://127.0.0.1:${httpPort}/echo`;
  child = spawn(
    process.execPath,
    [BIN, 'serve', '--config', dir.path, '--workers', '2', '--http-addr', `127.0.0.1:${httpPort}`, '--https-addr', 'off',
      '--admin-addr', `127.0.0.1:${adminPort}`, '--tunnel-host', '127.0.0.1', '--log-level', 'warn'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  child.once('exit', () => (exited = true));
  await converge(async () => {
    if (exited) throw new Error('wsgate exited early');
    try {
      return (await fetch(`${admin}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, 'wsgate ready', 1, 20_000);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  if (!exited) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await echo?.close();
  dir?.dispose();
});

describe('wsgate serve --workers 2', { timeout: 60_000 }, () => {
  test('spreads connections across both workers', async () => {
    for (let i = 0; i < CONNECTIONS; i++) clients.push(await openClient(wsUrl));
    const status = await workers();
    assert.equal(status.length, 2);
    assert.equal(status[0]!.tunnels + status[1]!.tunnels, CONNECTIONS);
    // With SO_REUSEPORT the kernel hashes each connection to a worker: with 200 connections, each worker getting
    // fewer than a quarter would be a broken spread, not bad luck (a binomial tail far below 1e-9).
    for (const w of status) assert.ok(w.tunnels >= CONNECTIONS / 4, `worker ${w.worker} has ${w.tunnels} of ${CONNECTIONS}`);
  });

  test('adds up both workers in /metrics', async () => {
    assert.equal(await metric('wsgate_connections_active'), CONNECTIONS);
    assert.equal(await metric('wsgate_build_info'), 1);
  });

  test('applies a reload in both workers without dropping a connection', async () => {
    let closedDuringReloads = 0;
    let watching = true;
    for (const c of clients) void c.closed.then(() => watching && closedDuringReloads++);
    for (let i = 0; i < 5; i++) {
      writeConfig(`v${i}.test`);
      await converge(async () => {
        const r = (await (await fetch(`${admin}/debug/routes`)).json()) as { virtualHosts: { hostname: string }[] };
        return r.virtualHosts.some((v) => v.hostname === `v${i}.test`) && (await fetch(`${admin}/readyz`)).status === 200;
      }, `version ${i} live in every worker`);
    }
    const echoes = await Promise.all(clients.map((c, i) => roundTrip(c, `after reloads ${i}`)));
    echoes.forEach((m, i) => assert.equal(m.data.toString(), `after reloads ${i}`));
    watching = false;
    assert.equal(closedDuringReloads, 0, 'a connection closed during the reloads');
  });

  test('replaces a worker that dies, and the other worker keeps its connections', async () => {
    const before = await workers();
    const victim = before[0]!;
    const survivor = before[1]!;
    // Which client is on which worker is not visible from here; the victim's tunnels close, the rest must echo.
    const closedCount = { n: 0 };
    const open = clients.map((c) => ({ c, closed: false }));
    for (const o of open) void o.c.closed.then(() => ((o.closed = true), closedCount.n++));
    process.kill(victim.pid, 'SIGKILL');
    await converge(async () => {
      const now = await workers();
      return now.length === 2 && !now.some((w) => w.pid === victim.pid) && now.every((w) => w.notReady === null);
    }, 'a replacement worker is ready', 3, 20_000);
    await converge(() => closedCount.n === victim.tunnels, `the ${victim.tunnels} tunnels of the dead worker closed`, 1, 10_000);
    const alive = open.filter((o) => !o.closed);
    assert.equal(alive.length, survivor.tunnels);
    const echoes = await Promise.all(alive.map((o, i) => roundTrip(o.c, `survivor ${i}`)));
    echoes.forEach((m, i) => assert.equal(m.data.toString(), `survivor ${i}`));
    // And the replacement serves new connections.
    const fresh = await Promise.all(Array.from({ length: 20 }, () => openClient(wsUrl)));
    clients.push(...fresh);
    assert.equal((await roundTrip(fresh[0]!, 'fresh')).data.toString(), 'fresh');
  });
});
