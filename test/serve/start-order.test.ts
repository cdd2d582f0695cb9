// Issue 9, item 11: nothing listens before it can route. A client that connects at the first instant the port
// accepts, and every client after it, is routed by the configured table: no `404 No route` from a process (or a
// replacement worker) that bound before it had its table. A table of 1,000 routes makes the load take long enough
// that a process binding first would answer many handshakes with 404.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { converge, handshake, httpHead, readUntil, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir, type Obj } from '../helpers/serve-harness.ts';
import { killAll, spawnServe, workerStatus, WORKER_SETTINGS, type ServeProcess } from './serve-process.ts';

const ROUTES = 1_000;
const HANDSHAKES = 200;
const LANES = 4;

let echo: WsBackend;
let dir: ConfigDir;

before(async () => {
  echo = await startWsBackend();
  dir = createConfigDir();
  const objects: Obj[] = [...backendService('echo', echo.port)];
  for (let i = 0; i < ROUTES; i++) {
    objects.push(webSocketRoute(`r${i}`, { hostnames: [`h${i}.test`], rules: [{ path: '/', backends: [{ service: 'echo' }] }] }));
  }
  dir.write('routes.yaml', objects);
});

after(async () => {
  killAll();
  await echo?.close();
  dir?.dispose();
});

/** The status of one WebSocket handshake on a connected socket, or 'reset' when the connection broke first. */
async function statusOn(socket: net.Socket, i: number): Promise<number | 'reset'> {
  socket.on('error', () => {});
  try {
    socket.write(handshake({ host: `h${i % ROUTES}.test`, path: '/' }));
    const { value } = await readUntil(socket, httpHead);
    return Number(value.split(' ')[1]);
  } catch {
    return 'reset';
  } finally {
    socket.destroy();
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Connects as soon as the port accepts (retrying refusals for at most 30 s) and handshakes on that connection. */
async function firstHandshake(port: number, p: ServeProcess): Promise<number | 'reset'> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      return await statusOn(await connect(port), 0);
    } catch {
      if (p.exit()) throw new Error(`wsgate exited: ${p.exit()!.stderr}`);
      if (performance.now() > deadline) throw new Error('the port never accepted');
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** `count` handshakes over LANES parallel lanes, as fast as they complete; statuses counted. */
async function hammer(port: number, count: number, counts: Map<number | 'reset' | 'refused', number>, until?: () => boolean): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count || (until !== undefined && !until())) {
      const i = next++;
      if (i > count * 50) throw new Error('hammer bound reached');
      let status: number | 'reset' | 'refused';
      try {
        status = await statusOn(await connect(port), i);
      } catch {
        status = 'refused';
      }
      counts.set(status, (counts.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
}

for (const setting of WORKER_SETTINGS) {
  describe(`wsgate serve with ${setting.name}: routes from the first connection it accepts`, { timeout: 120_000 }, () => {
    test(`answers the first handshake and ${HANDSHAKES} more from the first instant the port accepts without a 404`, async () => {
      const p = await spawnServe(dir.path, [...setting.args, '--log-level', 'warn']);
      try {
        const first = await firstHandshake(p.httpPort, p);
        const counts = new Map<number | 'reset' | 'refused', number>();
        await hammer(p.httpPort, HANDSHAKES, counts);
        const seen = `first: ${first}, then: ${JSON.stringify([...counts])}; log: ${p.stdout().slice(-2000)}`;
        assert.equal(first, 101, seen);
        assert.equal(counts.get(404), undefined, seen);
        assert.equal(counts.get(101), HANDSHAKES, seen);
      } finally {
        await p.stop();
      }
    });

    if (setting.args.length === 0) {
      test('answers no handshake with 404 while a SIGKILLed worker is replaced', async () => {
        const p = await spawnServe(dir.path, [...setting.args, '--log-level', 'error']);
        try {
          await p.ready(60_000);
          const before = await workerStatus(p);
          assert.ok(before.length >= 2, JSON.stringify(before));
          const victim = before[0]!;
          const counts = new Map<number | 'reset' | 'refused', number>();
          let replaced = false;
          const watch = converge(
            async () => {
              const now = await workerStatus(p);
              return now.length === before.length && !now.some((w) => w.pid === victim.pid) && now.every((w) => w.notReady === null);
            },
            'a replacement worker ready',
            3,
            30_000,
          ).then(() => (replaced = true));
          process.kill(victim.pid, 'SIGKILL');
          // Handshakes all through the replacement, and HANDSHAKES more once it is ready.
          await hammer(p.httpPort, HANDSHAKES, counts, () => replaced);
          await watch;
          await hammer(p.httpPort, HANDSHAKES, counts);
          assert.equal(counts.get(404), undefined, `statuses: ${JSON.stringify([...counts])}`);
          assert.ok((counts.get(101) ?? 0) >= 2 * HANDSHAKES, `statuses: ${JSON.stringify([...counts])}`);
        } finally {
          await p.stop();
        }
      });
    }
  });
}
