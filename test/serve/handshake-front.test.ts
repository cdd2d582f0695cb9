// `wsgate serve` as a user runs it, with the default --workers and with --workers 1: a WebSocket handshake read
// before http.Server (handshake-front.ts, issue 13) works whatever the segments it arrives in, a slow head is still
// answered 408 at --handshake-timeout, and the access log (batched: logger.ts) reaches stdout while the process
// runs, not only when it exits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { converge, encodeFrame, frame, handshake, httpHead, rawConnect, readUntil, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { writeChunks } from '../helpers/raw-tunnel.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';
import { killAll, spawnServe, WORKER_SETTINGS, type ServeProcess } from './serve-process.ts';

for (const setting of WORKER_SETTINGS) {
  describe(`wsgate serve with ${setting.name}: handshakes read before http.Server`, { timeout: 90_000 }, () => {
    let echo: WsBackend;
    let dir: ConfigDir;
    let p: ServeProcess;

    before(async () => {
      echo = await startWsBackend();
      dir = createConfigDir();
      dir.write('config.yaml', [...backendService('echo', echo.port), webSocketRoute('echo', { rules: [{ backends: [{ service: 'echo' }] }] })]);
      p = await spawnServe(dir.path, ['--handshake-timeout', '1s', '--log-level', 'info', ...setting.args]);
      await p.ready();
    });

    after(async () => {
      await p?.stop();
      killAll();
      await echo?.close();
      dir?.dispose();
    });

    test('a handshake whose head arrives one byte per segment is switched and echoes, and its access-log line is written while wsgate runs', async () => {
      const client = await rawConnect(p.httpPort);
      const answer = readUntil(client, httpHead);
      await writeChunks(client, [...Buffer.from(handshake({ path: '/bytewise' }))].map((b) => Buffer.from([b])));
      const { value: head, rest } = await answer;
      assert.match(head, /^HTTP\/1\.1 101 /);
      client.write(encodeFrame(0x1, 'one byte at a time', true));
      const echoed = await readUntil(client, frame, rest);
      assert.equal(echoed.value.payload.toString(), 'one byte at a time');
      client.destroy();
      // The line comes from the batch's flush timer, not from an exit.
      await converge(() => p.stdout().includes('"path":"/bytewise"') && p.stdout().includes('tunnel closed'), 'the access-log line on stdout', 2, 10_000);
      assert.equal(p.exit(), undefined);
    });

    test('a head that does not complete within --handshake-timeout is answered 408', async () => {
      const client = await rawConnect(p.httpPort);
      const chunks: Buffer[] = [];
      client.on('data', (c: Buffer) => chunks.push(c));
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.write('GET / HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n');
      await closed;
      assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 408 /);
    });
  });
}
