// Sends each argument as a WebSocket message and prints the echoes: `node examples/quickstart/client.ts URL MSG...`
import { WebSocket } from 'ws';

const [url = 'ws://127.0.0.1:8080/echo', ...messages] = process.argv.slice(2);
const ws = new WebSocket(url);
const pending = messages.length > 0 ? messages : ['hello through wsgate'];
ws.on('open', () => {
  for (const m of pending) ws.send(m);
});
let n = 0;
ws.on('message', (data) => {
  process.stdout.write(`${(data as Buffer).toString()}\n`);
  if (++n === pending.length) ws.close(1000, 'done');
});
ws.on('error', (err) => {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 1;
});
