// The frame-aware policy of issue 10 through `wsgate sidecar` flags, in a real subprocess in front of a `ws` app:
// keepalive both ways (pings that no peer sees answered, a frozen client found dead), message size limits, the
// message rate (Close with one sidecar, Throttle with another), and --no-strict. Metrics are read from the
// sidecar's /metrics, outcomes from its `tunnel closed` log lines.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Opcode } from '../../src/proxy/ws-frames.ts';
import { converge, encodeFrame, handshake, httpHead, openClient, rawConnect, readUntil, roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { killAllPython, python } from '../helpers/python.ts';
import { Collector } from '../helpers/raw-tunnel.ts';
import { killAll, startSidecarProcess, type SidecarProcess } from './process.ts';

const MiB = 1024 * 1024;
const RATE = 10;

const PY_CLIENT = `
import asyncio, sys, websockets

async def main(uri):
    async with websockets.connect(uri, ping_interval=None, compression=None) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        print("open")
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main(sys.argv[1]))
`;

let app: WsBackend;
/** Strict, keepalive both ways, size limits, the rate with Close. */
let strict: SidecarProcess;
/** --no-strict, the rate with Throttle, keepalive off. */
let lenient: SidecarProcess;

before(async () => {
  app = await startWsBackend({ perMessageDeflate: false, maxPayload: 0 });
  [strict, lenient] = await Promise.all([
    startSidecarProcess(app.port, [
      '--name', 'frames',
      '--keepalive-interval', '1s',
      '--keepalive-timeout', '2s',
      '--keepalive-to-backend',
      '--max-message-bytes', String(MiB),
      '--max-backend-message-bytes', String(MiB),
      '--max-messages-per-second', String(RATE),
      '--on-exceed', 'Close',
      '--drain-delay', '0s',
      '--drain-timeout', '0s',
    ]),
    startSidecarProcess(app.port, [
      '--name', 'lenient',
      '--no-strict',
      '--keepalive-interval', '0s',
      '--max-messages-per-second', String(RATE),
      '--drain-delay', '0s',
      '--drain-timeout', '0s',
    ]),
  ]);
  await converge(async () => (await strict.admin('/readyz')).code === 200 && (await lenient.admin('/readyz')).code === 200, 'sidecars ready', 2, 15_000);
});

after(async () => {
  for (const s of [strict, lenient]) s?.child.kill('SIGTERM');
  await Promise.all([strict?.exited, lenient?.exited]);
  await app?.close();
  killAll();
  killAllPython();
});

const isWsgatePing = (p: Buffer): boolean => p.length === 5 && p[0] === 0x77;

function tunnelClosed(s: SidecarProcess, outcome: string): number {
  return s.logs().filter((l) => l.msg === 'tunnel closed' && l.outcome === outcome).length;
}

describe('wsgate sidecar frame flags in front of an app', { timeout: 60_000 }, () => {
  test('--keepalive-interval 1s --keepalive-to-backend: the client and the app are pinged; neither sees the other\'s pongs', async () => {
    const c = await openClient(strict.url, [], { perMessageDeflate: false });
    const conn = await app.connections.shift();
    const clientPings: Buffer[] = [];
    const appPings: Buffer[] = [];
    const pongs: Buffer[] = [];
    c.ws.on('ping', (p) => clientPings.push(p));
    c.ws.on('pong', (p) => pongs.push(p));
    conn.ws.on('ping', (p) => appPings.push(p));
    conn.ws.on('pong', (p) => pongs.push(p));
    assert.equal((await roundTrip(c, 'hello')).data.toString(), 'hello');
    await converge(() => clientPings.filter(isWsgatePing).length >= 2 && appPings.filter(isWsgatePing).length >= 2, 'two pings each way', 1, 12_000);
    assert.equal((await roundTrip(c, 'still here')).data.toString(), 'still here');
    assert.deepEqual(pongs, []);
    await converge(async () => (await strict.metric('wsgate_ws_frames_total', { route: 'frames', direction: 'upstream', kind: 'pong' })) >= 2, 'pongs counted');
    c.ws.close(1000);
    assert.equal((await conn.closed).code, 1000);
  });

  test('a client frozen by SIGSTOP is found dead: the app gets 1001, the tunnel ends as peer_timeout', async () => {
    const p = python(PY_CLIENT, [strict.url]);
    try {
      const conn = await app.connections.shift();
      assert.equal(await p.next(), 'open');
      p.proc.kill('SIGSTOP');
      assert.deepEqual(await conn.closed, { code: 1001, reason: 'peer did not answer' });
      await converge(async () => (await strict.metric('wsgate_ws_keepalive_timeouts_total', { route: 'frames', side: 'client' })) === 1, 'counted');
      await converge(() => tunnelClosed(strict, 'peer_timeout') === 1, 'logged as peer_timeout');
    } finally {
      await p.kill();
    }
  });

  test('--max-message-bytes: a 2 MiB message gets the client 1009 and the app 1001; 1 MiB passes', async () => {
    const c = await openClient(strict.url, [], { perMessageDeflate: false, maxPayload: 0 });
    const conn = await app.connections.shift();
    const mib = randomBytes(MiB);
    assert.ok((await roundTrip(c, mib)).data.equals(mib));
    c.ws.send(randomBytes(2 * MiB));
    assert.equal((await c.closed).code, 1009);
    assert.equal((await conn.closed).code, 1001);
    await converge(async () => (await strict.metric('wsgate_ws_limit_closes_total', { route: 'frames', limit: 'message_size' })) === 1, 'counted');
  });

  test('--max-messages-per-second with --on-exceed Close: a flood gets the client 1008 and the app 1001', async () => {
    const c = await openClient(strict.url, [], { perMessageDeflate: false });
    const conn = await app.connections.shift();
    for (let i = 0; i < 4 * RATE; i++) c.ws.send(`m${i}`);
    assert.equal((await c.closed).code, 1008);
    assert.equal((await conn.closed).code, 1001);
    await converge(async () => (await strict.metric('wsgate_ws_limit_closes_total', { route: 'frames', limit: 'message_rate' })) === 1, 'counted');
  });

  test('--max-messages-per-second alone throttles a flood: every message arrives, throttled time is counted', async () => {
    const c = await openClient(lenient.url, [], { perMessageDeflate: false });
    const conn = await app.connections.shift();
    const n = 2 * RATE;
    for (let i = 0; i < n; i++) c.ws.send(`m${i}`);
    for (let i = 0; i < n; i++) assert.equal((await c.messages.shift()).data.toString(), `m${i}`);
    c.ws.close(1000);
    assert.equal((await conn.closed).code, 1000);
    await converge(async () => (await lenient.metric('wsgate_ws_throttled_seconds_total', { route: 'lenient' })) > 0, 'throttled time counted');
  });

  test('--no-strict: an unmasked client frame is counted and passed on', async () => {
    const client = await rawConnect(lenient.listenPort, true);
    client.write(handshake({ host: 'app.test' }));
    const { value: head, rest } = await readUntil(client, httpHead);
    assert.match(head, /^HTTP\/1\.1 101/);
    const atClient = new Collector(client, rest);
    const conn = await app.connections.shift();
    const appError = new Promise<string>((resolve) => conn.ws.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message)));
    client.write(encodeFrame(Opcode.TEXT, 'unmasked', false));
    // The frame reached the app (a strict wsgate would have kept it and sent the app a 1001): ws refuses it itself,
    // and its own 1002 comes back to the client.
    assert.equal(await appError, 'WS_ERR_EXPECTED_MASK');
    await atClient.until((x) => x.frames().some((f) => f.opcode === Opcode.CLOSE), 'a close frame');
    assert.deepEqual(atClient.frames().map((f) => [f.opcode, f.payload.readUInt16BE(0)]), [[Opcode.CLOSE, 1002]], "the app's 1002, relayed");
    await converge(async () => (await lenient.metric('wsgate_ws_protocol_errors_total', { route: 'lenient', reason: 'unmasked_client_frame' })) === 1, 'counted');
    client.destroy();
  });
});
