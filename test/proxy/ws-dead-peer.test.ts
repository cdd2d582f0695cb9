// Dead peers found by keepalive (issue 10; traefik #10627: a client whose cable is pulled keeps its backend
// connection open forever). A peer that stops answering is played by a real process frozen with SIGSTOP: its kernel
// still acknowledges TCP, exactly like a host that vanished behind a NAT or a laptop that went to sleep, so only a
// ping that goes unanswered can tell. Within interval + timeout (+ the 1 s sweep) the live side gets a 1001 close
// frame, the tunnel ends with outcome peer_timeout, and wsgate_ws_keepalive_timeouts_total{side} counts it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';
import { killAllPython, python, type Python } from '../helpers/python.ts';

const INTERVAL = 1;
const TIMEOUT = 2;
/** The latest a dead peer may be found after it froze: interval + timeout, two sweeps, and 1 s for a busy machine. */
const DETECTED_WITHIN_MS = (INTERVAL + TIMEOUT + 2 + 1) * 1000;

/** A client that talks, says "open", then waits on stdin (where SIGSTOP finds it). */
const PY_CLIENT = `
import asyncio, sys, websockets

async def main(uri):
    async with websockets.connect(uri, ping_interval=None, max_size=None, compression=None) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        print("open")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main(sys.argv[1]))
`;

const PY_SERVER = `
import asyncio, sys, websockets

async def echo(ws, path=None):
    async for m in ws:
        await ws.send(m)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None, max_size=None, compression=None) as server:
        print("port", server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
`;

let gw: TestGateway;
let echo: WsBackend;
let pyServer: Python;

before(async () => {
  echo = await startWsBackend({ perMessageDeflate: false, maxPayload: 0 });
  pyServer = python(PY_SERVER);
  const m = /^port (\d+)$/.exec(await pyServer.next());
  assert.ok(m, 'the python server reports its port');
  const route = (name: string, port: number, toBackend: boolean) =>
    httpRoute({
      route: `default/${name}`,
      path: `/${name}`,
      backends: [backend(`default/${name}:80`, port)],
      policy: { keepalive: { intervalSeconds: INTERVAL, timeoutSeconds: TIMEOUT, toBackend } },
    });
  gw = await startGateway(
    table({ virtualHosts: [vhost('*', route('client-dies', echo.port, false), route('client-dies-busy', echo.port, false), route('backend-dies', Number(m[1]), true))] }),
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
  await pyServer.kill();
  killAllPython();
});

/** Resolves with `p`'s value, or rejects when it takes longer than `ms` from `since`. */
async function within<T>(p: Promise<T>, since: number, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), Math.max(0, since + ms - performance.now()));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function endedWith(route: string, outcome: string): Promise<void> {
  await converge(async () => (await gw.metric('wsgate_connections_total', { route, outcome })) === 1, `${route} ended with ${outcome}`);
}

describe('dead peers', { timeout: 60_000 }, () => {
  test('a client frozen by SIGSTOP is found dead: its backend gets 1001, counted as a client keepalive timeout', async () => {
    const route = 'default/client-dies';
    const client = python(PY_CLIENT, [`${gw.wsUrl}/client-dies`]);
    try {
      const conn = await echo.connections.shift();
      assert.equal(await client.next(), 'open');
      client.proc.kill('SIGSTOP');
      const frozeAt = performance.now();
      const closed = await within(conn.closed, frozeAt, DETECTED_WITHIN_MS, 'the backend told of the dead client');
      assert.deepEqual(closed, { code: 1001, reason: 'peer did not answer' });
      await endedWith(route, 'peer_timeout');
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route, side: 'client' }), 1);
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route, side: 'backend' }), 0);
      assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'wsgate', code: '1001' }), 1);
    } finally {
      await client.kill();
    }
  });

  test('a client frozen while a big message streams to it is found dead once its socket takes nothing more', async () => {
    const route = 'default/client-dies-busy';
    const client = python(PY_CLIENT, [`${gw.wsUrl}/client-dies-busy`]);
    try {
      const conn = await echo.connections.shift();
      assert.equal(await client.next(), 'open');
      client.proc.kill('SIGSTOP');
      const frozeAt = performance.now();
      // 64 MiB in one frame: far more than the kernel buffers between here and the frozen client, so wsgate is
      // left inside the frame, where it cannot put a ping. Its writes stop making progress: that is the verdict.
      conn.ws.send(Buffer.alloc(64 * 1024 * 1024, 0x42));
      const closed = await within(conn.closed, frozeAt, DETECTED_WITHIN_MS, 'the backend told of the dead client');
      assert.deepEqual(closed, { code: 1001, reason: 'peer did not answer' });
      await endedWith(route, 'peer_timeout');
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route, side: 'client' }), 1);
    } finally {
      await client.kill();
    }
  });

  test('with toBackend, a backend frozen by SIGSTOP is found dead: the client gets 1001, counted as a backend keepalive timeout', async () => {
    const route = 'default/backend-dies';
    const c = await openClient(`${gw.wsUrl}/backend-dies`, [], { perMessageDeflate: false });
    assert.equal((await roundTrip(c, 'hello python')).data.toString(), 'hello python');
    pyServer.proc.kill('SIGSTOP');
    const frozeAt = performance.now();
    try {
      // The client is pinged too, and ws answers: it is alive, and stays so until the backend is found dead.
      const closed = await within(c.closed, frozeAt, DETECTED_WITHIN_MS, 'the client told of the dead backend');
      assert.deepEqual(closed, { code: 1001, reason: 'peer did not answer' });
      await endedWith(route, 'peer_timeout');
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route, side: 'backend' }), 1);
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route, side: 'client' }), 0);
      assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'wsgate', code: '1001' }), 1);
    } finally {
      pyServer.proc.kill('SIGCONT');
    }
  });
});
