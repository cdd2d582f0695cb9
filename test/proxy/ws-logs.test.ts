// The `tunnel closed` log line of a WebSocket tunnel (issue 10): messages each way, who closed first and with which
// code and reason (a peer's text: cut short and escaped), the host and path the handshake was routed on. Read from a
// real gateway's JSON log (pino at info).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/log/logger.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, startWsBackend, stopGateway, type WsBackend } from '../helpers/l7-peers.ts';

interface Line {
  msg: string;
  [k: string]: unknown;
}

const lines: Line[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
    done();
  },
});

let gw: TestGateway;
let echo: WsBackend;

before(async () => {
  echo = await startWsBackend({ perMessageDeflate: false, maxPayload: 0 });
  const policy = { keepalive: { intervalSeconds: 0, timeoutSeconds: 30, toBackend: false }, maxMessageBytes: 1024 };
  gw = await startGateway(
    table({ virtualHosts: [vhost('chat.example', httpRoute({ route: 'default/chat', path: '/room', backends: [backend('default/chat:80', echo.port)], policy }))] }),
    { log: createLogger('info', sink) },
  );
});

after(async () => {
  await stopGateway(gw);
  await echo.close();
});

/** The next `tunnel closed` line after `from` lines (bounded wait). */
async function closedLine(from: number): Promise<Line> {
  let found: Line | undefined;
  await converge(() => (found = lines.slice(from).find((l) => l.msg === 'tunnel closed')) !== undefined, 'a tunnel closed line', 1);
  return found!;
}

const open = (path = '/room/1?token=secret') => openClient(`${gw.wsUrl}${path}`, [], { headers: { Host: 'Chat.Example:80' }, perMessageDeflate: false });

describe('the tunnel closed line of a WebSocket', { timeout: 30_000 }, () => {
  test('counts messages each way (a fragmented message is one), names the client as initiator with its code and reason, the host and the path', async () => {
    const mark = lines.length;
    const c = await open();
    const conn = await echo.connections.shift();
    for (const m of ['one', 'two']) await roundTrip(c, m);
    const third = c.messages.shift();
    c.ws.send('thr', { fin: false });
    c.ws.send('ee', { fin: true });
    await third;
    c.ws.close(4000, 'bye now');
    await conn.closed;
    const l = await closedLine(mark);
    assert.deepEqual(
      { route: l.route, layer: l.layer, outcome: l.outcome, messagesUp: l.messagesUp, messagesDown: l.messagesDown, initiator: l.initiator, closeCode: l.closeCode, closeReason: l.closeReason, host: l.host, path: l.path },
      { route: 'default/chat', layer: 'l7', outcome: 'completed', messagesUp: 3, messagesDown: 3, initiator: 'client', closeCode: 4000, closeReason: 'bye now', host: 'chat.example', path: '/room/1' },
    );
    assert.ok(!JSON.stringify(l).includes('secret'), 'the query string (which may carry a token) is not logged');
  });

  test('names the backend as initiator when it closes first', async () => {
    const mark = lines.length;
    const c = await open();
    const conn = await echo.connections.shift();
    conn.ws.close(4002, 'server done');
    await c.closed;
    const l = await closedLine(mark);
    assert.deepEqual([l.initiator, l.closeCode, l.closeReason, l.messagesUp, l.messagesDown], ['backend', 4002, 'server done', 0, 0]);
  });

  /** Has the backend close with `reason`; returns the closeReason of the tunnel closed line. */
  async function loggedReason(reason: string): Promise<string> {
    const mark = lines.length;
    const c = await open();
    const conn = await echo.connections.shift();
    conn.ws.close(4003, reason);
    await c.closed;
    return (await closedLine(mark)).closeReason as string;
  }

  test('a peer-chosen reason is cut to 64 characters, control characters replaced', async () => {
    const got = await loggedReason(`${'r'.repeat(60)}\t\n"\\ and more after`);
    // JSON escapes the quote and the backslash; the tab and the newline are replaced.
    assert.equal(got, `${'r'.repeat(60)}\ufffd\ufffd"\\`);
  });

  test(
    'a reason cut in the middle of a character keeps the character whole or drops it',
    async () => {
      // 63 characters, then an emoji across the 64th (two UTF-16 code units).
      const got = await loggedReason(`${'r'.repeat(63)}😀 and more after`);
      assert.ok([`${'r'.repeat(63)}`, `${'r'.repeat(63)}😀`].includes(got), JSON.stringify(got.slice(60)));
    },
  );

  test('with no close frame at all, the code is 1006 and nobody initiated', async () => {
    const mark = lines.length;
    const c = await open();
    const conn = await echo.connections.shift();
    await roundTrip(c, 'then gone');
    c.ws.terminate();
    await conn.closed;
    const l = await closedLine(mark);
    assert.deepEqual([l.initiator, l.closeCode, l.messagesUp, l.messagesDown, 'closeReason' in l], ['none', 1006, 1, 1, false]);
  });

  test('names wsgate as initiator when it closes for a limit, with the code it sent the sender', async () => {
    const mark = lines.length;
    const c = await open();
    c.ws.send(Buffer.alloc(2048));
    assert.equal((await c.closed).code, 1009);
    const l = await closedLine(mark);
    assert.deepEqual([l.outcome, l.initiator, l.closeCode], ['limit_exceeded', 'wsgate', 1009]);
  });

  test(
    'a protocol violation is logged with its reason',
    async () => {
      const mark = lines.length;
      const c = await open();
      // ws cannot send an unmasked frame: write one on its socket.
      (c.ws as unknown as { _socket: Socket })._socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
      assert.equal((await c.closed).code, 1002);
      await closedLine(mark);
      assert.ok(
        lines.slice(mark).some((l) => JSON.stringify(l).includes('unmasked_client_frame')),
        JSON.stringify(lines.slice(mark)),
      );
    },
  );
});
