// No byte is lost at the protocol switch: bytes that share a read with a request head (the client's first frame)
// or with a 101 (the backend's first frame) belong to the tunnel (h2o#1272, goproxy#801).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import {
  encodeFrame,
  frame,
  handshake,
  httpHead,
  openClient,
  rawConnect,
  readUntil,
  startRawBackend,
  startWsBackend,
  stopGateway,
  switchingProtocols,
  type RawBackend,
  type WsBackend,
} from '../helpers/l7-peers.ts';

let raw: RawBackend;
let echo: WsBackend;
let gw: TestGateway;

before(async () => {
  raw = await startRawBackend();
  echo = await startWsBackend({ echo: false });
  gw = await startGateway(
    table({
      virtualHosts: [
        vhost('ws.test', httpRoute({ route: 'default/ws', backends: [backend('default/ws:80', echo.port)] })),
        vhost('*', httpRoute({ route: 'default/raw', backends: [backend('default/raw:80', raw.port)] })),
      ],
    }),
  );
});

after(async () => {
  await stopGateway(gw);
  await raw.close();
  await echo.close();
});

describe('the protocol switch', { timeout: 10_000 }, () => {
  test("delivers the backend's first frame when it shares a write with the 101", async () => {
    const opening = openClient(gw.wsUrl);
    const peer = await raw.accepted.shift();
    peer.socket.write(Buffer.concat([Buffer.from(switchingProtocols(peer.head)), encodeFrame(0x1, 'first from backend', false)]));
    const c = await opening;
    const m = await c.messages.shift();
    assert.equal(m.data.toString(), 'first from backend');
    c.ws.terminate();
    peer.socket.destroy();
  });

  test('assembles a 101 that arrives in several pieces and keeps the frame after it', async () => {
    const opening = openClient(gw.wsUrl);
    const peer = await raw.accepted.shift();
    const bytes = Buffer.concat([Buffer.from(switchingProtocols(peer.head)), encodeFrame(0x2, Buffer.from([9, 8, 7]), false)]);
    // Each piece is flushed after the previous one was acknowledged by the write callback.
    for (const piece of [bytes.subarray(0, 10), bytes.subarray(10, bytes.length - 3), bytes.subarray(bytes.length - 3)]) {
      await new Promise<void>((resolve, reject) => peer.socket.write(piece, (err) => (err ? reject(err) : resolve())));
    }
    const c = await opening;
    const m = await c.messages.shift();
    assert.equal(m.isBinary, true);
    assert.deepEqual([...m.data], [9, 8, 7]);
    c.ws.terminate();
    peer.socket.destroy();
  });

  test("delivers the client's first frame when it shares a write with the request head", async () => {
    const client = await rawConnect(gw.http.port);
    client.write(Buffer.concat([Buffer.from(handshake()), encodeFrame(0x1, 'first from client', true)]));
    const peer = await raw.accepted.shift();
    // The frame may have come in the head's read or after it: either way it must come.
    const f = await readUntil(peer.socket, frame, peer.rest);
    assert.equal(f.value.opcode, 0x1);
    assert.equal(f.value.payload.toString(), 'first from client');
    peer.socket.write(switchingProtocols(peer.head));
    const { value } = await readUntil(client, httpHead);
    assert.match(value, /^HTTP\/1\.1 101 /);
    client.destroy();
    peer.socket.destroy();
  });

  test("a ws backend receives the client's first frame as a message", async () => {
    const client = await rawConnect(gw.http.port);
    client.write(Buffer.concat([Buffer.from(handshake({ host: 'ws.test' })), encodeFrame(0x1, 'early bird', true)]));
    const conn = await echo.connections.shift();
    const m = await conn.messages.shift();
    assert.equal(m.data.toString(), 'early bird');
    const { value } = await readUntil(client, httpHead);
    assert.match(value, /^HTTP\/1\.1 101 /);
    client.destroy();
  });
});
