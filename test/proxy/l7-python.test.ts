// Interoperability with an independent WebSocket implementation: Python's `websockets` (Debian's
// python3-websockets 10.4, for /usr/bin/python3) as a client and as a backend, through wsgate.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { openClient, Queue, roundTrip, startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';

const PYTHON = '/usr/bin/python3';

const CLIENT_SCRIPT = `
import asyncio, os, sys, websockets

async def main(uri):
    async with websockets.connect(uri, max_size=None, compression=None) as ws:
        await ws.send("hello from python")
        assert await ws.recv() == "hello from python", "text echo"
        await ws.send(b"\\x00\\x01\\xfe\\xff")
        assert await ws.recv() == b"\\x00\\x01\\xfe\\xff", "binary echo"
        big = os.urandom(1024 * 1024)
        await ws.send(big)
        echoed = await ws.recv()
        assert isinstance(echoed, bytes) and echoed == big, "1 MiB echo"
        await ws.close(code=4000, reason="python says bye")
        print("closed", ws.close_code, flush=True)

asyncio.run(main(sys.argv[1]))
`;

const SERVER_SCRIPT = `
import asyncio, sys, websockets

async def echo(ws, path=None):
    try:
        async for message in ws:
            await ws.send(message)
    finally:
        print("backend saw close", ws.close_code, ws.close_reason, flush=True)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None, compression=None) as server:
        print("port", server.sockets[0].getsockname()[1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)

asyncio.run(main())
`;

interface Python {
  readonly proc: ChildProcess;
  readonly lines: Queue<string>;
  readonly exited: Promise<{ code: number | null; stderr: string }>;
}

function python(script: string, args: string[] = []): Python {
  const proc = spawn(PYTHON, ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = new Queue<string>();
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => proc.once('close', (code) => resolve({ code, stderr })));
  return { proc, lines, exited };
}

let echo: WsBackend;
let pyServer: Python;
let gw: TestGateway;

before(async () => {
  echo = await startWsBackend({ maxPayload: 0 });
  pyServer = python(SERVER_SCRIPT);
  const first = await pyServer.lines.shift();
  const m = /^port (\d+)$/.exec(first);
  assert.ok(m, `python server did not report its port: ${first}`);
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('py.test', httpRoute({ route: 'default/py', backends: [backend('default/py:80', Number(m[1]))] })),
        vhost('*', httpRoute({ route: 'default/echo', backends: [backend('default/echo:80', echo.port)] })),
      ],
    }),
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
  pyServer.proc.stdin!.end();
  await pyServer.exited;
});

describe('Python websockets through wsgate', { timeout: 30_000 }, () => {
  test('a Python client exchanges text, binary and 1 MiB messages and closes with 4000', async () => {
    const client = python(CLIENT_SCRIPT, [`${gw.wsUrl}/py-client`]);
    const conn = await echo.connections.shift();
    assert.equal(conn.req.url, '/py-client');
    const { code, stderr } = await client.exited;
    assert.equal(code, 0, stderr);
    assert.equal(await client.lines.shift(), 'closed 4000');
    assert.deepEqual(await conn.closed, { code: 4000, reason: 'python says bye' });
    const seen: string[] = [];
    while (conn.messages.length > 0) {
      const msg = await conn.messages.shift();
      seen.push(msg.isBinary ? `binary ${msg.data.length}` : `text ${msg.data.toString()}`);
    }
    assert.deepEqual(seen, ['text hello from python', 'binary 4', `binary ${1024 * 1024}`]);
  });

  test('a ws client talks to a Python backend: text, binary, 1 MiB, close 4000', async () => {
    const c = await openClient(gw.wsUrl, [], { headers: { Host: 'py.test' }, perMessageDeflate: false, maxPayload: 0 });
    assert.equal((await roundTrip(c, 'hello python')).data.toString(), 'hello python');
    const bin = await roundTrip(c, Buffer.from([0, 1, 0xfe, 0xff]));
    assert.equal(bin.isBinary, true);
    assert.deepEqual([...bin.data], [0, 1, 0xfe, 0xff]);
    const big = randomBytes(1024 * 1024);
    assert.ok((await roundTrip(c, big)).data.equals(big));
    c.ws.close(4000, 'node says bye');
    assert.equal((await c.closed).code, 4000);
    assert.equal(await pyServer.lines.shift(), 'backend saw close 4000 node says bye');
  });
});
