// The idle timeout of a WebSocket tunnel (issue 10): before the TCP close, wsgate sends each side a 1001 close
// frame, so that peers see a clean close ("going away"), not an abnormal one (1006). Seen by `ws` and by Python's
// `websockets`, as clients and as backends.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/model/table.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';
import { killAllPython, python, type Python } from '../helpers/python.ts';

const IDLE_SECONDS = 1;
const NO_KEEPALIVE = { intervalSeconds: 0, timeoutSeconds: 30, toBackend: false };

const PY_CLIENT = `
import asyncio, sys, websockets

async def main(uri):
    async with websockets.connect(uri, ping_interval=None, compression=None) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        print("open")
        try:
            await ws.recv()
        except websockets.ConnectionClosed:
            pass
        print("closed", ws.close_code, ws.close_reason)

asyncio.run(main(sys.argv[1]))
`;

const PY_SERVER = `
import asyncio, sys, websockets

async def echo(ws, path=None):
    try:
        async for m in ws:
            await ws.send(m)
    finally:
        print("backend saw close", ws.close_code, ws.close_reason)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None, compression=None) as server:
        print("port", server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
`;

let gw: TestGateway;
let echo: WsBackend;
let pyServer: Python;

before(async () => {
  echo = await startWsBackend({ perMessageDeflate: false });
  pyServer = python(PY_SERVER);
  const m = /^port (\d+)$/.exec(await pyServer.next());
  assert.ok(m, 'the python server reports its port');
  const route = (name: string, port: number, policy: Partial<Policy>) =>
    httpRoute({ route: `default/${name}`, path: `/${name}`, backends: [backend(`default/${name}:80`, port)], policy: { idleTimeoutSeconds: IDLE_SECONDS, keepalive: NO_KEEPALIVE, ...policy } });
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost(
          '*',
          route('idle-ws', echo.port, {}),
          route('idle-py', Number(m[1]), {}),
          // Keepalive pings every second, idle after three: wsgate's own pings and pongs are not traffic.
          route('idle-keepalive', echo.port, { idleTimeoutSeconds: 3, keepalive: { intervalSeconds: 1, timeoutSeconds: 2, toBackend: false } }),
        ),
      ],
    }),
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
  await pyServer.kill();
  killAllPython();
});

const EXPECTED = { code: 1001, reason: 'idle timeout' };

describe('idle timeout with close frames', { timeout: 30_000 }, () => {
  test('a ws client and a ws backend both get 1001 "idle timeout", not 1006', async () => {
    const c = await openClient(`${gw.wsUrl}/idle-ws`, [], { perMessageDeflate: false });
    const conn = await echo.connections.shift();
    assert.equal((await roundTrip(c, 'then silence')).data.toString(), 'then silence');
    assert.deepEqual(await c.closed, EXPECTED);
    assert.deepEqual(await conn.closed, EXPECTED);
    await converge(async () => (await gw.metric('wsgate_connections_total', { route: 'default/idle-ws', outcome: 'idle_timeout' })) === 1, 'outcome idle_timeout');
    assert.equal(await gw.metric('wsgate_ws_closes_total', { route: 'default/idle-ws', initiator: 'wsgate', code: '1001' }), 1);
  });

  test('a Python client gets 1001 "idle timeout" (and its ws backend too)', async () => {
    const p = python(PY_CLIENT, [`${gw.wsUrl}/idle-ws`]);
    try {
      const conn = await echo.connections.shift();
      assert.equal(await p.next(), 'open');
      assert.equal(await p.next(), 'closed 1001 idle timeout');
      assert.deepEqual(await conn.closed, EXPECTED);
      assert.equal((await p.exited).code, 0);
    } finally {
      await p.kill();
    }
  });

  test('a Python backend gets 1001 "idle timeout" (and its ws client too)', async () => {
    const c = await openClient(`${gw.wsUrl}/idle-py`, [], { perMessageDeflate: false });
    assert.equal((await roundTrip(c, 'then silence')).data.toString(), 'then silence');
    assert.deepEqual(await c.closed, EXPECTED);
    assert.equal(await pyServer.next(), 'backend saw close 1001 idle timeout');
  });

  test(
    'keepalive pings do not keep an idle tunnel open: it is closed after idleTimeoutSeconds',
    async () => {
      const c = await openClient(`${gw.wsUrl}/idle-keepalive`, [], { perMessageDeflate: false });
      await echo.connections.shift();
      assert.equal((await roundTrip(c, 'then silence')).data.toString(), 'then silence');
      // 3 s idle, two sweeps, and slack; the client answers every ping meanwhile (ws does).
      const verdict = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still open 7 s after the last message')), 7_000).unref());
      try {
        assert.deepEqual(await Promise.race([c.closed, verdict]), EXPECTED);
      } finally {
        c.ws.terminate();
      }
    },
  );
});
