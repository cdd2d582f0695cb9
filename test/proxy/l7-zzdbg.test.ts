import { test } from 'node:test';
import { catchAll } from '../helpers/fixtures.ts';
import { startGateway } from '../helpers/gateway.ts';
import { openClient, startWsBackend } from '../helpers/l7-peers.ts';
test('x', async () => {
  const echo = await startWsBackend();
  const gw = await startGateway(catchAll([echo.port]));
  const c = await openClient(gw.wsUrl);
  console.log('size', gw.gateway.registry.size);
  const t = setTimeout(() => console.log('still waiting'), 2000);
  await gw.close();
  clearTimeout(t);
  console.log('closed gw', await c.closed);
  await echo.close();
});
