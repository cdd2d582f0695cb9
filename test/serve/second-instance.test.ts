// Issue 9, item 12: a port held by anyone else fails the start, whatever --workers says. Workers bind with
// SO_REUSEPORT, which Linux lets any process of the same user join: without the primary's exclusive probe, a second
// wsgate would silently share the first one's port (two configurations answering alternately). The error keeps its
// stable code (WSGATE_ERR_LISTEN) and its cause (EADDRINUSE) on the way out. A TCPTunnel port held by another process
// (here one that uses SO_REUSEPORT itself) is not shared either: /readyz names it, and it is bound once it is free.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { closeServer, converge, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, handshakeStatus, webSocketRoute, type ConfigDir, type Obj } from '../helpers/serve-harness.ts';
import { freePort, killAll, spawnServe, WORKER_SETTINGS } from './serve-process.ts';

let echo: WsBackend;
let first: ConfigDir;
let second: ConfigDir;

function tcpTunnel(name: string, port: number): Obj {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'TCPTunnel',
    metadata: { name, namespace: 'default' },
    spec: { port, backends: [{ service: 'echo', port: 80 }] },
  };
}

before(async () => {
  echo = await startWsBackend();
  first = createConfigDir();
  first.write('first.yaml', [...backendService('echo', echo.port), webSocketRoute('first', { hostnames: ['first.test'], rules: [{ backends: [{ service: 'echo' }] }] })]);
  second = createConfigDir();
  second.write('second.yaml', [...backendService('echo', echo.port), webSocketRoute('second', { hostnames: ['second.test'], rules: [{ backends: [{ service: 'echo' }] }] })]);
});

after(async () => {
  killAll();
  await echo?.close();
  first?.dispose();
  second?.dispose();
});

for (const running of WORKER_SETTINGS) {
  for (const starting of WORKER_SETTINGS) {
    describe(`a second wsgate with ${starting.name} on the port of one with ${running.name}`, { timeout: 150_000 }, () => {
      test('exits 1 with WSGATE_ERR_LISTEN and EADDRINUSE, and the first keeps serving its own configuration alone', async () => {
        const a = await spawnServe(first.path, [...running.args, '--log-level', 'warn']);
        try {
          await a.ready();
          const b = await spawnServe(second.path, [...starting.args, '--log-level', 'warn'], { httpPort: a.httpPort });
          // Bounded: a second instance that shares the port never exits on its own.
          const timer = setTimeout(() => b.child.kill('SIGKILL'), 20_000);
          const exit = await b.exited;
          clearTimeout(timer);
          assert.notEqual(exit.signal, 'SIGKILL', 'the second wsgate started (and was killed after 20 s)');
          assert.equal(exit.code, 1, exit.stderr);
          assert.match(exit.stderr, /WSGATE_ERR_LISTEN/);
          assert.match(exit.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${a.httpPort}`));
          // Every connection still reaches the first: the second's route is nowhere.
          for (let i = 0; i < 20; i++) {
            assert.equal(await handshakeStatus(`ws://127.0.0.1:${a.httpPort}/`, 'first.test'), 101);
            assert.equal(await handshakeStatus(`ws://127.0.0.1:${a.httpPort}/`, 'second.test'), 404);
          }
        } finally {
          await a.stop();
        }
      });
    });
  }

  describe(`a TCPTunnel port held by another process, with ${running.name}`, { timeout: 150_000 }, () => {
    test('is not shared: /readyz names it until it is free, then wsgate binds it and tunnels', async () => {
      const port = await freePort();
      // The other process joins SO_REUSEPORT groups itself: exactly what a worker's bind would silently share.
      let heldAccepted = 0;
      const holder = net.createServer((s) => {
        heldAccepted++;
        s.destroy();
      });
      await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port, reusePort: true }, resolve));
      const dir = createConfigDir();
      dir.write('tunnel.yaml', [...backendService('echo', echo.port), tcpTunnel('held', port)]);
      const p = await spawnServe(dir.path, [...running.args, '--log-level', 'error']);
      try {
        await converge(async () => {
          const r = await p.admin('/readyz');
          return r.code === 503 && r.body.includes(`tunnel ports not bound: ${port}`);
        }, `/readyz naming port ${port}`, 3, 30_000);
        // Every connection goes to the holder: wsgate shares nothing.
        for (let i = 0; i < 20; i++) {
          const s = net.connect({ host: '127.0.0.1', port });
          s.on('error', () => {});
          await new Promise((r) => s.once('close', r));
        }
        assert.equal(heldAccepted, 20);

        await closeServer(holder);
        await p.ready(30_000);
        // The tunnel is wsgate's now: a WebSocket handshake through it reaches the echo backend.
        assert.equal(await handshakeStatus(`ws://127.0.0.1:${port}/`, 'any.test'), 101);
      } finally {
        await closeServer(holder);
        await p.stop();
        dir.dispose();
      }
    });
  });
}
