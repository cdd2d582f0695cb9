// [issue 14] Gateway API tunnels from routing-table fixtures: a TLSRoute's wildcard covers names of any depth (an
// Ingress-style tunnel's covers one label), and TCPRoute backendRefs are shares per backend.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { Backend, TunnelRoute } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { table, tunnelRoute } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { closedPort, closeServer, listen } from '../helpers/l7-peers.ts';

/** A TCP server that writes its name to every connection, then closes it. */
async function namedServer(name: string): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((s) => s.end(name));
  return { port: await listen(server), server };
}

async function nameFrom(port: number): Promise<string> {
  const s = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await once(s, 'close');
  return Buffer.concat(chunks).toString();
}

function backendAt(name: string, weight: number, ...ports: number[]): Backend {
  return { name, weight, endpoints: ports.map((port) => ({ address: '127.0.0.1', port })) };
}

describe('Gateway API tunnels', () => {
  let ca: TestCA;
  let gw: TestGateway;
  let tlsPort: number;
  let tcpPort: number;
  let tlsBackend: tls.Server;
  const servers: net.Server[] = [];

  before(async () => {
    ca = createTestCA();
    const leaf = ca.issue(['*.example.com', 'a.b.example.com']);
    tlsBackend = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end(`tls:${s.servername}`));
    const tlsBackendPort = await listen(tlsBackend);
    const one = await namedServer('one');
    const two = await namedServer('two');
    const three = await namedServer('three');
    servers.push(one.server, two.server, three.server);
    tlsPort = await closedPort();
    tcpPort = await closedPort();
    const tunnels: TunnelRoute[] = [
      tunnelRoute({ id: 'TLSRoute/apps/deep', route: 'apps/deep', port: tlsPort, sniHostnames: ['*.example.com'], backends: [backendAt('apps/tls:443', 1, tlsBackendPort)], wildcardAnyDepth: true, weightPerBackend: true }),
      tunnelRoute({
        id: 'TCPRoute/apps/db',
        route: 'apps/db',
        port: tcpPort,
        backends: [backendAt('apps/one:5432', 3, one.port), backendAt('apps/two:5432', 1, two.port, three.port)],
        weightPerBackend: true,
      }),
    ];
    gw = await startGateway(table({ tunnels }));
  });

  after(async () => {
    await gw?.close();
    if (tlsBackend) await closeServer(tlsBackend);
    for (const s of servers) await closeServer(s);
    ca?.dispose();
  });

  async function throughTls(servername: string): Promise<string> {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername, ca: ca.certPem });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    // A refused name ends in an error before the handshake: what counts is that nothing came through.
    s.on('error', () => {});
    await new Promise((resolve) => s.once('close', resolve));
    return Buffer.concat(chunks).toString();
  }

  test("a TLSRoute's wildcard passes names of one label and of more, and nothing else", async () => {
    assert.equal(await throughTls('x.example.com'), 'tls:x.example.com');
    assert.equal(await throughTls('a.b.example.com'), 'tls:a.b.example.com');
    assert.equal(await throughTls('example.org'), '', 'a name no route has is closed');
  });

  test('TCPRoute weights are shares per backend (3:1 over 8 connections), whatever each backend has of endpoints', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 8; i++) {
      const name = await nameFrom(tcpPort);
      const key = name === 'one' ? 'one' : 'two or three';
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(counts), { one: 6, 'two or three': 2 });
  });
});
