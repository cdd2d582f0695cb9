// Keepalive that no peer notices (issue 10): wsgate pings quiet clients and backends (interval 1 s, timeout 2 s,
// toBackend on) and swallows their pongs, while independent WebSocket implementations talk through it — `ws` and
// Python's `websockets` as clients and as backends, each with and without permessage-deflate — exchanging text,
// binary and fragmented messages and closing with their own codes both ways. Each conversation waits, idle, until
// several of wsgate's pings were answered (a bounded converge on the pongs wsgate counted), then goes on: echoes
// intact, no pong or message the peers did not ask for, clean close codes. (Headless Chromium: ws-chromium.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PerMessageDeflateOptions } from 'ws';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, stopGateway, type Client } from '../helpers/l7-peers.ts';
import { killAllPython, python, type Python } from '../helpers/python.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.ts';

const KEEPALIVE = { intervalSeconds: 1, timeoutSeconds: 2, toBackend: true };
/** wsgate's pings each conversation waits to see answered, idle, before it goes on. */
const PINGS = 2;
const DEFLATE: PerMessageDeflateOptions = { threshold: 0 };

/** A Python `websockets` client: the conversation, a pause (until told "go") while wsgate pings it, and a close. */
const PY_CLIENT = `
import asyncio, sys, websockets

async def main(uri, compression, closer):
    comp = "deflate" if compression == "deflate" else None
    # ping_interval=None: the client's own pings would keep it from ever being quiet.
    async with websockets.connect(uri, compression=comp, ping_interval=None, max_size=None) as ws:
        print("extensions", ",".join(e.name for e in ws.extensions) or "none")
        await ws.send("hello from python")
        assert await ws.recv() == "hello from python", "text echo"
        await ws.send(b"\\x00\\x01\\xfe\\xff")
        assert await ws.recv() == b"\\x00\\x01\\xfe\\xff", "binary echo"
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented", "fragmented echo"
        await ws.send("frag-me")
        assert await ws.recv() == "fragment", "fragmented message from the backend"
        print("idle")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await ws.send("after the pings")
        assert await ws.recv() == "after the pings", "echo after the pings"
        if closer == "client":
            await ws.close(4000, "python bye")
        else:
            await ws.send("close-me 4003")
            try:
                await ws.recv()
            except websockets.ConnectionClosed:
                pass
        print("closed", ws.close_code, ws.close_reason)

asyncio.run(main(*sys.argv[1:]))
`;

/** A Python `websockets` echo backend with the same two commands as the scripted ws backend. */
const PY_SERVER = `
import asyncio, sys, websockets

async def handler(ws, path=None):
    try:
        async for m in ws:
            if m == "frag-me":
                await ws.send(["frag", "ment"])
            elif isinstance(m, str) and m.startswith("close-me "):
                await ws.close(int(m.split()[1]), "server bye")
            else:
                await ws.send(m)
    finally:
        print("backend saw close", ws.close_code, ws.close_reason)

async def main(compression):
    comp = "deflate" if compression == "deflate" else None
    async with websockets.serve(handler, "127.0.0.1", 0, compression=comp, ping_interval=None, max_size=None) as server:
        print("port", server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main(sys.argv[1]))
`;

let gw: TestGateway;
const ws: Record<'plain' | 'deflate', ScriptedBackend> = {} as never;
const py: Record<'plain' | 'deflate', Python> = {} as never;

async function pythonServer(compression: string): Promise<{ proc: Python; port: number }> {
  const proc = python(PY_SERVER, [compression]);
  const first = await proc.next();
  const m = /^port (\d+)$/.exec(first);
  assert.ok(m, `python server did not report its port: ${first}`);
  return { proc, port: Number(m[1]) };
}

before(async () => {
  ws.plain = await startScriptedBackend(false);
  ws.deflate = await startScriptedBackend(DEFLATE);
  const [pyPlain, pyDeflate] = await Promise.all([pythonServer('none'), pythonServer('deflate')]);
  py.plain = pyPlain.proc;
  py.deflate = pyDeflate.proc;
  const route = (name: string, path: string, port: number) =>
    httpRoute({ route: `default/${name}`, path, backends: [backend(`default/${name}:80`, port)], policy: { keepalive: KEEPALIVE } });
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost(
          '*',
          route('ws-plain', '/ws-plain', ws.plain.port),
          route('ws-deflate', '/ws-deflate', ws.deflate.port),
          route('py-plain', '/py-plain', pyPlain.port),
          route('py-deflate', '/py-deflate', pyDeflate.port),
        ),
      ],
    }),
  );
});

after(async () => {
  await stopGateway(gw);
  await ws.plain.close();
  await ws.deflate.close();
  for (const p of Object.values(py)) {
    p.proc.stdin!.end();
    await p.exited;
  }
  killAllPython();
});

/** wsgate's own pings: 'w' and a 32-bit sequence number. */
const isWsgatePing = (p: Buffer): boolean => p.length === 5 && p[0] === 0x77;

/** Waits, bounded, until wsgate has counted `n` more pongs from `direction` on `route` (its pings answered). */
async function pongsAnswered(route: string, direction: 'upstream' | 'downstream', from: number, n: number): Promise<number> {
  let now = from;
  await converge(
    async () => (now = await gw.metric('wsgate_ws_frames_total', { route, direction, kind: 'pong' })) >= from + n,
    `${n} of wsgate's pings answered on ${route} (${direction})`,
    1,
    (KEEPALIVE.intervalSeconds + 2) * (n + 1) * 1000,
  );
  return now;
}

const pongs = (route: string, direction: string): Promise<number> => gw.metric('wsgate_ws_frames_total', { route, direction, kind: 'pong' });

/** Text, binary, fragmented both ways; then idle until wsgate's pings were answered both ways; then more. */
async function wsConversation(variant: 'plain' | 'deflate'): Promise<void> {
  const route = `default/ws-${variant}`;
  const b = ws[variant];
  const c: Client = await openClient(`${gw.wsUrl}/ws-${variant}`, [], { perMessageDeflate: variant === 'deflate' ? DEFLATE : false });
  const conn = await b.connections.shift();
  assert.equal(c.ws.extensions.includes('permessage-deflate'), variant === 'deflate', `${variant}: extensions "${c.ws.extensions}"`);
  const clientPings: Buffer[] = [];
  const clientPongs: Buffer[] = [];
  c.ws.on('ping', (p) => clientPings.push(p));
  c.ws.on('pong', (p) => clientPongs.push(p));

  assert.equal((await roundTrip(c, 'hello')).data.toString(), 'hello');
  const bin = await roundTrip(c, Buffer.from([0, 1, 0xfe, 0xff]));
  assert.deepEqual([bin.isBinary, [...bin.data]], [true, [0, 1, 0xfe, 0xff]]);
  const frag = c.messages.shift();
  c.ws.send('frag', { fin: false });
  c.ws.send('mented', { fin: true });
  assert.equal((await frag).data.toString(), 'fragmented');
  assert.equal((await roundTrip(c, 'frag-me')).data.toString(), 'fragment');

  // Idle: wsgate pings both sides; ws answers by itself; the pongs go no further.
  const up0 = await pongs(route, 'upstream');
  const down0 = await pongs(route, 'downstream');
  await Promise.all([pongsAnswered(route, 'upstream', up0, PINGS), pongsAnswered(route, 'downstream', down0, PINGS)]);
  assert.ok(clientPings.filter(isWsgatePing).length >= PINGS, `${variant}: the client saw ${clientPings.length} pings`);
  assert.ok(conn.pings.filter(isWsgatePing).length >= PINGS, `${variant}: the backend saw ${conn.pings.length} pings`);

  // The endpoints' own pings and pongs pass through, while wsgate's are in flight too.
  const pong = new Promise<Buffer>((resolve) => c.ws.once('pong', resolve));
  c.ws.ping('client ping');
  assert.equal((await pong).toString(), 'client ping');
  const big = Buffer.alloc(300_000, 0x5a);
  assert.ok((await roundTrip(c, big)).data.equals(big), `${variant}: 300 kB echo`);
  assert.equal((await roundTrip(c, 'after the pings')).data.toString(), 'after the pings');
  c.ws.close(4001, 'client bye');
  assert.deepEqual(await conn.closed, { code: 4001, reason: 'client bye' });
  assert.equal((await c.closed).code, 4001);

  assert.deepEqual(conn.pongs, [], `${variant}: the backend got pongs it never asked for`);
  assert.deepEqual(clientPongs.map(String), ['client ping'], `${variant}: the client got pongs it never asked for`);
  assert.deepEqual(conn.pings.filter((p) => !isWsgatePing(p)).map(String), ['client ping']);
  assert.deepEqual(conn.messages, [
    'text:hello',
    'binary:0001feff',
    'text:fragmented',
    'text:frag-me',
    'binary:300000 bytes',
    'text:after the pings',
  ]);

  // The backend closes the next one: its code reaches the client, cleanly.
  const d = await openClient(`${gw.wsUrl}/ws-${variant}`, [], { perMessageDeflate: variant === 'deflate' ? DEFLATE : false });
  const dconn = await b.connections.shift();
  d.ws.send('close-me 4002');
  assert.deepEqual(await d.closed, { code: 4002, reason: 'server bye' });
  assert.deepEqual(await dconn.closed, { code: 4002, reason: 'server bye' });
}

describe('keepalive on, through wsgate: no peer notices', { timeout: 60_000 }, () => {
  test('ws clients and ws backends, with and without permessage-deflate', async () => {
    await Promise.all([wsConversation('plain'), wsConversation('deflate')]);
    // Closes are counted when a tunnel has ended.
    await converge(() => gw.gateway.registry.size === 0, 'every tunnel ended');
    for (const v of ['ws-plain', 'ws-deflate']) {
      const route = `default/${v}`;
      assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'client', code: '4xxx' }), 1, route);
      assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'backend', code: '4xxx' }), 1, route);
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route }), 0, route);
      assert.equal(await gw.metric('wsgate_ws_protocol_errors_total', { route }), 0, route);
    }
  });

  async function pythonClient(variant: 'plain' | 'deflate', closer: 'client' | 'backend'): Promise<void> {
    const route = `default/ws-${variant}`;
    const b = ws[variant];
    const p = python(PY_CLIENT, [`${gw.wsUrl}/ws-${variant}`, variant === 'deflate' ? 'deflate' : 'none', closer]);
    try {
      const conn = await b.connections.shift();
      assert.equal(await p.next(), `extensions ${variant === 'deflate' ? 'permessage-deflate' : 'none'}`);
      assert.equal(await p.next(), 'idle');
      const up0 = await pongs(route, 'upstream');
      const down0 = await pongs(route, 'downstream');
      await Promise.all([pongsAnswered(route, 'upstream', up0, PINGS), pongsAnswered(route, 'downstream', down0, PINGS)]);
      p.say('go');
      const code = closer === 'client' ? '4000 python bye' : '4003 server bye';
      assert.equal(await p.next(), `closed ${code}`);
      const { code: exit, stderr } = await p.exited;
      assert.equal(exit, 0, stderr);
      assert.deepEqual(await conn.closed, closer === 'client' ? { code: 4000, reason: 'python bye' } : { code: 4003, reason: 'server bye' });
      assert.deepEqual(conn.pongs, [], `${variant}: the backend got pongs it never asked for`);
      assert.deepEqual(conn.messages, [
        'text:hello from python',
        'binary:0001feff',
        'text:fragmented',
        'text:frag-me',
        'text:after the pings',
        ...(closer === 'backend' ? ['text:close-me 4003'] : []),
      ]);
    } finally {
      await p.kill();
    }
  }

  test('Python websockets clients, with and without permessage-deflate, closing and being closed', async () => {
    // Two at a time, one per route: the pongs counted on a route are that client's.
    await Promise.all([pythonClient('plain', 'client'), pythonClient('deflate', 'backend')]);
    await Promise.all([pythonClient('plain', 'backend'), pythonClient('deflate', 'client')]);
  });

  async function pythonBackend(variant: 'plain' | 'deflate'): Promise<void> {
    const route = `default/py-${variant}`;
    const server = py[variant];
    const opts = { perMessageDeflate: variant === 'deflate' ? DEFLATE : (false as const) };
    const c = await openClient(`${gw.wsUrl}/py-${variant}`, [], opts);
    assert.equal(c.ws.extensions.includes('permessage-deflate'), variant === 'deflate', `${variant}: extensions "${c.ws.extensions}"`);
    const clientPongs: Buffer[] = [];
    c.ws.on('pong', (p) => clientPongs.push(p));
    assert.equal((await roundTrip(c, 'hello python')).data.toString(), 'hello python');
    assert.deepEqual([...(await roundTrip(c, Buffer.from([0, 1, 0xfe, 0xff]))).data], [0, 1, 0xfe, 0xff]);
    const frag = c.messages.shift();
    c.ws.send('frag', { fin: false });
    c.ws.send('mented', { fin: true });
    assert.equal((await frag).data.toString(), 'fragmented');
    assert.equal((await roundTrip(c, 'frag-me')).data.toString(), 'fragment');
    // Idle: Python answers wsgate's masked pings (a server must refuse unmasked frames: it would close with 1002).
    const down0 = await pongs(route, 'downstream');
    const up0 = await pongs(route, 'upstream');
    await Promise.all([pongsAnswered(route, 'downstream', down0, PINGS), pongsAnswered(route, 'upstream', up0, PINGS)]);
    const big = Buffer.alloc(300_000, 0x33);
    assert.ok((await roundTrip(c, big)).data.equals(big), `${variant}: 300 kB echo`);
    c.ws.close(4001, 'node bye');
    assert.equal((await c.closed).code, 4001);
    assert.equal(await server.next(), 'backend saw close 4001 node bye');
    assert.deepEqual(clientPongs, [], `${variant}: the client got pongs it never asked for`);

    const d = await openClient(`${gw.wsUrl}/py-${variant}`, [], opts);
    d.ws.send('close-me 4002');
    assert.deepEqual(await d.closed, { code: 4002, reason: 'server bye' });
    assert.equal(await server.next(), 'backend saw close 4002 server bye');
  }

  test('Python websockets backends, pinged by wsgate, with and without permessage-deflate', async () => {
    await Promise.all([pythonBackend('plain'), pythonBackend('deflate')]);
    for (const v of ['py-plain', 'py-deflate']) {
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route: `default/${v}` }), 0, v);
      assert.equal(await gw.metric('wsgate_ws_protocol_errors_total', { route: `default/${v}` }), 0, v);
    }
  });
});
