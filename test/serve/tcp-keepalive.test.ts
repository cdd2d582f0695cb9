// TCP keepalive on every connection wsgate accepts (issue 13: set once on the listening socket and inherited,
// listener-keepalive.ts), seen from outside: `ss -o` lists each accepted socket's keepalive timer. A WebSocket whose
// frames are tracked (the JavaScript relay), one on a byte-pipe route (the native relay: the socket wsgate accepted,
// now held by the relay), one over TLS, and an L4 tunnel, with the default --workers and with one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { closedPort, converge, handshake, httpHead, rawConnect, readUntil, roundTrip, startWsBackend, type Client, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, openWithHost, startServe, webSocketRoute, type ConfigDir, type ServeHarness } from '../helpers/serve-harness.ts';

/** The established sockets whose local port is `port` (wsgate's side of connections to it), as `ss -tno` shows them. */
function acceptedSockets(port: number): string[] {
  const out = execFileSync('ss', ['-H', '-t', '-n', '-o', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '');
}

/**
 * Waits until the `count` accepted sockets of `port` all show a keepalive timer. `ss` shows one timer per socket, the
 * one running: while bytes just sent wait for their ACK it is the retransmission timer (`timer:(on,...)`), so the
 * check is repeated (bounded) until the connections are quiet; without keepalive it never holds.
 */
async function expectKeepAlive(port: number, count: number): Promise<void> {
  let last: string[] = [];
  try {
    await converge(
      () => {
        last = acceptedSockets(port);
        return last.length === count && last.every((l) => /timer:\(keepalive,/.test(l));
      },
      `${count} socket(s) on port ${port} with a keepalive timer`,
      1,
      5_000,
    );
  } catch (err) {
    assert.fail(`${(err as Error).message}; ss shows:\n${last.join('\n')}`);
  }
}

for (const workers of [defaultWorkers(), 1]) {
  describe(`wsgate serve --workers ${workers}: TCP keepalive on accepted connections`, { timeout: 60_000 }, () => {
    let echo: WsBackend;
    let dir: ConfigDir;
    let server: ServeHarness;
    let httpPort: number;
    let tunnelPort: number;
    const clients: Client[] = [];
    const raw: net.Socket[] = [];

    before(async () => {
      echo = await startWsBackend();
      // A free port for the TCPTunnel's listener (wsgate binds it when the table is applied).
      tunnelPort = await closedPort();
      dir = createConfigDir();
      dir.write('config.yaml', [
        ...backendService('echo', echo.port),
        webSocketRoute('tracked', { hostnames: ['tracked.test'], rules: [{ backends: [{ service: 'echo' }] }] }),
        webSocketRoute('pipe', { hostnames: ['pipe.test'], rules: [{ backends: [{ service: 'echo' }] }], policy: { inspectFrames: false } }),
        {
          apiVersion: 'wsgate.io/v1alpha1',
          kind: 'TCPTunnel',
          metadata: { name: 'tunnel', namespace: 'default' },
          spec: { port: tunnelPort, backends: [{ service: 'echo', port: 80 }] },
        },
      ]);
      server = await startServe(dir.path, { workers });
      httpPort = server.httpPort;
    });

    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const s of raw) s.destroy();
      await server?.close();
      await echo?.close();
      dir?.dispose();
    });

    test('every tunnel accepted on the L7 listener has a keepalive timer, frames tracked or not', async () => {
      for (const host of ['tracked.test', 'pipe.test']) {
        const c = await openWithHost(`ws://127.0.0.1:${httpPort}/`, host);
        clients.push(c);
        assert.equal((await roundTrip(c, host)).data.toString(), host);
      }
      await expectKeepAlive(httpPort, 2);
    });

    test('a tunnel accepted on the TLS listener has one on its TCP socket', async () => {
      // The default certificate (self-signed): this checks the socket under TLS, not the certificate.
      const c = await openWithHost(`wss://127.0.0.1:${server.httpsPort}/`, 'tracked.test', { servername: 'tracked.test', rejectUnauthorized: false });
      clients.push(c);
      assert.equal((await roundTrip(c, 'over TLS')).data.toString(), 'over TLS');
      await expectKeepAlive(server.httpsPort, 1);
    });

    test('an L4 tunnel has one too', async () => {
      // The tunnel's listener binds when the table is applied: wait until it accepts.
      let s: net.Socket | undefined;
      await converge(
        async () => {
          s = await rawConnect(tunnelPort).catch(() => undefined);
          return s !== undefined;
        },
        `the TCPTunnel listener on ${tunnelPort}`,
        1,
        10_000,
      );
      raw.push(s!);
      // A handshake through the tunnel to the echo backend: the tunnel is established end to end.
      s!.write(handshake({ host: 'tunnel.test' }));
      const { value } = await readUntil(s!, httpHead);
      assert.match(value, /^HTTP\/1\.1 101 /);
      await expectKeepAlive(tunnelPort, 1);
    });
  });
}
