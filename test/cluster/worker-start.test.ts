// Issue 9, item 12 (the worker's half): when a worker cannot bind, the start fails with the error a single process
// would raise: WsgateError WSGATE_ERR_LISTEN whose cause carries EADDRINUSE. The code travels from the worker over
// IPC. The fault is real: a configured port is taken between the primary's probe (start()) and the workers' bind (the
// first apply()), the window the probe cannot close (docs/architecture.md).
//
// Port 0 has no such window: the port the OS chose is held from the probe until the workers have bound it, bound and
// not listening, so that no outgoing connection of this host is given it as its source port meanwhile (the kernel
// never picks an explicitly bound port for one), while a client that connects before the workers listen is refused
// as if nothing were there (port-probe.ts, holdPort()).
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { WorkerPool } from '../../src/cluster/primary.ts';
import { ErrorCodes, WsgateError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { EMPTY_TABLE } from '../../src/model/table.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { closeServer } from '../helpers/l7-peers.ts';

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate worker start test' });

function pool(port: number): WorkerPool {
  return new WorkerPool({
    workers: 2,
    log: silentLogger(),
    metrics: createMetrics('test', { defaultMetrics: false }),
    init: {
      httpAddr: { host: '127.0.0.1', port },
      tunnelHost: '127.0.0.1',
      handshakeTimeoutMs: 5000,
      defaultCertificate,
      logLevel: 'silent',
      version: 'test',
    },
  });
}

/** This host's TCP sockets whose local port is `port`, as /proc/net/tcp lists them: [state, remote port]. */
function socketsOn(port: number): [state: string, remotePort: number][] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hex}`))
    .map((f) => [f[3]!, parseInt(f[2]!.split(':')[1]!, 16)]);
}

const ESTABLISHED = '01';
const LISTEN = '0A';

/** A connection attempt to the port: 'connected', or the error's code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
  });
}

/** The status line of a plain HTTP request to the port, or the error that ended it. */
function statusLine(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? ''}`));
    socket.on('close', () => resolve(data.split('\r\n')[0] || 'closed without an answer'));
    socket.write('GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n');
  });
}

describe('a worker pool whose configured port is taken after the probe', { timeout: 60_000 }, () => {
  let p: WorkerPool | undefined;
  const thief = net.createServer();

  after(async () => {
    await closeServer(thief);
    await p?.stop();
  });

  test('fails the first apply with WSGATE_ERR_LISTEN and EADDRINUSE, says why in readiness, and starts on a later apply', async () => {
    // A concrete port below the ephemeral range (no outgoing connection is given one of those), free when probed.
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    let port = 0;
    for (let attempt = 0; p === undefined; attempt++) {
      port = 10_000 + Math.floor(Math.random() * (low! - 10_000));
      const candidate = pool(port);
      try {
        await candidate.start();
        p = candidate;
      } catch (err) {
        await candidate.stop();
        if (attempt === 20) throw err;
      }
    }
    await new Promise<void>((resolve) => thief.listen({ host: '127.0.0.1', port }, resolve));

    const err = await p.apply(EMPTY_TABLE).then(
      () => assert.fail('the apply succeeded on a port another process holds'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WsgateError, String(err));
    assert.equal(err.code, ErrorCodes.LISTEN);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(p.notReady() ?? '', /^listeners not bound: cannot listen/);

    await closeServer(thief);
    await p.apply(EMPTY_TABLE);
    assert.equal(p.notReady(), undefined);
  });
});

describe('a worker pool on port 0', { timeout: 60_000 }, () => {
  const p = pool(0);
  after(() => p.stop());

  test('holds the chosen port from the probe until its workers listen, without listening on it, then leaves it to them', async () => {
    await p.start();
    const port = p.addresses().http!.port;
    // Between start() and the first apply (forking the workers): the port is bound (a connection of the primary to
    // itself), so the kernel gives it to no outgoing connection; nothing listens, so a client is refused.
    assert.deepEqual(socketsOn(port), [[ESTABLISHED, port]]);
    assert.equal(await tryConnect(port), 'ECONNREFUSED');

    await p.apply(EMPTY_TABLE);
    assert.equal(p.notReady(), undefined);
    // The workers' two listeners, and no hold left.
    assert.deepEqual(socketsOn(port).filter(([state]) => state !== '06'), [[LISTEN, 0], [LISTEN, 0]]);
    for (let i = 0; i < 24; i++) assert.equal(await statusLine(port), 'HTTP/1.1 404 Not Found', `connection ${i}`);
  });
});
