// Slow-reader flood: 20 clients send 64 KiB messages for 4 s and never read. Prints wsgate's RSS growth per connection.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
const root = process.argv[2] ?? '/work/wt-lead';
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const backendKind = process.argv[3] ?? 'ws';
let port: number;
if (backendKind === 'ws') {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.on('listening', r));
  port = (wss.address() as net.AddressInfo).port;
  wss.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
} else { port = 0; }
const dir = mkdtempSync(join(tmpdir(), 'slow-'));
writeFileSync(join(dir, 'c.yaml'), `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { ports: [{ name: http, port: 80, targetPort: ${port} }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: echo-1, namespace: default, labels: { kubernetes.io/service-name: echo } }
addressType: IPv4
ports: [{ name: http, port: ${port} }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
---
apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: echo, namespace: default }
spec:
  rules: [{ path: { type: Prefix, value: / }, backends: [{ service: echo, port: http }] }]
`);
const child = spawn(join(root, 'node_modules/.bin/node'), [...(process.env.SEMI ? ['--max-semi-space-size=' + process.env.SEMI] : []), join(root, 'bin/wsgate.js'), 'serve', '--config', dir, '--workers', '1', '--http-addr', '127.0.0.1:18181', '--https-addr', 'off', '--admin-addr', '127.0.0.1:18182', '--log-level', 'warn'], { stdio: 'inherit' });
for (;;) { try { const r = await fetch('http://127.0.0.1:18182/readyz'); if (r.ok) break; } catch {} await new Promise((r) => setTimeout(r, 100)); }
await new Promise((r) => setTimeout(r, 1000));
const before = rss(child.pid!);
const N = Number(process.env.N ?? 20);
const payload = Buffer.alloc(64 * 1024, 0x61);
const frame = Buffer.concat([Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), payload]); // masked, key 0
frame.writeUInt32BE(0, 10);
const socks: net.Socket[] = [];
for (let i = 0; i < N; i++) {
  const s = net.connect(18181, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  s.pause();
  s.on('error', () => {});
  socks.push(s);
}
const end = Date.now() + 8000;
const samples: string[] = []; const iv = setInterval(() => samples.push(((rss(child.pid!) - before) / 1e6).toFixed(0)), 1000);
let sent = 0;
await Promise.all(socks.map(async (s) => {
  while (Date.now() < end) {
    if (!s.write(frame)) await new Promise((r) => { const t = setTimeout(r, 50); s.once('drain', () => { clearTimeout(t); r(undefined); }); });
    sent += frame.length;
  }
}));
const after = rss(child.pid!); clearInterval(iv); console.log('growth MB per second:', samples.join(' '));
console.log(JSON.stringify({ sentMB: (sent / 1e6).toFixed(1), rssBeforeMB: (before / 1e6).toFixed(1), rssAfterMB: (after / 1e6).toFixed(1), perConnKB: ((after - before) / N / 1024).toFixed(0) }));
for (const s of socks) s.destroy();
child.kill('SIGTERM');
process.exit(0);
