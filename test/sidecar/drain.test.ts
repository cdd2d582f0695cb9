// The sidecar's drain on SIGTERM, with 100 open tunnels: readiness false at once; the listener keeps accepting for
// --drain-delay and then refuses; tunnels that end within --drain-timeout end cleanly; the rest are closed when it
// runs out; the process exits 0. The test asserts the order of these events, never their durations.
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
    const closes = clients.map((c, i) => c.closed.then((r) => {
      events.push(`closed ${i}`);
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

    // 5. Within the grace period, half the clients end their tunnels: clean closes, relayed by the sidecar.
    const leaving = clients.slice(0, TUNNELS / 2);
    for (const c of leaving) c.ws.close(1000, 'client leaving');
    const clean = await Promise.all(closes.slice(0, TUNNELS / 2));
    for (const r of clean) assert.deepEqual(r, { code: 1000, reason: 'client leaving' });
    events.push('clean closes done');
    // The tunnels that stay still carry messages while the grace period runs.
    const stayer = clients[TUNNELS - 1]!;
    assert.equal((await roundTrip(stayer, 'still here')).data.toString(), 'still here');

    // 6. At the grace period's end the rest are closed by the sidecar, and it exits 0.
    const forced = await Promise.all([...closes.slice(TUNNELS / 2), lateClosed]);
    for (const r of forced) assert.notEqual(r.code, 1000, 'closed by the sidecar, not by the client');
    const exit = await sidecar.exited;
    events.push('exited');
    assert.equal(exit.signal, null);
    assert.equal(exit.code, 0, exit.stderr);

    // Order: not ready → accepted during the delay → refusing → clean closes → forced closes → exit.
    const at = (e: string): number => events.indexOf(e);
    assert.ok(at('not ready') < at('accepted during delay'));
    assert.ok(at('accepted during delay') < at('refusing'));
    assert.ok(at('refusing') < at('clean closes done'));
    for (let i = 0; i < TUNNELS / 2; i++) assert.ok(at(`closed ${i}`) < at('clean closes done'));
    for (let i = TUNNELS / 2; i < TUNNELS; i++) assert.ok(at(`closed ${i}`) > at('clean closes done'), `tunnel ${i} closed at the end`);
    assert.ok(at('closed late') > at('clean closes done'));

    // The log tells the same story: draining with 100 tunnels, the listener closing, 50 tunnels completed by their
    // clients and 51 (the late one too) closed by the shutdown, then stopped.
    const logs = sidecar.logs();
    const msgs = logs.map((l) => l.msg);
    const draining = logs.find((l) => l.msg === 'draining');
    assert.equal(draining?.tunnels, TUNNELS);
    assert.ok(msgs.indexOf('draining') < msgs.indexOf('listener closing: new connections refused'));
    assert.ok(msgs.indexOf('listener closing: new connections refused') < msgs.lastIndexOf('stopped'));
    const closed = logs.filter((l) => l.msg === 'tunnel closed');
    assert.equal(closed.filter((l) => l.outcome === 'shutdown').length, TUNNELS / 2 + 1);
    assert.equal(closed.filter((l) => l.outcome === 'completed').length, TUNNELS / 2);
  } finally {
    sidecar.child.kill('SIGKILL');
    await app.close();
  }
});
