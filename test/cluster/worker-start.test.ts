// Issue 9, item 12 (the worker's half): when a worker cannot bind, the start fails with the error a single process
// would raise: WsgateError WSGATE_ERR_LISTEN whose cause carries EADDRINUSE. The code travels from the worker over
// IPC. The fault is real: the port is taken between the primary's probe (start()) and the workers' bind (the first
// apply()), the window the probe cannot close (docs/architecture.md).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { WorkerPool } from '../../src/cluster/primary.ts';
import { ErrorCodes, WsgateError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { EMPTY_TABLE } from '../../src/model/table.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { closeServer } from '../helpers/l7-peers.ts';

describe('a worker pool whose port is taken after the probe', { timeout: 60_000 }, () => {
  const pool = new WorkerPool({
    workers: 2,
    log: silentLogger(),
    metrics: createMetrics('test', { defaultMetrics: false }),
    init: {
      httpAddr: { host: '127.0.0.1', port: 0 },
      tunnelHost: '127.0.0.1',
      handshakeTimeoutMs: 5000,
      defaultCertificate: generateSelfSigned({ commonName: 'wsgate worker start test' }),
      logLevel: 'silent',
      version: 'test',
    },
  });
  const thief = net.createServer();

  after(async () => {
    await closeServer(thief);
    await pool.stop();
  });

  test('fails the first apply with WSGATE_ERR_LISTEN and EADDRINUSE, says why in readiness, and starts on a later apply', async () => {
    await pool.start();
    const port = pool.addresses().http!.port;
    await new Promise<void>((resolve) => thief.listen({ host: '127.0.0.1', port }, resolve));

    const err = await pool.apply(EMPTY_TABLE).then(
      () => assert.fail('the apply succeeded on a port another process holds'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WsgateError, String(err));
    assert.equal(err.code, ErrorCodes.LISTEN);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.match(pool.notReady() ?? '', /^listeners not bound: cannot listen/);

    await closeServer(thief);
    await pool.apply(EMPTY_TABLE);
    assert.equal(pool.notReady(), undefined);
  });
});
