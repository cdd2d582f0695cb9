// The bench's backend, run as its own process: a WebSocket echo on raw `net` (any path; answers 101 to any
// upgrade request, echoes data frames, answers pings, closes on close) and an L4 byte source (the client sends an
// 8-byte big-endian count, the source writes that many bytes as fast as the socket takes them).
//
// Usage: node bench/backend.ts WS_PORT SOURCE_PORT        prints `ready` on stdout once both listen.
import net from 'node:net';
import { OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, FrameReader, acceptKey, buildFrame, headEnd } from './frames.ts';

const HOST = '127.0.0.1';
/** Bytes per write of the L4 source. */
const SOURCE_CHUNK = 64 * 1024;

function wsOnConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  let head: Buffer | null = Buffer.alloc(0);
  const reader = new FrameReader((opcode, payload) => {
    if (opcode === OP_TEXT || opcode === OP_BINARY) socket.write(buildFrame(opcode, payload, false));
    else if (opcode === OP_PING) socket.write(buildFrame(OP_PONG, payload, false));
    else if (opcode === OP_CLOSE) {
      // The server closes the TCP connection first (RFC 6455 §7.1.1): TIME_WAIT lands on listening ports, not on
      // the clients' ephemeral ones, so the sessions loop does not run out of ports.
      socket.end(buildFrame(OP_CLOSE, payload.subarray(0, 2), false));
    }
  });
  socket.on('data', (chunk: Buffer) => {
    if (head === null) return reader.push(chunk);
    head = Buffer.concat([head, chunk]);
    const end = headEnd(head);
    if (end < 0) {
      if (head.length > 16384) socket.destroy();
      return;
    }
    const text = head.subarray(0, end).toString('latin1');
    const rest = head.subarray(end);
    head = null;
    const key = /\r\nsec-websocket-key:\s*([^\r\n]+)/i.exec(text)?.[1]?.trim();
    if (key === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    if (rest.length > 0) reader.push(rest);
  });
  socket.on('error', () => socket.destroy());
}

const sourceChunk = Buffer.alloc(SOURCE_CHUNK, 0x5a);

function sourceOnConnection(socket: net.Socket): void {
  let header = Buffer.alloc(0);
  let remaining = -1;
  const pump = (): void => {
    while (remaining > 0) {
      const n = Math.min(remaining, SOURCE_CHUNK);
      remaining -= n;
      if (!socket.write(n === SOURCE_CHUNK ? sourceChunk : sourceChunk.subarray(0, n))) return;
    }
  };
  socket.on('data', (chunk: Buffer) => {
    if (remaining >= 0) return;
    header = Buffer.concat([header, chunk]);
    if (header.length < 8) return;
    remaining = Number(header.readBigUInt64BE(0));
    pump();
  });
  socket.on('drain', pump);
  socket.on('error', () => socket.destroy());
  socket.on('end', () => socket.end());
}

async function listen(server: net.Server, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: HOST, backlog: 4096 }, resolve);
  });
}

if (import.meta.main) {
  const [wsPort, sourcePort] = process.argv.slice(2).map(Number);
  if (wsPort === undefined || sourcePort === undefined) throw new Error('usage: backend.ts WS_PORT SOURCE_PORT');
  await listen(net.createServer(wsOnConnection), wsPort);
  await listen(net.createServer(sourceOnConnection), sourcePort);
  process.stdout.write('ready\n');
}
