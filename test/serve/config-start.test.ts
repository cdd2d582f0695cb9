// Issue 9, item 14: an invalid configuration at start refuses to start (exit 2, every problem listed with file,
// kind, namespace/name and field) instead of serving an empty table and saying ready, unless
// --allow-invalid-config asks for the valid objects to be served. And from issue 15, item 6: a --config directory
// without configuration files is worth a warning naming it, at start and on a reload that empties it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { converge, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, handshakeStatus, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';
import { killAll, parseExposition, spawnServe, WORKER_SETTINGS, type ServeProcess } from './serve-process.ts';

let echo: WsBackend;
let invalid: ConfigDir;

before(async () => {
  echo = await startWsBackend();
  invalid = createConfigDir();
  invalid.write('10-good.yaml', [...backendService('echo', echo.port), webSocketRoute('good', { hostnames: ['good.test'], rules: [{ backends: [{ service: 'echo' }] }] })]);
  invalid.write('20-bad.yaml', [
    { apiVersion: 'wsgate.io/v1alpha1', kind: 'TCPTunnel', metadata: { name: 'too-high', namespace: 'edge' }, spec: { port: 70000, backends: [{ service: 'echo', port: 80 }] } },
  ]);
  invalid.writeText('30-broken.yaml', 'apiVersion: v1\nkind: [Service\n');
});

after(async () => {
  killAll();
  await echo?.close();
  invalid?.dispose();
});

async function exitOf(p: ServeProcess): Promise<Awaited<ServeProcess['exited']>> {
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 30_000);
  const exit = await p.exited;
  clearTimeout(timer);
  assert.notEqual(exit.signal, 'SIGKILL', `wsgate started (and was killed after 30 s): ${exit.stdout.slice(-1000)}`);
  return exit;
}

function logLines(p: ServeProcess): { level: number; msg: string; [k: string]: unknown }[] {
  return p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
}

for (const setting of WORKER_SETTINGS) {
  describe(`wsgate serve with ${setting.name} and a configuration with problems at start`, { timeout: 150_000 }, () => {
    test('refuses to start: exit 2, every problem listed with file, kind, namespace/name and field', async () => {
      const p = await spawnServe(invalid.path, [...setting.args, '--log-level', 'error']);
      const exit = await exitOf(p);
      assert.equal(exit.code, 2, exit.stderr);
      assert.match(exit.stderr, /WSGATE_ERR_CONFIG_INVALID: .*2 configuration problems/);
      assert.match(exit.stderr, /--allow-invalid-config/);
      assert.match(exit.stderr, /WSGATE_ERR_CONFIG_INVALID \S*20-bad\.yaml TCPTunnel edge\/too-high spec\.port: /);
      assert.match(exit.stderr, /WSGATE_ERR_CONFIG_PARSE \S*30-broken\.yaml: YAML syntax error at line \d+/);
    });

    test('with --allow-invalid-config serves the valid objects, is ready, and reports the load as failed', async () => {
      const p = await spawnServe(invalid.path, [...setting.args, '--allow-invalid-config', '--log-level', 'error']);
      try {
        await p.ready();
        assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.httpPort}/`, 'good.test'), 101);
        const m = parseExposition((await p.admin('/metrics')).body);
        assert.equal(m.get('wsgate_config_last_reload_successful')?.value, 0);
        assert.equal(m.get('wsgate_config_reloads_total{result="failure"}')?.value, 1);
        assert.equal(m.get('wsgate_config_reloads_total{result="success"}')?.value, 0);
      } finally {
        await p.stop();
      }
    });
  });

  describe(`wsgate serve with ${setting.name} and an empty --config directory`, { timeout: 150_000 }, () => {
    test('warns naming the directory at start and again when a reload empties it, and serves no route meanwhile', async () => {
      const dir = createConfigDir();
      const p = await spawnServe(dir.path, [...setting.args, '--log-level', 'info']);
      const warnings = (): number => logLines(p).filter((l) => l.level === 40 && l.directory === dir.path && /no configuration file/.test(l.msg)).length;
      try {
        await p.ready();
        assert.equal(warnings(), 1);
        dir.write('a.yaml', [...backendService('echo', echo.port), webSocketRoute('a', { hostnames: ['a.test'], rules: [{ backends: [{ service: 'echo' }] }] })]);
        await converge(async () => (await handshakeStatus(`ws://127.0.0.1:${p.httpPort}/`, 'a.test')) === 101, 'a.test served', 3, 20_000);
        assert.equal(warnings(), 1);
        dir.remove('a.yaml');
        await converge(() => warnings() === 2, 'a second warning', 1, 20_000);
        assert.equal(await handshakeStatus(`ws://127.0.0.1:${p.httpPort}/`, 'a.test'), 404);
      } finally {
        await p.stop();
        dir.dispose();
      }
    });
  });
}
