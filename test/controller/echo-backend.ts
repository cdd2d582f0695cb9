// An echo backend for controller tests, run inside a test network namespace (pod-network.ts):
// `node echo-backend.ts HOST PORT NAME [MODE]` answers with `NAME:` and what it received, and prints `ready` when
// listening. MODE (default `ws`):
//   ws   a WebSocket server: each message is answered with `NAME:message`;
//   tcp  a plain TCP server: each chunk read is answered with `NAME:chunk`;
//   tls  the same over TLS, with the certificate and key PEM in $ECHO_TLS_CERT and $ECHO_TLS_KEY.
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTLSServer } from 'node:tls';
import { WebSocketServer } from 'ws';

const [host = '', port = '', name = '', mode = 'ws'] = process.argv.slice(2);
const ready = (): void => { process.stdout.write('ready\n'); };

if (mode === 'ws') {
  const wss = new WebSocketServer({ host, port: Number(port) });
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => ws.send(`${name}:${data.toString()}`));
  });
  wss.on('listening', ready);
  process.on('SIGTERM', () => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => process.exit(0));
  });
} else {
  const sockets = new Set<Socket>();
  const echo = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => socket.write(`${name}:${chunk.toString()}`));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  };
  const server: Server = mode === 'tls'
    ? createTLSServer({ cert: process.env.ECHO_TLS_CERT, key: process.env.ECHO_TLS_KEY }, echo)
    : createServer(echo);
  server.listen(Number(port), host, ready);
  process.on('SIGTERM', () => {
    for (const s of sockets) s.destroy();
    server.close(() => process.exit(0));
  });
}
