// The admin server of `wsgate serve`: /metrics (wsgate's own metrics and the process defaults), /debug/routes (the
// live table, without key or certificate material) and a 404 for anything else.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import {
  backendService,
  createConfigDir,
  startServe,
  tlsSecret,
  webSocketRoute,
  type ConfigDir,
  type DebugTable,
  type ServeHarness,
} from '../helpers/serve-harness.ts';

let ca: TestCA;
let echo: WsBackend;
let dir: ConfigDir;
let h: ServeHarness;
let leaf: { certPem: string; keyPem: string };

/** Rules in the configuration below: two on chat.test, one for every host. */
const RULES = 3;

before(async () => {
  ca = createTestCA();
  leaf = ca.issue(['chat.test']);
  echo = await startWsBackend();
  dir = createConfigDir();
  dir.write('10-config.yaml', [
    ...backendService('echo', echo.port),
    tlsSecret('chat-tls', leaf),
    webSocketRoute('chat', {
      hostnames: ['chat.test'],
      tlsSecret: 'chat-tls',
      rules: [
        { path: '/ws', backends: [{ service: 'echo' }] },
        { path: '/admin', pathType: 'Exact', backends: [{ service: 'echo' }] },
      ],
    }),
    webSocketRoute('any', { rules: [{ path: '/', backends: [{ service: 'echo' }] }] }),
  ]);
  h = await startServe(dir.path, { defaultMetrics: true });
  await h.awaitTable((hosts) => hosts.includes('chat.test') && hosts.includes('*'), 'the configuration live');
});

after(async () => {
  await h?.close();
  await echo?.close();
  dir?.dispose();
  ca?.dispose();
});

/** The value of the sample `name{labels}` in a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length).split(' ')[0]);
}

async function get(path: string): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(`${h.adminUrl}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('the admin server of wsgate serve', { timeout: 20_000 }, () => {
  test('/metrics exposes build info, the live route count and process metrics', async () => {
    const { status, type, body } = await get('/metrics');
    assert.equal(status, 200);
    assert.match(type ?? '', /^text\/plain/);
    assert.equal(sample(body, 'wsgate_build_info', 'version="test"'), 1);
    assert.equal(sample(body, 'wsgate_routes', 'kind="http"'), RULES);
    assert.equal(sample(body, 'wsgate_routes', 'kind="tunnel"'), 0);
    assert.ok((sample(body, 'wsgate_config_reloads_total', 'result="success"') ?? 0) >= 1);
    assert.equal(sample(body, 'wsgate_config_reloads_total', 'result="failure"'), 0);
    const cpu = sample(body, 'wsgate_process_cpu_seconds_total');
    assert.ok(cpu !== undefined && cpu > 0, 'wsgate_process_cpu_seconds_total is exposed');
    assert.match(body, /^wsgate_nodejs_/m);
  });

  test('/debug/routes lists the live hosts and no certificate or key material', async () => {
    const { status, type, body } = await get('/debug/routes');
    assert.equal(status, 200);
    assert.match(type ?? '', /^application\/json/);
    const t = JSON.parse(body) as DebugTable;
    assert.deepEqual(
      t.virtualHosts.map((v) => v.hostname),
      ['chat.test', '*'],
    );
    assert.deepEqual(
      t.virtualHosts.find((v) => v.hostname === 'chat.test')!.routes.map((r) => r.path).sort(),
      ['/admin', '/ws'],
    );
    assert.deepEqual(t.certificates, [{ secret: 'default/chat-tls', hostnames: ['chat.test'] }]);
    assert.doesNotMatch(body, /-----BEGIN/);
    assert.doesNotMatch(body, /PRIVATE KEY/);
    // Neither the PEM bodies nor their base64 (as the Secret carries them) appear.
    const keyBody = leaf.keyPem.split('\n')[1]!;
    const certBody = leaf.certPem.split('\n')[1]!;
    assert.ok(!body.includes(keyBody) && !body.includes(certBody), 'no PEM body');
    assert.ok(!body.includes(Buffer.from(leaf.keyPem).toString('base64').slice(0, 40)), 'no base64 key');
  });

  test('answers 404 for an unknown path', async () => {
    const { status, body } = await get('/nope');
    assert.equal(status, 404);
    assert.match(body, /\/metrics/);
  });
});
