// Bad configuration written while `wsgate serve` runs: the last good configuration keeps serving, the reload is
// counted as a failure, and the log says where the problem is (file, kind, namespace/name, field). A reference that
// does not resolve is not a failure: the other routes keep working and a warning names the object and condition.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import {
  awaitMetric,
  backendService,
  createConfigDir,
  handshakeStatus,
  LogCapture,
  openWithHost,
  startServe,
  webSocketRoute,
  type ConfigDir,
  type LogLine,
  type ServeHarness,
} from '../helpers/serve-harness.ts';

let echo: WsBackend;
let dir: ConfigDir;
let logs: LogCapture;
let h: ServeHarness;

function route(name: string, host: string, serviceName = 'echo') {
  return webSocketRoute(name, { hostnames: [host], rules: [{ path: '/', backends: [{ service: serviceName }] }] });
}

async function echoes(host: string): Promise<void> {
  const c = await openWithHost(`${h.wsUrl}/`, host);
  assert.equal((await roundTrip(c, `hello ${host}`)).data.toString(), `hello ${host}`);
  c.ws.close();
  await c.closed;
}

const failures = (): Promise<number> => h.metric('wsgate_config_reloads_total', { result: 'failure' });
const successes = (): Promise<number> => h.metric('wsgate_config_reloads_total', { result: 'success' });

/** Restores the good configuration (base files only) and waits until it is live. */
async function restore(): Promise<void> {
  for (const f of ['bad.yaml', 'extra.yaml']) {
    try {
      dir.remove(f);
    } catch {
      // not there
    }
  }
  dir.write('20-good.yaml', [route('good', 'good.test')]);
  await h.awaitTable((hosts) => JSON.stringify(hosts) === JSON.stringify(['good.test']), 'the good configuration live');
}

before(async () => {
  echo = await startWsBackend();
  dir = createConfigDir();
  dir.write('10-services.yaml', backendService('echo', echo.port));
  dir.write('20-good.yaml', [route('good', 'good.test')]);
  logs = new LogCapture('info');
  h = await startServe(dir.path, { log: logs.logger });
  await h.awaitTable((hosts) => hosts.includes('good.test'), 'initial configuration live');
});

beforeEach(restore);

after(async () => {
  await h?.close();
  await echo?.close();
  dir?.dispose();
});

const isInvalid = (l: LogLine): boolean => l.msg === 'invalid configuration';

describe('configuration errors while serving', { timeout: 30_000 }, () => {
  test('keeps the last good configuration when a file is not YAML, and says which file', async () => {
    const before = await failures();
    const file = dir.writeText('bad.yaml', 'apiVersion: v1\nkind: [Service\nmetadata: {name: x\n');
    await awaitMetric(h, 'wsgate_config_reloads_total', { result: 'failure' }, (n) => n > before, 'a failed reload');
    await echoes('good.test');
    const line = await logs.waitFor((l) => isInvalid(l) && l.file === file, `invalid configuration naming ${file}`);
    assert.match(String(line.message), /YAML syntax error at line \d+/);
    await logs.waitFor((l) => l.msg.startsWith('configuration rejected'), 'configuration rejected');
    assert.equal(await h.metric('wsgate_config_last_reload_successful'), 0);

    // Fixing the file applies again.
    dir.write('bad.yaml', [route('fixed', 'fixed.test')]);
    await h.awaitTable((hosts) => hosts.includes('fixed.test'), 'the fixed file live');
    await echoes('fixed.test');
    await echoes('good.test');
    assert.equal(await h.metric('wsgate_config_last_reload_successful'), 1);
  });

  test('rejects a reload with an out-of-range field, naming file, kind, namespace/name and field', async () => {
    const before = await failures();
    const tunnel = {
      apiVersion: 'wsgate.io/v1alpha1',
      kind: 'TCPTunnel',
      metadata: { name: 'too-high', namespace: 'edge' },
      spec: { port: 70000, backends: [{ service: 'echo', port: 80 }] },
    };
    // A valid new route in the same reload: it must not go live while another object is invalid.
    const file = dir.write('bad.yaml', [tunnel, route('alongside', 'alongside.test')]);
    await awaitMetric(h, 'wsgate_config_reloads_total', { result: 'failure' }, (n) => n > before, 'a failed reload');
    const line = await logs.waitFor((l) => isInvalid(l) && l.file === file && l.name === 'too-high', 'invalid configuration for too-high');
    assert.equal(line.kind, 'TCPTunnel');
    assert.equal(line.namespace, 'edge');
    assert.equal(line.field, 'spec.port');
    assert.deepEqual(await h.liveHosts(), ['good.test']);
    assert.equal(await handshakeStatus(`${h.wsUrl}/`, 'alongside.test'), 404);
    await echoes('good.test');

    // Without the invalid object, the rest of the file applies.
    const okBefore = await successes();
    dir.write('bad.yaml', [route('alongside', 'alongside.test')]);
    await h.awaitTable((hosts) => hosts.includes('alongside.test'), 'the fixed file live');
    assert.ok((await successes()) > okBefore);
    await echoes('alongside.test');
  });

  test('rejects a reload with an unsupported enum value, naming the field', async () => {
    const before = await failures();
    const bad = webSocketRoute('lb', {
      namespace: 'prod',
      hostnames: ['lb.test'],
      rules: [{ path: '/', backends: [{ service: 'echo' }] }],
      policy: { loadBalancing: { policy: 'Random' } },
    });
    const file = dir.write('bad.yaml', [bad]);
    await awaitMetric(h, 'wsgate_config_reloads_total', { result: 'failure' }, (n) => n > before, 'a failed reload');
    const line = await logs.waitFor((l) => isInvalid(l) && l.file === file && l.name === 'lb', 'invalid configuration for lb');
    assert.equal(line.kind, 'WebSocketRoute');
    assert.equal(line.namespace, 'prod');
    assert.equal(line.field, 'spec.policy.loadBalancing.policy');
    assert.match(String(line.message), /Random/);
    await echoes('good.test');
  });

  test('applies a route whose Service is missing, keeps the others working, and warns naming the object', async () => {
    const before = await failures();
    dir.write('extra.yaml', [route('orphan', 'orphan.test', 'nowhere'), route('sibling', 'sibling.test')]);
    await h.awaitTable((hosts) => hosts.includes('sibling.test'), 'the sibling route live');
    await echoes('sibling.test');
    await echoes('good.test');
    const line = await logs.waitFor(
      (l) => l.msg === 'object not fully accepted' && l.name === 'orphan',
      'object not fully accepted for orphan',
    );
    assert.equal(line.kind, 'WebSocketRoute');
    assert.equal(line.namespace, 'default');
    assert.equal(line.condition, 'ResolvedRefs');
    assert.match(String(line.message), /nowhere/);
    // The route is there, with no backend to send to: no_endpoint.
    assert.equal(await handshakeStatus(`${h.wsUrl}/`, 'orphan.test'), 503);
    assert.equal(await failures(), before, 'an unresolved reference is not a failed reload');
  });
});
