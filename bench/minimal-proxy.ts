// The bench's `node-min` target (issue 13): the floor of plain Node streams for a WebSocket proxy, as the issue
// describes it: a raw `net` proxy with a hand-split request head and two pipes. It reads up to the end of the head,
// connects to the one backend, writes the head and what followed it, and pipes both ways; no routing, no checks, no
// metrics, no log. A reference to measure wsgate against, never a product: it trusts every byte it is sent.
//   node bench/minimal-proxy.ts <listen port> <backend port>
import net from 'node:net';

const [listenPort, backendPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(backendPort)) {
  process.stderr.write('usage: node bench/minimal-proxy.ts <listen port> <backend port>\n');
  process.exit(2);
}
const HEAD_END = Buffer.from('\r\n\r\n');

net
  .createServer({ noDelay: true }, (client) => {
    let head: Buffer = Buffer.alloc(0);
    client.on('error', () => client.destroy());
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      if (head.indexOf(HEAD_END) === -1) {
        if (head.length > 16 * 1024) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      const backend = net.connect({ host: '127.0.0.1', port: backendPort!, noDelay: true }, () => {
        backend.write(head);
        client.pipe(backend);
        backend.pipe(client);
        client.resume();
      });
      backend.on('error', () => client.destroy());
      client.on('close', () => backend.destroy());
      backend.on('close', () => client.destroy());
    };
    client.on('data', onData);
  })
  .listen(listenPort, '127.0.0.1');
