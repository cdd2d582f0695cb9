// `wsgate webhook` flags: a bad one exits 2 with a message saying what to change.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { killAll, runWsgate } from '../sidecar/process.ts';

after(killAll);

describe('wsgate webhook flags', { timeout: 30_000 }, () => {
  const cases: { name: string; args: string[]; stderr: RegExp }[] = [
    { name: 'without --image', args: ['--tls-cert', 'package.json', '--tls-key', 'package.json'], stderr: /--image IMAGE/ },
    { name: 'without a certificate', args: ['--image', 'wsgate:1'], stderr: /--tls-cert FILE and --tls-key FILE, or --self-signed/ },
    { name: 'with a --tls-cert that does not exist', args: ['--image', 'wsgate:1', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], stderr: /--tls-cert=\/nonexistent\.pem: no such file/ },
    { name: 'with --self-signed but no --webhook-config', args: ['--image', 'wsgate:1', '--self-signed'], stderr: /--webhook-config NAME/ },
    { name: 'with --self-signed but no --dns-name', args: ['--image', 'wsgate:1', '--self-signed', '--webhook-config', 'x'], stderr: /--dns-name NAME/ },
    { name: 'with a bad --cpu-request', args: ['--image', 'wsgate:1', '--cpu-request', 'lots', '--tls-cert', 'package.json', '--tls-key', 'package.json'], stderr: /--cpu-request=lots/ },
    { name: 'with --run-as-user 0', args: ['--image', 'wsgate:1', '--run-as-user', '0', '--tls-cert', 'package.json', '--tls-key', 'package.json'], stderr: /non-root/ },
  ];
  for (const c of cases) {
    test(`exits 2 ${c.name}, naming what to change`, async () => {
      const r = await runWsgate('webhook', ...c.args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, c.stderr);
    });
  }
});
