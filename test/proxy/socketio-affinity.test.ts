// socket.io across 3 backend replicas behind wsgate, every client from one IP (as behind NAT): long-polling first,
// then the upgrade to WebSocket. Every request of a session must reach the replica that holds it, or the replica
// answers "Session ID unknown". With loadBalancing Cookie, wsgate's affinity cookie (issue 12) keeps them together;
// without it the same clients fail (the control case), so the test can tell the difference.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Server as IoServer } from 'socket.io';
import { io as ioClient, type Socket as IoSocket } from 'socket.io-client';
import type { Policy } from '../../src/model/table.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { stopGateway } from '../helpers/l7-peers.ts';

interface Replica {
  readonly name: string;
  readonly http: http.Server;
  readonly io: IoServer;
  port: number;
  /** Sessions this replica opened. */
  readonly sessions: Set<string>;
  /** Requests it answered "Session ID unknown" (engine.io error code 1). */
  unknown: number;
}

const replicas: Replica[] = [];
/** One gateway per policy: the polling transport cannot send its own Host header (XMLHttpRequest forbids it). */
let sticky: TestGateway;
let loose: TestGateway;
const CLIENTS = 12;

async function startReplica(name: string): Promise<Replica> {
  const server = http.createServer();
  const io = new IoServer(server, { transports: ['polling', 'websocket'] });
  const r: Replica = { name, http: server, io, port: 0, sessions: new Set(), unknown: 0 };
  io.engine.on('connection_error', (err: { code: number }) => {
    if (err.code === 1) r.unknown++;
  });
  io.on('connection', (socket) => {
    // The engine.io session id, which the client knows as socket.io.engine.id (private in socket.io's types).
    r.sessions.add((socket.conn as unknown as { id: string }).id);
    socket.on('whoami', (ack: (name: string) => void) => ack(name));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  return r;
}

before(async () => {
  for (const name of ['a', 'b', 'c']) replicas.push(await startReplica(name));
  const ports = replicas.map((r) => r.port);
  const only = (policy: Partial<Policy>) =>
    table({ virtualHosts: [vhost('*', httpRoute({ route: 'default/chat', path: '/socket.io', backends: [backend('default/chat:80', ...ports)], policy }))] });
  sticky = await startGateway(only({ loadBalancing: { policy: 'Cookie', cookie: { name: 'INGRESSCOOKIE', maxAgeSeconds: 0, path: '', sameSite: '', secure: false } } }));
  loose = await startGateway(only({ loadBalancing: { policy: 'LeastConnections' } }));
});

after(async () => {
  await stopGateway(sticky);
  await stopGateway(loose);
  for (const r of replicas) {
    await new Promise<void>((resolve) => void r.io.close(() => resolve()));
  }
});

/** One socket.io client through a gateway: resolves once connected and upgraded, or with the error. */
function connect(gw: TestGateway): Promise<{ socket: IoSocket; upgraded: boolean } | { error: string }> {
  return new Promise((resolve) => {
    const socket = ioClient(`http://127.0.0.1:${gw.http.port}`, {
      transports: ['polling', 'websocket'],
      // engine.io-client keeps cookies in Node (for polling and the upgrade) only with credentials on.
      withCredentials: true,
      reconnection: false,
      forceNew: true,
      timeout: 5000,
    });
    let done = false;
    const finish = (r: { socket: IoSocket; upgraded: boolean } | { error: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if ('error' in r) socket.close();
      resolve(r);
    };
    // A session that never upgrades (its requests scattered) is a failure too, not a hang.
    const timer = setTimeout(() => finish({ error: 'not connected and upgraded within 10 s' }), 10_000);
    socket.once('connect_error', (err) => finish({ error: err.message }));
    socket.once('disconnect', (reason) => finish({ error: `disconnected: ${reason}` }));
    socket.once('connect', () => {
      const engine = socket.io.engine;
      if (engine.transport.name === 'websocket') return finish({ socket, upgraded: true });
      engine.once('upgrade', () => finish({ socket, upgraded: true }));
      engine.once('upgradeError', (err: Error) => finish({ error: `upgrade: ${err.message}` }));
    });
  });
}

describe('socket.io behind wsgate, 3 replicas, one client IP', { timeout: 60_000 }, () => {
  test('with the affinity cookie, every client polls then upgrades on one replica: no "Session ID unknown"', async () => {
    const unknownBefore = replicas.reduce((n, r) => n + r.unknown, 0);
    const results = await Promise.all(Array.from({ length: CLIENTS }, () => connect(sticky)));
    const errors = results.flatMap((r) => ('error' in r ? [r.error] : []));
    assert.deepEqual(errors, []);
    const sockets = results.map((r) => (r as { socket: IoSocket }).socket);
    try {
      // Each client talks to the replica that holds its session, over the upgraded WebSocket.
      const names = await Promise.all(sockets.map((s) => s.timeout(5000).emitWithAck('whoami') as Promise<string>));
      for (const [i, s] of sockets.entries()) {
        const holder = replicas.find((r) => r.sessions.has(s.io.engine.id));
        assert.equal(names[i], holder?.name, `client ${i} answered by ${names[i]}, session on ${holder?.name}`);
        assert.equal(s.io.engine.transport.name, 'websocket');
      }
      // Least connections under the cookie spreads new sessions over the replicas, though they share one IP.
      assert.ok(new Set(names).size >= 2, `every session on ${[...new Set(names)].join(',')}`);
      assert.equal(replicas.reduce((n, r) => n + r.unknown, 0), unknownBefore);
    } finally {
      for (const s of sockets) s.close();
    }
  });

  test('without it, the same clients hit "Session ID unknown" (the control case)', async () => {
    const unknownBefore = replicas.reduce((n, r) => n + r.unknown, 0);
    const results = await Promise.all(Array.from({ length: CLIENTS }, () => connect(loose)));
    for (const r of results) if ('socket' in r) r.socket.close();
    assert.ok(results.some((r) => 'error' in r), 'every client connected without affinity');
    assert.ok(replicas.reduce((n, r) => n + r.unknown, 0) > unknownBefore);
  });
});
