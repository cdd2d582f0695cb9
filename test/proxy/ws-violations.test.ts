// RFC 6455 violations in a WebSocket tunnel (issue 10), sent by raw peers through a real gateway: handled as `ws`
// (lib/receiver.js) and RFC 6455 §5.1–5.5 say — the side that broke the protocol gets a close 1002 (1007 for a close
// reason that is not UTF-8), the other side a 1001, nothing of the offending frame is relayed, and the violation is
// counted by reason in wsgate_ws_protocol_errors_total. With `strict: false` the violation is only counted: the
// frames pass unchanged and the tunnel goes on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Opcode, RSV1 } from '../../src/proxy/ws-frames.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, startRawBackend, stopGateway, type Frame, type RawBackend } from '../helpers/l7-peers.ts';
import { closeRawTunnel, openRawTunnel, writeChunks, type Collector, type RawTunnel } from '../helpers/raw-tunnel.ts';
import { closePayload, encodeFrame, type FrameSpec } from './testdata/ws-frame-streams.ts';

const NO_KEEPALIVE = { intervalSeconds: 0, timeoutSeconds: 30, toBackend: false };

let gw: TestGateway;
let raw: RawBackend;

before(async () => {
  raw = await startRawBackend();
  const route = (name: string, strict: boolean) =>
    httpRoute({ route: `default/${name}`, path: `/${name}`, backends: [backend(`default/${name}:80`, raw.port)], policy: { keepalive: NO_KEEPALIVE, strict } });
  // A fast sweep: counters are flushed by it (and when a tunnel ends), and the lenient tunnels do not end.
  gw = await startGateway(table({ virtualHosts: [vhost('*', route('strict', true), route('lenient', false))] }), { sweepIntervalMs: 100 });
});

after(async () => {
  await stopGateway(gw);
  await raw.close();
});

type Side = 'client' | 'backend';

interface Case {
  readonly name: string;
  readonly from: Side;
  /** The offending frame, built as the sender would (masked from the client unless the case is about that). */
  readonly frame: FrameSpec;
  readonly reason: string;
  /** The close code the sender gets. */
  readonly code: number;
}

const fromClient = (f: Omit<FrameSpec, 'masked'> & { masked?: boolean }): FrameSpec => ({ masked: true, ...f });
const fromBackend = (f: Omit<FrameSpec, 'masked'> & { masked?: boolean }): FrameSpec => ({ masked: false, ...f });
const text = (s: string) => Buffer.from(s);

const CASES: readonly Case[] = [
  { name: 'an unmasked client frame', from: 'client', frame: fromClient({ opcode: Opcode.TEXT, payload: text('bare'), masked: false }), reason: 'unmasked_client_frame', code: 1002 },
  { name: 'a masked server frame', from: 'backend', frame: fromBackend({ opcode: Opcode.TEXT, payload: text('veiled'), masked: true }), reason: 'masked_server_frame', code: 1002 },
  { name: 'a reserved data opcode (0x3) from the client', from: 'client', frame: fromClient({ opcode: 0x3, payload: text('?') }), reason: 'reserved_opcode', code: 1002 },
  { name: 'a reserved control opcode (0xB) from the backend', from: 'backend', frame: fromBackend({ opcode: 0xb, payload: text('?') }), reason: 'reserved_opcode', code: 1002 },
  { name: 'RSV1 without a negotiated extension', from: 'client', frame: fromClient({ opcode: Opcode.TEXT, rsv: RSV1, payload: text('deflated?') }), reason: 'rsv_bits', code: 1002 },
  { name: 'RSV2 from the backend', from: 'backend', frame: fromBackend({ opcode: Opcode.BINARY, rsv: 0x20, payload: text('x') }), reason: 'rsv_bits', code: 1002 },
  { name: 'a ping of 126 bytes (control frames carry at most 125)', from: 'client', frame: fromClient({ opcode: Opcode.PING, payload: Buffer.alloc(126, 1) }), reason: 'control_frame_too_long', code: 1002 },
  { name: 'a fragmented control frame', from: 'backend', frame: fromBackend({ opcode: Opcode.PING, fin: false, payload: text('half') }), reason: 'fragmented_control_frame', code: 1002 },
  { name: 'a continuation outside a message', from: 'client', frame: fromClient({ opcode: Opcode.CONTINUATION, payload: text('orphan') }), reason: 'unexpected_continuation', code: 1002 },
  { name: 'a close with a code that may not be sent (1005)', from: 'client', frame: fromClient({ opcode: Opcode.CLOSE, payload: closePayload(1005) }), reason: 'bad_close_code', code: 1002 },
  { name: 'a close whose reason is not UTF-8', from: 'client', frame: fromClient({ opcode: Opcode.CLOSE, payload: Buffer.from([0x03, 0xe8, 0xff, 0xfe, 0x41]) }), reason: 'bad_close_reason', code: 1007 },
  { name: 'a close from the backend whose reason is not UTF-8', from: 'backend', frame: fromBackend({ opcode: Opcode.CLOSE, payload: Buffer.from([0x03, 0xe8, 0xc3]) }), reason: 'bad_close_reason', code: 1007 },
];

function sender(t: RawTunnel, side: Side): { socket: RawTunnel['client']; at: Collector; masked: boolean } {
  return side === 'client' ? { socket: t.client, at: t.atClient, masked: true } : { socket: t.backend, at: t.atBackend, masked: false };
}

function peerOf(t: RawTunnel, side: Side): { socket: RawTunnel['client']; at: Collector } {
  return side === 'client' ? { socket: t.backend, at: t.atBackend } : { socket: t.client, at: t.atClient };
}

const closeCode = (f: Frame): number => f.payload.readUInt16BE(0);

/** The raw bytes of the last complete frame a peer received. */
function lastFrameBytes(at: Collector): Buffer {
  const frames = at.frames();
  const end = frames.reduce((n, f) => n + f.size, 0);
  return at.bytes().subarray(end - frames.at(-1)!.size, end);
}
const errors = (route: string, reason: string): Promise<number> => gw.metric('wsgate_ws_protocol_errors_total', { route: `default/${route}`, reason });

describe('protocol violations with strict (the default)', { timeout: 30_000 }, () => {
  for (const c of CASES) {
    test(`${c.name}: ${c.code} to the ${c.from}, 1001 to its peer, counted as ${c.reason}`, async () => {
      const before = await errors('strict', c.reason);
      const t = await openRawTunnel(gw.http.port, raw, { path: '/strict' });
      try {
        const s = sender(t, c.from);
        const p = peerOf(t, c.from);
        // A valid frame first: relayed as usual.
        const valid = encodeFrame({ opcode: Opcode.TEXT, masked: s.masked, payload: text('valid before') });
        s.socket.write(valid);
        await p.at.until((x) => x.length >= valid.length, 'the valid frame');
        // The offending frame and a valid one after it, in one write.
        s.socket.write(Buffer.concat([encodeFrame(c.frame), encodeFrame({ opcode: Opcode.TEXT, masked: s.masked, payload: text('valid after') })]));
        await s.at.until((x) => x.frames().some((f) => f.opcode === Opcode.CLOSE), `a close frame at the ${c.from}`);
        await p.at.until((x) => x.frames().some((f) => f.opcode === Opcode.CLOSE), 'a close frame at its peer');
        const toSender = s.at.frames().find((f) => f.opcode === Opcode.CLOSE)!;
        const toPeer = p.at.frames();
        assert.equal(closeCode(toSender), c.code, `the close to the ${c.from}`);
        assert.deepEqual(toPeer.map((f) => f.opcode), [Opcode.TEXT, Opcode.CLOSE], 'the peer got the valid frame, then the close: nothing of the rest');
        assert.equal(closeCode(toPeer[1]!), 1001);
        // wsgate masks what it sends to the backend, and only what it sends there (RFC 6455 §5.1).
        const atBackend = c.from === 'client' ? p.at : s.at;
        const atClient = c.from === 'client' ? s.at : p.at;
        assert.equal(lastFrameBytes(atBackend)[1]! & 0x80, 0x80, 'the close to the backend is masked');
        assert.equal(lastFrameBytes(atClient)[1]! & 0x80, 0, 'the close to the client is not');
        // Then wsgate ends both connections.
        await Promise.all([s.at.untilEnded(), p.at.untilEnded()]);
        assert.ok(s.at.ended || s.at.closed);
        assert.ok(p.at.ended || p.at.closed);
        await converge(async () => (await errors('strict', c.reason)) === before + 1, `${c.reason} counted`);
      } finally {
        await closeRawTunnel(t);
      }
    });
  }

  test('the tunnels ended as protocol errors, closed by wsgate with 1002 and 1007', async () => {
    await converge(() => gw.gateway.registry.size === 0, 'every tunnel ended');
    const route = 'default/strict';
    assert.equal(await gw.metric('wsgate_connections_total', { route, outcome: 'protocol_error' }), CASES.length);
    // 1007 is not a bucket of its own: it counts as `other`.
    assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'wsgate', code: '1002' }), CASES.filter((c) => c.code === 1002 && c.from === 'client').length);
    assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'wsgate' }), CASES.length);
  });
});

describe('protocol violations with strict: false', { timeout: 30_000 }, () => {
  for (const [i, c] of CASES.entries()) {
    // Every other case arrives a byte at a time: the tracker holds a header until it is whole, and must hand the
    // held bytes on once it has found the frame invalid.
    const cut = i % 2 === 1;
    test(`${c.name}: counted as ${c.reason}, passed on unchanged${cut ? ' (written a byte at a time)' : ''}`, async () => {
      const before = await errors('lenient', c.reason);
      const t = await openRawTunnel(gw.http.port, raw, { path: '/lenient' });
      try {
        const s = sender(t, c.from);
        const p = peerOf(t, c.from);
        const bytes = Buffer.concat([
          encodeFrame({ opcode: Opcode.TEXT, masked: s.masked, payload: text('valid before') }),
          encodeFrame(c.frame),
          encodeFrame({ opcode: Opcode.TEXT, masked: s.masked, payload: text('valid after') }),
        ]);
        if (cut) await writeChunks(s.socket, [...bytes].map((b) => Buffer.from([b])));
        else s.socket.write(bytes);
        await p.at.until((x) => x.length >= bytes.length, 'every byte at the peer');
        assert.ok(p.at.bytes().equals(bytes), 'the peer got exactly what was sent');
        assert.equal(s.at.length, 0, `nothing was sent to the ${c.from}`);
        // The tunnel goes on, both ways.
        const reply = encodeFrame({ opcode: Opcode.TEXT, masked: c.from === 'backend', payload: text('still here') });
        p.socket.write(reply);
        await s.at.until((x) => x.length >= reply.length, 'the reply');
        assert.ok(s.at.bytes().equals(reply));
        await converge(async () => (await errors('lenient', c.reason)) === before + 1, `${c.reason} counted`);
      } finally {
        await closeRawTunnel(t);
      }
    });
  }
});
