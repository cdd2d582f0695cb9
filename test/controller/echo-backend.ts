// A WebSocket echo backend for controller tests, run inside a test network namespace (pod-network.ts):
// `node echo-backend.ts HOST PORT NAME` answers each message with `NAME:message` and prints `ready` when listening.
import { WebSocketServer } from 'ws';

const [host = '', port = '', name = ''] = process.argv.slice(2);
const wss = new WebSocketServer({ host, port: Number(port) });
wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer) => ws.send(`${name}:${data.toString()}`));
});
wss.on('listening', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
});
