// Issue 9, items 15 and 16: /metrics and /readyz mean the same with one process and with several workers.
//  - The primary's gauges (wsgate_config_last_reload_successful, wsgate_routes, ...) are the primary's values, not
//    aggregated with never-set copies in the workers (which made the first read 0 with workers).
//  - /readyz is 503 while a TCPTunnel port is not bound, and names it.
//  - A counter never goes down: a worker killed with SIGKILL takes its gauges with it but leaves its counters and
//    histograms counted; every counter and histogram series scraped after the kill is at least what it was before.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { closeServer, converge, rawExchange, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, handshakeStatus, webSocketRoute, type ConfigDir, type Obj } from '../helpers/serve-harness.ts';
import { freePort, killAll, parseExposition, spawnServe, workerStatus, WORKER_SETTINGS, type ServeProcess } from './serve-process.ts';

const REQUESTS = 40;

let echo: WsBackend;

before(async () => {
  echo = await startWsBackend();
});

after(async () => {
  killAll();
  await echo?.close();
});

function routes(...hosts: string[]): Obj[] {
  return [...backendService('echo', echo.port), ...hosts.map((h) => webSocketRoute(h.split('.')[0]!, { hostnames: [h], rules: [{ backends: [{ service: 'echo' }] }] }))];
}

async function scrape(p: ServeProcess): Promise<Map<string, { type: string; value: number }>> {
  return parseExposition((await p.admin('/metrics')).body);
}

/** Series of counters and histograms in `before` that are lower (or gone) in `after`. */
function decreased(before: Map<string, { type: string; value: number }>, after: Map<string, { type: string; value: number }>): string[] {
  const out: string[] = [];
  for (const [series, { type, value }] of before) {
    if (type !== 'counter' && type !== 'histogram') continue;
    const now = after.get(series)?.value;
    if (now === undefined || now < value) out.push(`${series}: ${value} -> ${now}`);
  }
  return out;
}

/** WebSocket handshakes, 404s and plain HTTP requests: counters in every worker the kernel picks. */
async function traffic(p: ServeProcess): Promise<void> {
  for (let i = 0; i < REQUESTS; i++) {
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.httpPort}/`, 'a.test'), 101);
    assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.httpPort}/`, 'nowhere.test'), 404);
    // A plain GET: the ws backend answers 426.
    const r = await rawExchange(p.httpPort, 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 426);
  }
}

for (const setting of WORKER_SETTINGS) {
  describe(`wsgate serve with ${setting.name}: gauges and readiness`, { timeout: 150_000 }, () => {
    let dir: ConfigDir;
    let p: ServeProcess;

    before(async () => {
      dir = createConfigDir();
      dir.write('config.yaml', routes('a.test', 'b.test'));
      p = await spawnServe(dir.path, [...setting.args, '--log-level', 'error']);
      await p.ready();
    });

    after(async () => {
      await p?.stop();
      dir?.dispose();
    });

    test('reports the primary\'s configuration gauges: 1 after a good load, 0 after a rejected one, 1 again', async () => {
      let m = await scrape(p);
      assert.equal(m.get('wsgate_config_last_reload_successful')?.value, 1);
      assert.equal(m.get('wsgate_routes{kind="http"}')?.value, 2);
      assert.deepEqual([...m].filter(([k]) => k.startsWith('wsgate_build_info{')).map(([, v]) => v.value), [1]);
      assert.ok((m.get('wsgate_config_last_reload_success_timestamp_seconds')?.value ?? 0) > 1.7e9);

      dir.writeText('broken.yaml', 'kind: [\n');
      await converge(async () => (await scrape(p)).get('wsgate_config_last_reload_successful')?.value === 0, 'the gauge at 0', 3, 20_000);
      dir.remove('broken.yaml');
      await converge(async () => (await scrape(p)).get('wsgate_config_last_reload_successful')?.value === 1, 'the gauge at 1 again', 3, 20_000);
      m = await scrape(p);
      assert.equal(m.get('wsgate_config_reloads_total{result="failure"}')?.value, 1);
      assert.equal(m.get('wsgate_config_reloads_total{result="success"}')?.value, 2);
    });

    test('is not ready while a TCPTunnel port is held by another process, naming the port, and ready once it is bound', async () => {
      const port = await freePort();
      const holder = net.createServer((s) => s.destroy());
      await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port }, resolve));
      try {
        dir.write('tunnel.yaml', [
          { apiVersion: 'wsgate.io/v1alpha1', kind: 'TCPTunnel', metadata: { name: 'db', namespace: 'default' }, spec: { port, backends: [{ service: 'echo', port: 80 }] } },
        ]);
        await converge(async () => {
          const r = await p.admin('/readyz');
          return r.code === 503 && r.body.includes(`tunnel ports not bound: ${port}`);
        }, `/readyz naming port ${port}`, 3, 20_000);
      } finally {
        await closeServer(holder);
      }
      await p.ready(30_000);
      dir.remove('tunnel.yaml');
    });
  });
}

describe('wsgate serve with the default --workers: counters across a worker killed with SIGKILL', { timeout: 150_000 }, () => {
  test('keeps every counter and histogram series at least where it was, and counts every request made', async () => {
    const dir = createConfigDir();
    dir.write('config.yaml', routes('a.test'));
    const p = await spawnServe(dir.path, ['--log-level', 'error']);
    try {
      await p.ready();
      await traffic(p);
      const before = await scrape(p);
      assert.equal(before.get('wsgate_http_requests_total{route="default/a",code="426"}')?.value, REQUESTS);
      const workers = await workerStatus(p);
      assert.ok(workers.length >= 2);
      process.kill(workers[0]!.pid, 'SIGKILL');
      await converge(async () => {
        const now = await workerStatus(p);
        return now.length === workers.length && !now.some((w) => w.pid === workers[0]!.pid) && now.every((w) => w.notReady === null);
      }, 'a replacement worker ready', 3, 30_000);
      const afterKill = await scrape(p);
      assert.deepEqual(decreased(before, afterKill), []);
      // The dead worker's share is still counted: nothing was made since the scrape before the kill.
      assert.equal(afterKill.get('wsgate_http_requests_total{route="default/a",code="426"}')?.value, REQUESTS);
      assert.equal(afterKill.get('wsgate_handshake_rejections_total{route="",reason="no_route"}')?.value, REQUESTS);
      // And counting goes on from there.
      await traffic(p);
      const later = await scrape(p);
      assert.deepEqual(decreased(afterKill, later), []);
      assert.equal(later.get('wsgate_http_requests_total{route="default/a",code="426"}')?.value, 2 * REQUESTS);
    } finally {
      await p.stop();
      dir.dispose();
    }
  });
});

describe('wsgate serve --workers 1: counters across a reload', { timeout: 150_000 }, () => {
  test('keeps every counter and histogram series at least where it was', async () => {
    const dir = createConfigDir();
    dir.write('config.yaml', routes('a.test'));
    const p = await spawnServe(dir.path, ['--workers', '1', '--log-level', 'error']);
    try {
      await p.ready();
      await traffic(p);
      const before = await scrape(p);
      dir.write('config.yaml', routes('a.test', 'c.test'));
      await converge(async () => (await handshakeStatus(`ws://127.0.0.1:${p.httpPort}/`, 'c.test')) === 101, 'c.test served', 3, 20_000);
      assert.deepEqual(decreased(before, await scrape(p)), []);
    } finally {
      await p.stop();
      dir.dispose();
    }
  });
});
