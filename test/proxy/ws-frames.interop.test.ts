// Cross-check of the frame tracker against a real peer: the bytes a `ws` client and a `ws` server exchange over a
// loopback connection (recorded by a TCP relay between them), with and without permessage-deflate, with whole,
// fragmented, text and binary messages, pings, pongs and a close. Each direction is fed to a tracker whole and in
// random cuttings; it must report what the peers did, fail nothing, and hand every byte on.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { FrameTracker, Opcode, RSV1, StopOn } from '../../src/proxy/ws-frames.ts';
import { prng } from '../helpers/prng.ts';
import { cut, relay } from './testdata/ws-frame-streams.ts';

interface Recorded {
  toServer: Buffer;
  toClient: Buffer;
}

/** Runs the conversation through a recording TCP relay; returns each direction's bytes after the HTTP heads. */
async function converse(deflate: boolean): Promise<Recorded> {
  const perMessageDeflate = deflate ? { threshold: 0 } : false;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate });
  await once(wss, 'listening');
  const up: Buffer[] = [];
  const down: Buffer[] = [];
  const recorder = net.createServer((c) => {
    const s = net.connect((wss.address() as net.AddressInfo).port, '127.0.0.1');
    c.on('data', (d: Buffer) => {
      up.push(Buffer.from(d));
      s.write(d);
    });
    s.on('data', (d: Buffer) => {
      down.push(Buffer.from(d));
      c.write(d);
    });
    c.on('end', () => s.end());
    s.on('end', () => c.end());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  recorder.listen(0, '127.0.0.1');
  await once(recorder, 'listening');

  let serverMessages = 0;
  let serverGotPong = false;
  const serverClosed = new Promise<[number, string]>((resolve) => {
    wss.on('connection', (ws) => {
      // The server's own fragmented message (ws sets RSV1 on the first fragment only) and a ping.
      ws.send('frag-a', { fin: false });
      ws.send('frag-b', { fin: true });
      ws.ping(Buffer.from('srv-ping'));
      ws.on('pong', () => (serverGotPong = true));
      ws.on('message', (data, isBinary) => {
        serverMessages++;
        ws.send(data, { binary: isBinary });
      });
      ws.on('close', (code, reason) => resolve([code, reason.toString()]));
    });
  });

  const client = new WebSocket(`ws://127.0.0.1:${(recorder.address() as net.AddressInfo).port}/`, { perMessageDeflate });
  // Listeners first: the server's first frames can arrive in the same read as the 101, before 'open' is awaited.
  let clientMessages = 0;
  let clientGotPong = false;
  client.on('pong', () => (clientGotPong = true));
  const allIn = new Promise<void>((resolve) => {
    client.on('message', () => {
      if (++clientMessages === 4) resolve(); // the server's fragmented message and three echoes
    });
  });
  await once(client, 'open');
  client.send('hello');
  client.send(Buffer.alloc(70000, 3));
  client.send('one-', { fin: false });
  client.send(Buffer.alloc(300, 0x41), { fin: false });
  client.send('end', { fin: true });
  client.ping(Buffer.from('cli-ping'));
  await allIn;
  const clientClosed = once(client, 'close');
  client.close(4000, 'done');
  const [code, reason] = await serverClosed;
  await clientClosed;
  assert.deepEqual([code, reason, serverMessages, clientGotPong, serverGotPong], [4000, 'done', 3, true, true]);
  wss.close();
  recorder.close();

  const afterHead = (b: Buffer): Buffer => b.subarray(b.indexOf('\r\n\r\n') + 4);
  return { toServer: afterHead(Buffer.concat(up)), toClient: afterHead(Buffer.concat(down)) };
}

describe('frame tracker against frames from ws on a real connection', () => {
  for (const deflate of [false, true]) {
    test(`tracks both directions ${deflate ? 'with' : 'without'} permessage-deflate, in every cutting`, { timeout: 30000 }, async () => {
      const { toServer, toClient } = await converse(deflate);
      const rand = prng(deflate ? 0xdef1 : 0xdef0);
      const directions = [
        { name: 'client→server', bytes: toServer, fromClient: true, messages: 3, dataFrames: 5, pings: 1, pongs: 1 },
        { name: 'server→client', bytes: toClient, fromClient: false, messages: 4, dataFrames: 5, pings: 1, pongs: 1 },
      ];
      for (const d of directions) {
        for (const maxChunk of [d.bytes.length, 4096, 100, 7, 1]) {
          const t = new FrameTracker({ fromClient: d.fromClient, allowedRsv: deflate ? RSV1 : 0 });
          t.stopOn = StopOn.HEADERS;
          const r = relay(t, cut(d.bytes, rand, maxChunk));
          const label = `${d.name}, chunks ≤ ${maxChunk}`;
          assert.equal(r.failure, null, label);
          assert.ok(r.out.equals(d.bytes), `${label}: relayed bytes differ`);
          const got = { messages: t.messages, dataFrames: t.dataFrames, pings: t.pings, pongs: t.pongs, closes: t.closes };
          assert.deepEqual(got, { messages: d.messages, dataFrames: d.dataFrames, pings: d.pings, pongs: d.pongs, closes: 1 }, label);
          assert.deepEqual([t.closeCode, t.closeReason], [4000, 'done'], label);
          const compressed = r.headers.filter((h) => h.rsv === RSV1);
          const firstFragments = r.headers.filter((h) => h.opcode === Opcode.TEXT || h.opcode === Opcode.BINARY);
          // With deflate and threshold 0 ws compresses every message: RSV1 on each first frame and nowhere else.
          assert.equal(compressed.length, deflate ? firstFragments.length : 0, label);
          assert.ok(compressed.every((h) => h.opcode !== Opcode.CONTINUATION), label);
        }
      }
    });
  }
});
