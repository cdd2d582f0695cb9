// Issue 9, item 13: a reload whose objects are the same as the last one read is a no-op: not counted in
// wsgate_config_reloads_total, logged at debug level only, no table applied (so nothing sent to workers). A rewrite of
// a file with the same content (what an editor's save, a `touch`-and-rewrite or a ConfigMap resync does) is the
// typical trigger. (That a log file written into the directory triggers no load at all is pinned in
// test/sources/files.test.ts, at the watcher.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { serve, type Server } from '../../src/cli/serve.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { metricSum } from '../helpers/metrics.ts';
import { backendService, createConfigDir, handshakeStatus, LogCapture, webSocketRoute, type ConfigDir, type Obj } from '../helpers/serve-harness.ts';

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate reload test' });
const DEBUG = 20;

for (const workers of [defaultWorkers(), 1]) {
  describe(`wsgate serve --workers ${workers}: a reload that reads what it read before`, { timeout: 60_000 }, () => {
    let echo: WsBackend;
    let dir: ConfigDir;
    let logs: LogCapture;
    let metrics: Metrics;
    let server: Server;
    let objects: Obj[];

    before(async () => {
      echo = await startWsBackend();
      dir = createConfigDir();
      objects = [...backendService('echo', echo.port), webSocketRoute('a', { hostnames: ['a.test'], rules: [{ backends: [{ service: 'echo' }] }] })];
      dir.write('config.yaml', objects);
      logs = new LogCapture('debug');
      metrics = createMetrics('test', { defaultMetrics: false });
      const local = { host: '127.0.0.1', port: 0 };
      server = await serve({
        log: logs.logger,
        logLevel: 'silent',
        metrics,
        configPath: dir.path,
        ingressClass: 'wsgate',
        httpAddr: local,
        adminAddr: local,
        tunnelHost: '127.0.0.1',
        handshakeTimeoutMs: 5000,
        defaultCertificate,
        debounceMs: 20,
        workers,
      });
    });

    after(async () => {
      await server?.stop();
      await echo?.close();
      dir?.dispose();
    });

    test('is not counted, logs nothing above debug, and applies no table', async () => {
      const successes = await metricSum(metrics, 'wsgate_config_reloads_total', { result: 'success' });
      assert.equal(successes, 1, 'the start is one reload');
      const mark = logs.lines.length;
      // The same objects, rewritten (a new inode, renamed over the old one): the watcher sees a change.
      dir.write('config.yaml', objects);
      await logs.waitFor((l) => logs.lines.indexOf(l) >= mark && l.msg === 'configuration unchanged: nothing to apply', 'the no-op');
      // And the same through the API, waited for.
      assert.equal(await server.reload(), true);
      const since = logs.lines.slice(mark);
      assert.deepEqual(since.filter((l) => l.level > DEBUG).map((l) => l.msg), []);
      assert.equal(since.filter((l) => l.msg === 'routing table applied').length, 0);
      assert.equal(await metricSum(metrics, 'wsgate_config_reloads_total', { result: 'success' }), 1);
      assert.equal(await metricSum(metrics, 'wsgate_config_reloads_total', { result: 'failure' }), 0);
      const port = server.plane.addresses().http!.port;
      assert.equal(await handshakeStatus(`ws://127.0.0.1:${port}/`, 'a.test'), 101);
    });

    test('a change after it is applied and counted as usual', async () => {
      const mark = logs.lines.length;
      dir.write('config.yaml', [...objects, webSocketRoute('b', { hostnames: ['b.test'], rules: [{ backends: [{ service: 'echo' }] }] })]);
      await logs.waitFor((l) => logs.lines.indexOf(l) >= mark && l.msg === 'routing table applied', 'the change applied');
      assert.equal(await metricSum(metrics, 'wsgate_config_reloads_total', { result: 'success' }), 2);
      const port = server.plane.addresses().http!.port;
      assert.equal(await handshakeStatus(`ws://127.0.0.1:${port}/`, 'b.test'), 101);
    });
  });
}
