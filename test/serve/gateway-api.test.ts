// [issue 14] `wsgate serve` reads Gateway API objects from files: a Gateway's HTTP listener port serves its
// HTTPRoute's WebSockets, and a reload that moves the route to another path keeps an open WebSocket.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closedPort, converge, openClient, roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, startServe, type ConfigDir, type Obj, type ServeHarness } from '../helpers/serve-harness.ts';

function objects(listenerPort: number, backendPort: number, path: string): Obj[] {
  return [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'wsgate' }, spec: { controllerName: 'wsgate.io/gateway-controller' } },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'Gateway',
      metadata: { name: 'edge' },
      spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: listenerPort, protocol: 'HTTP' }] },
    },
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'chat' },
      spec: {
        parentRefs: [{ name: 'edge' }],
        hostnames: ['chat.test'],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ name: 'echo', port: 80 }] }],
      },
    },
    ...backendService('echo', backendPort),
  ];
}

describe('wsgate serve with Gateway API objects', () => {
  let dir: ConfigDir;
  let h: ServeHarness;
  let echo: WsBackend;
  let port: number;

  before(async () => {
    echo = await startWsBackend();
    port = await closedPort();
    dir = createConfigDir();
    dir.write('gateway.yaml', objects(port, echo.port, '/chat'));
    h = await startServe(dir.path);
  });

  after(async () => {
    await h?.close();
    await echo?.close();
    dir?.dispose();
  });

  test("serves the HTTPRoute's WebSockets on the Gateway's listener port, and keeps one open across a reload", async () => {
    const client = await openClient(`ws://127.0.0.1:${port}/chat`, undefined, { headers: { host: 'chat.test' } });
    assert.equal((await roundTrip(client, 'hello')).data.toString(), 'hello');
    dir.write('gateway.yaml', objects(port, echo.port, '/v2'));
    await converge(async () => {
      try {
        const c = await openClient(`ws://127.0.0.1:${port}/v2`, undefined, { headers: { host: 'chat.test' } });
        c.ws.close();
        return true;
      } catch {
        return false;
      }
    }, 'the reloaded route', 3, 10_000);
    assert.equal((await roundTrip(client, 'still')).data.toString(), 'still', 'the open WebSocket carries on');
    client.ws.close();
    await client.closed;
  });
});
