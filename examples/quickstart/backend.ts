// The quickstart's demo backend: a WebSocket echo on /echo and a page at / that talks to it. Uses the `ws` package
// (a devDependency): wsgate itself never needs it.
import http from 'node:http';
import { WebSocketServer } from 'ws';

const PAGE = `<!doctype html><meta charset="utf-8"><title>wsgate echo</title>
<h1>wsgate echo</h1><input id="m" value="hello"><button id="b">send</button><pre id="o"></pre>
<script>
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo');
const o = document.getElementById('o');
ws.onopen = () => (o.textContent += 'connected\\n');
ws.onmessage = (e) => (o.textContent += 'echo: ' + e.data + '\\n');
ws.onclose = (e) => (o.textContent += 'closed ' + e.code + '\\n');
document.getElementById('b').onclick = () => ws.send(document.getElementById('m').value);
</script>`;

export async function startEchoBackend(host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  const wss = new WebSocketServer({ server, path: '/echo', perMessageDeflate: true });
  // The HTTP server reports a failed listen (the caller's to handle); ws re-emits it here.
  wss.on('error', () => {});
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

if (import.meta.main) {
  const port = Number(process.env.ECHO_PORT ?? 9001);
  await startEchoBackend('127.0.0.1', port);
  process.stdout.write(`echo backend on 127.0.0.1:${port}\n`);
}
