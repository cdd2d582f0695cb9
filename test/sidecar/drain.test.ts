// The sidecar's drain on SIGTERM, with 100 open tunnels: readiness false at once; the listener keeps accepting for
// --drain-delay and then refuses; then every WebSocket gets a 1001 Going Away, the closes spread over
// --drain-timeout rather than all at once; the process exits 0. The test asserts the order of these events and how
// the closes spread, never a duration.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import { converge, openClient, roundTrip, startWsBackend, type Client } from '../helpers/l7-peers.ts';
import { killAll, startSidecarProcess } from './process.ts';

after(killAll);

const TUNNELS = 100;

/** Resolves with the error code of a TCP connect to the port (undefined when it connects). */
async function connectResult(port: number): Promise<string | undefined> {
  const s = net.connect({ host: '127.0.0.1', port });
  return new Promise((resolve) => {
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

test('drains 100 tunnels on SIGTERM: not ready at once, refuses after the delay, closes the rest at the grace period\'s end, exits 0', { timeout: 90_000 }, async () => {
  const app = await startWsBackend();
  // The delay only has to outlast the few requests the test makes while it runs; the grace period, the clean
  // closes of half the tunnels.
  const sidecar = await startSidecarProcess(app.port, ['--name', 'drain', '--drain-delay', '3s', '--drain-timeout', '4s']);
  const events: string[] = [];
  try {
    await converge(async () => (await sidecar.admin('/readyz')).code === 200, 'ready', 2, 15_000);

    // 1. 100 tunnels, each proven end to end.
    const clients: Client[] = [];
    for (let i = 0; i < TUNNELS; i++) clients.push(await openClient(sidecar.url));
    await Promise.all(clients.map(async (c, i) => assert.equal((await roundTrip(c, `m${i}`)).data.toString(), `m${i}`)));
    await converge(async () => (await sidecar.metric('wsgate_connections_active', { route: 'drain' })) === TUNNELS, '100 live tunnels', 1);
    const closedAt: number[] = [];
    const closes = clients.map((c, i) => c.closed.then((r) => {
      events.push(`closed ${i}`);
      closedAt[i] = performance.now();
      return r;
    }));

    // 2. SIGTERM: readiness false at once (the first /readyz that answers after the signal), tunnels untouched.
    sidecar.child.kill('SIGTERM');
    await converge(async () => {
      const r = await sidecar.admin('/readyz');
      return r.code === 503 && r.body.includes('draining');
    }, '/readyz 503 draining', 1, 10_000);
    events.push('not ready');

    // 3. During the delay the listener still accepts: a client sent here by a stale endpoint list gets through.
    const late = await openClient(sidecar.url);
    assert.equal((await roundTrip(late, 'late')).data.toString(), 'late');
    const lateClosed = late.closed.then((r) => {
      events.push('closed late');
      return r;
    });
    events.push('accepted during delay');

    // 4. After the delay: refused.
    await converge(async () => (await connectResult(sidecar.listenPort)) === 'ECONNREFUSED', 'new connections refused', 1, 15_000);
    events.push('refusing');

    // 5. Then every tunnel gets a 1001, spread over the drain timeout: no client sees 1006, and the tunnels that
    // have not had theirs yet still carry messages.
    const stayer = clients[TUNNELS - 1]!;
    assert.equal((await roundTrip(stayer, 'still here')).data.toString(), 'still here');
    const results = await Promise.all([...closes, lateClosed]);
    for (const r of results) assert.deepEqual(r, { code: 1001, reason: 'going away' });
    events.push('all closed');
    const exit = await sidecar.exited;
    events.push('exited');
    assert.equal(exit.signal, null);
    assert.equal(exit.code, 0, exit.stderr);

    // Order: not ready → accepted during the delay → refusing → closes → exit.
    const at = (e: string): number => events.indexOf(e);
    assert.ok(at('not ready') < at('accepted during delay'));
    assert.ok(at('accepted during delay') < at('refusing'));
    // The closes begin as the listener closes (the first one goes at once), never during the delay.
    for (let i = 0; i < TUNNELS; i++) assert.ok(at(`closed ${i}`) > at('accepted during delay'), `tunnel ${i} closed after the delay`);
    // And they are spread: the last arrives well after the first (a 4 s window), not in one burst.
    const times = clients.map((_, i) => closedAt[i]!).sort((a, b) => a - b);
    assert.ok(times.at(-1)! - times[0]! > 2000, `closes spread over ${Math.round(times.at(-1)! - times[0]!)} ms`);
    assert.ok(at('all closed') < at('exited'));

    // The log tells the same story: draining with 100 tunnels, the listener closing, the drain's progress each
    // second, 101 tunnels (the late one too) closed by the shutdown with a 1001 from wsgate, then stopped.
    const logs = sidecar.logs();
    const msgs = logs.map((l) => l.msg);
    const draining = logs.find((l) => l.msg === 'draining');
    assert.equal(draining?.tunnels, TUNNELS);
    assert.ok(msgs.indexOf('draining') < msgs.indexOf('listener closing: new connections refused'));
    assert.ok(msgs.indexOf('listener closing: new connections refused') < msgs.lastIndexOf('stopped'));
    assert.ok(logs.some((l) => l.msg === 'draining' && typeof l.remaining === 'number'), 'progress lines while draining');
    const closed = logs.filter((l) => l.msg === 'tunnel closed');
    assert.equal(closed.filter((l) => l.outcome === 'shutdown' && l.initiator === 'wsgate' && l.closeCode === 1001).length, TUNNELS + 1);
  } finally {
    sidecar.child.kill('SIGKILL');
    await app.close();
  }
});
