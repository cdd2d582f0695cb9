import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHelloResult } from '../../src/proxy/sni.ts';
import { prng } from '../helpers/prng.ts';

// --- fixtures --------------------------------------------------------------------------------------------------

/** A raw TCP server that records the first TLS record(s) a client sends, so tests parse what Node really sends. */
let capture: net.Server;
let capturePort: number;

before(async () => {
  capture = net.createServer();
  capture.listen(0, '127.0.0.1');
  await once(capture, 'listening');
  capturePort = (capture.address() as AddressInfo).port;
});

after(() => {
  capture.close();
});

/** Connects a real tls.connect client and returns the bytes of its first flight: the ClientHello record(s). */
async function captureClientHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  const accepted = once(capture, 'connection') as Promise<[net.Socket]>;
  const client = tls.connect({ host: '127.0.0.1', port: capturePort, ...opts });
  client.on('error', () => {});
  const [socket] = await accepted;
  const chunks: Buffer[] = [];
  let length = 0;
  // Read record headers independently of the parser under test: stop after the handshake message is complete.
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    length += chunk.length;
    const buf = Buffer.concat(chunks, length);
    if (handshakeComplete(buf)) break;
  }
  socket.destroy();
  client.destroy();
  return Buffer.concat(chunks, length);
}

function handshakeComplete(buf: Buffer): boolean {
  let off = 0;
  let have = 0;
  const parts: Buffer[] = [];
  while (off + 5 <= buf.length) {
    const len = buf.readUInt16BE(off + 3);
    if (off + 5 + len > buf.length) return false;
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (have >= 4 && have >= 4 + Buffer.concat(parts).readUIntBE(1, 3)) return true;
  }
  return false;
}

/** The handshake message carried by a (possibly multi-record) hello. */
function handshakeMessage(records: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; off + 5 <= records.length; ) {
    const len = records.readUInt16BE(off + 3);
    parts.push(records.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  const msg = Buffer.concat(parts);
  return msg.subarray(0, 4 + msg.readUIntBE(1, 3));
}

/** Re-frames a handshake message into TLS records of at most `size` bytes each. */
function inRecords(message: Buffer, size: number, version = 0x0301): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < message.length; off += size) {
    const fragment = message.subarray(off, off + size);
    const header = Buffer.alloc(5);
    header[0] = 22;
    header.writeUInt16BE(version, 1);
    header.writeUInt16BE(fragment.length, 3);
    out.push(header, fragment);
  }
  return Buffer.concat(out);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function withLength16(body: Buffer): Buffer {
  return Buffer.concat([u16(body.length), body]);
}

function serverNameExtension(name: string | Buffer, nameType = 0): Buffer {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
  const entry = Buffer.concat([Buffer.from([nameType]), withLength16(bytes)]);
  return Buffer.concat([u16(0), withLength16(withLength16(entry))]);
}

/** A minimal synthetic ClientHello message (handshake header included), for shapes Node's client never sends. */
function syntheticHello(opts: { extensions?: Buffer[]; noExtensions?: boolean; sessionId?: Buffer } = {}): Buffer {
  const sessionId = opts.sessionId ?? Buffer.alloc(0);
  const parts = [
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([sessionId.length]),
    sessionId,
    withLength16(Buffer.from([0x13, 0x01])),
    Buffer.from([1, 0]),
  ];
  if (!opts.noExtensions) parts.push(withLength16(Buffer.concat(opts.extensions ?? [])));
  const body = Buffer.concat(parts);
  const header = Buffer.from([1, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([header, body]);
}


const ok = (serverName: string | undefined): ClientHelloResult => ({ state: 'ok', serverName });

// --- real ClientHellos -----------------------------------------------------------------------------------------

describe('parseClientHello on ClientHellos sent by Node', () => {
  const cases: { name: string; opts: tls.ConnectionOptions; want: string | undefined }[] = [
    { name: 'TLS 1.3 with a server name', opts: { servername: 'echo.example.test' }, want: 'echo.example.test' },
    { name: 'TLS 1.2 only', opts: { servername: 'old.example.test', maxVersion: 'TLSv1.2' }, want: 'old.example.test' },
    { name: 'mixed-case server name', opts: { servername: 'MiXeD.Example.TEST' }, want: 'mixed.example.test' },
    { name: 'ALPN offered', opts: { servername: 'h2.example.test', ALPNProtocols: ['h2', 'http/1.1'] }, want: 'h2.example.test' },
    { name: 'no server name (connecting to an IP address)', opts: {}, want: undefined },
  ];
  const hellos = new Map<string, Buffer>();
  before(async () => {
    for (const c of cases) hellos.set(c.name, await captureClientHello(c.opts));
  });

  for (const c of cases) {
    test(`reads the server name of a ${c.name} hello`, () => {
      assert.deepEqual(parseClientHello(hellos.get(c.name)!), ok(c.want));
    });

    test(`asks for more at every byte boundary of a ${c.name} hello`, () => {
      const hello = hellos.get(c.name)!;
      for (let i = 0; i < hello.length; i++) {
        assert.deepEqual(parseClientHello(hello.subarray(0, i)), { state: 'need-more' }, `prefix of ${i} bytes`);
      }
    });

    test(`reassembles a ${c.name} hello split over many records, at every byte boundary`, () => {
      const message = handshakeMessage(hellos.get(c.name)!);
      for (const size of [1, 2, 3, 4, 5, 64, 250]) {
        const records = inRecords(message, size);
        if (records.length > MAX_CLIENT_HELLO_BYTES) continue;
        assert.deepEqual(parseClientHello(records), ok(c.want), `records of ${size} bytes`);
        if (size === 3) {
          for (let i = 0; i < records.length; i++) {
            assert.equal(parseClientHello(records.subarray(0, i)).state, 'need-more', `prefix of ${i} bytes`);
          }
        }
      }
    });
  }

  test('ignores bytes that follow the ClientHello (early data)', () => {
    const hello = hellos.get(cases[0]!.name)!;
    const withTrailer = Buffer.concat([hello, Buffer.from([23, 3, 3, 0, 4, 1, 2, 3, 4])]);
    assert.deepEqual(parseClientHello(withTrailer), ok('echo.example.test'));
  });

  test('never throws on thousands of random mutations of a real hello', () => {
    const hello = hellos.get(cases[0]!.name)!;
    const random = prng(20240601);
    const states = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const buf = Buffer.from(hello);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) buf[Math.floor(random() * buf.length)] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? Math.floor(random() * buf.length) : buf.length;
      const result = parseClientHello(buf.subarray(0, cut));
      assert.ok(['need-more', 'ok', 'not-tls', 'malformed'].includes(result.state));
      states.add(result.state);
    }
    // The mutations reach every outcome, so the fuzzing exercises more than the first byte check.
    assert.deepEqual([...states].sort(), ['malformed', 'need-more', 'not-tls', 'ok']);
  });
});

// --- synthetic shapes ------------------------------------------------------------------------------------------

describe('parseClientHello on synthetic input', () => {
  const cases: { name: string; input: Buffer; want: ClientHelloResult }[] = [
    { name: 'an empty buffer asks for more', input: Buffer.alloc(0), want: { state: 'need-more' } },
    { name: 'an HTTP request is not TLS', input: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), want: { state: 'not-tls' } },
    { name: 'an SSH banner is not TLS', input: Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'), want: { state: 'not-tls' } },
    { name: 'a handshake byte without TLS major version is not TLS', input: Buffer.from([22, 2, 0]), want: { state: 'not-tls' } },
    { name: 'a single handshake byte asks for more', input: Buffer.from([22]), want: { state: 'need-more' } },
    {
      name: 'a hello without extensions has no server name',
      input: inRecords(syntheticHello({ noExtensions: true }), 16384),
      want: ok(undefined),
    },
    {
      name: 'a hello with other extensions only has no server name',
      input: inRecords(syntheticHello({ extensions: [Buffer.from([0, 23, 0, 0])] }), 16384),
      want: ok(undefined),
    },
    {
      name: 'a server name after other extensions is found',
      input: inRecords(syntheticHello({ extensions: [Buffer.from([0, 23, 0, 0]), serverNameExtension('late.example.test')] }), 16384),
      want: ok('late.example.test'),
    },
    {
      name: 'a non-host_name entry in the server name list is skipped',
      input: inRecords(syntheticHello({ extensions: [serverNameExtension('ignored', 7)] }), 16384),
      want: ok(undefined),
    },
    {
      name: 'a record that is not a handshake inside the hello is malformed',
      input: Buffer.concat([inRecords(syntheticHello().subarray(0, 10), 16384), Buffer.from([21, 3, 3, 0, 2, 2, 40])]),
      want: { state: 'malformed', reason: 'non-handshake record inside the ClientHello' },
    },
    {
      name: 'an empty handshake record is malformed',
      input: Buffer.from([22, 3, 1, 0, 0]),
      want: { state: 'malformed', reason: 'empty handshake record' },
    },
    {
      name: 'a record longer than 2^14 is malformed',
      input: Buffer.from([22, 3, 1, 0x40, 0x01]),
      want: { state: 'malformed', reason: 'record too long' },
    },
    {
      name: 'a ServerHello instead of a ClientHello is malformed',
      input: Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]),
      want: { state: 'malformed', reason: 'first handshake message is not a ClientHello' },
    },
    {
      name: 'a hello declaring more than 16 KiB is too large',
      input: Buffer.from([22, 3, 1, 0, 4, 1, 0, 0x40, 0x00]),
      want: { state: 'malformed', reason: 'too-large' },
    },
    {
      name: 'a session id longer than 32 bytes is malformed',
      input: inRecords(syntheticHello({ sessionId: Buffer.alloc(33) }), 16384),
      want: { state: 'malformed', reason: 'session id too long' },
    },
    {
      name: 'a server name with a space is malformed',
      input: inRecords(syntheticHello({ extensions: [serverNameExtension('a b.example.test')] }), 16384),
      want: { state: 'malformed', reason: 'bad server name' },
    },
    {
      name: 'a server name with a NUL byte is malformed',
      input: inRecords(syntheticHello({ extensions: [serverNameExtension(Buffer.from('evil.test\0good.test'))] }), 16384),
      want: { state: 'malformed', reason: 'bad server name' },
    },
    {
      name: 'an empty server name is malformed',
      input: inRecords(syntheticHello({ extensions: [serverNameExtension('')] }), 16384),
      want: { state: 'malformed', reason: 'bad server name length' },
    },
    {
      name: 'an extension running past the extensions block is malformed',
      input: inRecords(syntheticHello({ extensions: [Buffer.from([0, 23, 0, 9])] }), 16384),
      want: { state: 'malformed', reason: 'truncated extension' },
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(parseClientHello(c.input), c.want);
    });
  }

  test('a hello spread over records that pass the cap before completing is too large', () => {
    // 1-byte records cost 6 bytes per hello byte: a 4 KiB hello needs 24 KiB of records.
    const big = syntheticHello({ extensions: [Buffer.concat([u16(21), withLength16(Buffer.alloc(4000))])] });
    const records = inRecords(big, 1);
    assert.deepEqual(parseClientHello(records), { state: 'malformed', reason: 'too-large' });
    assert.deepEqual(parseClientHello(records.subarray(0, MAX_CLIENT_HELLO_BYTES + 3)), { state: 'malformed', reason: 'too-large' });
  });

  test('a truncated hello body whose lengths disagree is malformed, not a crash', () => {
    const message = syntheticHello({ extensions: [serverNameExtension('x.example.test')] });
    // Shrink the declared handshake length: the body now ends inside the extensions.
    const cut = Buffer.from(message.subarray(0, message.length - 5));
    cut.writeUIntBE(cut.length - 4, 1, 3);
    assert.equal(parseClientHello(inRecords(cut, 16384)).state, 'malformed');
  });

  test('never throws on thousands of random buffers that start like a handshake record', () => {
    const random = prng(7);
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(random() * 600);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(random() * 256);
      if (len > 0) buf[0] = 22;
      if (len > 1) buf[1] = 3;
      if (len > 5) buf[5] = 1;
      const result = parseClientHello(buf);
      assert.ok(['need-more', 'ok', 'not-tls', 'malformed'].includes(result.state));
    }
  });
});
