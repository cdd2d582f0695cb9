// Issue 9, item 19: maxConnections and maxConnectionsPerClient are exact per pod, whatever --workers says. With
// several workers the primary holds the count (a limited route's handshake asks it for a slot over IPC); the kernel
// spreads the 30 concurrent handshakes over the workers, and exactly the limit is admitted. A worker killed with
// SIGKILL gives back the slots its connections held. Unlimited routes are not counted anywhere.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { serve, type Server } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { closeServer, converge, handshake, httpHead, listen, rawConnect, readUntil, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import net from 'node:net';
import { attemptHandshake, concurrentHandshakes, type HandshakeAttempt } from '../helpers/handshakes.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate limits test' });
const LIMIT = 10;
const ATTEMPTS = 30;

async function closeAll(held: HandshakeAttempt[]): Promise<void> {
  for (const a of held) a.ws.close();
  await Promise.all(held.map((a) => a.closed));
  held.length = 0;
}

for (const workers of [defaultWorkers(), 1]) {
  describe(`wsgate serve --workers ${workers}: connection limits are the pod's`, { timeout: 90_000 }, () => {
    let echo: WsBackend;
    let dir: ConfigDir;
    let server: Server;
    let port: number;
    let admin: string;
    let tunnelPort: number;
    const held: HandshakeAttempt[] = [];

    before(async () => {
      echo = await startWsBackend();
      const probe = net.createServer();
      tunnelPort = await listen(probe);
      await closeServer(probe);
      dir = createConfigDir();
      dir.write('config.yaml', [
        ...backendService('echo', echo.port),
        webSocketRoute('total', { hostnames: ['total.test'], rules: [{ backends: [{ service: 'echo' }] }], policy: { maxConnections: LIMIT } }),
        webSocketRoute('per-client', { hostnames: ['client.test'], rules: [{ backends: [{ service: 'echo' }] }], policy: { maxConnectionsPerClient: LIMIT } }),
        webSocketRoute('free', { hostnames: ['free.test'], rules: [{ backends: [{ service: 'echo' }] }] }),
        {
          apiVersion: 'wsgate.io/v1alpha1',
          kind: 'TCPTunnel',
          metadata: { name: 'tunnel', namespace: 'default' },
          spec: { port: tunnelPort, maxConnections: LIMIT, backends: [{ service: 'echo', port: 80 }] },
        },
      ]);
      const local = { host: '127.0.0.1', port: 0 };
      server = await serve({
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
        workers,
      });
      port = server.plane.addresses().http!.port;
      admin = `http://127.0.0.1:${server.plane.addresses().admin!.port}`;
    });

    after(async () => {
      for (const a of held) a.ws.terminate();
      await server?.stop();
      await echo?.close();
      dir?.dispose();
    });

    test(`admits exactly ${LIMIT} of ${ATTEMPTS} concurrent handshakes to a route with maxConnections ${LIMIT}, and 429 to the rest`, async () => {
      const { admitted, counts } = await concurrentHandshakes(port, 'total.test', ATTEMPTS);
      held.push(...admitted);
      assert.deepEqual(counts, { 101: LIMIT, 429: ATTEMPTS - LIMIT });
      // Still full: one more is refused.
      assert.equal((await attemptHandshake(port, 'total.test')).status, 429);
    });

    if (workers > 1) {
      test('gives back the slots of a worker killed with SIGKILL: exactly that many are admitted again', async () => {
        const status = (await (await fetch(`${admin}/debug/workers`)).json()) as { pid: number; tunnels: number }[];
        const victim = status.reduce((a, b) => (b.tunnels > a.tunnels ? b : a));
        assert.ok(victim.tunnels > 0, JSON.stringify(status));
        const closed = new Set<HandshakeAttempt>();
        for (const a of held) void a.closed.then(() => closed.add(a));
        process.kill(victim.pid, 'SIGKILL');
        await converge(async () => {
          const now = (await (await fetch(`${admin}/debug/workers`)).json()) as { pid: number; notReady: string | null }[];
          return now.length === workers && !now.some((w) => w.pid === victim.pid) && now.every((w) => w.notReady === null);
        }, 'a replacement worker ready', 3, 30_000);
        // The victim's connections close with it; the others stay open.
        await converge(() => closed.size === victim.tunnels, `the victim's ${victim.tunnels} connections closed`, 1, 10_000);
        const survivors = held.filter((a) => !closed.has(a));
        const { admitted, counts } = await concurrentHandshakes(port, 'total.test', ATTEMPTS);
        assert.deepEqual(counts, { 101: victim.tunnels, 429: ATTEMPTS - victim.tunnels });
        held.length = 0;
        held.push(...survivors, ...admitted);
      });
    }

    test(`admits exactly ${LIMIT} of ${ATTEMPTS} concurrent handshakes from one client to a route with maxConnectionsPerClient ${LIMIT}`, async () => {
      await closeAll(held);
      const { admitted, counts } = await concurrentHandshakes(port, 'client.test', ATTEMPTS);
      held.push(...admitted);
      assert.deepEqual(counts, { 101: LIMIT, 429: ATTEMPTS - LIMIT });
    });

    test('frees a slot when a connection closes: the next handshake is admitted', async () => {
      const one = held.pop()!;
      one.ws.close();
      await one.closed;
      await converge(async () => {
        const a = await attemptHandshake(port, 'client.test');
        if (a.status === 101) held.push(a);
        return a.status === 101;
      }, 'a freed slot', 1, 10_000);
      assert.equal((await attemptHandshake(port, 'client.test')).status, 429);
    });

    test(`admits exactly ${LIMIT} of ${ATTEMPTS} concurrent connections to a TCPTunnel with maxConnections ${LIMIT}`, async () => {
      // Each connection carries a WebSocket handshake to the echo backend: a tunnel answers 101, a refused
      // connection is closed without an answer.
      const sockets = await Promise.all(Array.from({ length: ATTEMPTS }, () => rawConnect(tunnelPort)));
      try {
        const answers = await Promise.all(
          sockets.map(async (s) => {
            s.write(handshake({ host: 'tunnel.test' }));
            return readUntil(s, httpHead).then(({ value }) => value.split(' ')[1] ?? '', () => 'closed');
          }),
        );
        const counts: Record<string, number> = {};
        for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
        assert.deepEqual(counts, { 101: LIMIT, closed: ATTEMPTS - LIMIT });
      } finally {
        for (const s of sockets) s.destroy();
      }
    });

    test(`admits all ${ATTEMPTS} to a route without limits`, async () => {
      const { admitted, counts } = await concurrentHandshakes(port, 'free.test', ATTEMPTS);
      held.push(...admitted);
      assert.deepEqual(counts, { 101: ATTEMPTS });
      await closeAll(held);
    });
  });
}
