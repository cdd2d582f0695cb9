// `npm start`: the quickstart. Starts the demo echo backend and `wsgate serve` on examples/quickstart/, on
// loopback, and prints how to try it. Flags after `--` go to wsgate serve (e.g. `npm start -- --log-level debug`).
import { fileURLToPath } from 'node:url';
import { startEchoBackend } from '../../examples/quickstart/backend.ts';
import { main } from './main.ts';

const config = fileURLToPath(new URL('../../examples/quickstart/', import.meta.url));
// examples/quickstart/echo.yaml points its EndpointSlice here.
const echoPort = 9001;
let echo;
try {
  echo = await startEchoBackend('127.0.0.1', echoPort);
} catch (err) {
  process.stderr.write(
    `wsgate quickstart: cannot start the demo backend on 127.0.0.1:${echoPort} (${(err as Error).message}).\n` +
      'Another quickstart may still be running; stop it, or free the port.\n',
  );
  process.exit(1);
}
// wsgate drains on the signal (main's handler); the demo backend goes too, or it would keep the process alive.
const echoServer = echo;
const stopEcho = (): void => {
  echoServer.close();
  echoServer.closeAllConnections();
};
process.once('SIGTERM', stopEcho);
process.once('SIGINT', stopEcho);
await main([
  'serve',
  '--config', config,
  '--http-addr', '127.0.0.1:8080',
  '--https-addr', '127.0.0.1:8443',
  '--admin-addr', '127.0.0.1:9090',
  '--tunnel-host', '127.0.0.1',
  '--log-level', 'warn',
  ...process.argv.slice(2),
]);
process.stderr.write(`
wsgate quickstart is running (Ctrl-C to stop):
  WebSocket echo   ws://127.0.0.1:8080/echo     try: npx node examples/quickstart/client.ts ws://127.0.0.1:8080/echo hi
  same over TLS    wss://127.0.0.1:8443/echo    (self-signed default certificate)
  demo page        http://127.0.0.1:8080/
  L4 tunnel        ws://127.0.0.1:9100/echo     (TCPTunnel: the same backend, bytes relayed unparsed)
  Gateway API      ws://127.0.0.1:8081/echo     (Gateway + HTTPRoute of examples/quickstart/gateway.yaml)
  metrics          http://127.0.0.1:9090/metrics  (curl -s 127.0.0.1:9090/metrics | grep wsgate_connections)
  live routes      http://127.0.0.1:9090/debug/routes
`);
