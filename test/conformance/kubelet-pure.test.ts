// The pure parts of the process kubelet (a test fixture): how an image becomes a command, how the environment is
// built from the Pod spec, and the script that prepares a container's mount namespace. No cluster, no root.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { entrypoint, lookupImage, placeholder, repositoryOf } from './kubelet/images.ts';
import { expand, fieldValue } from './kubelet/pod-spec.ts';
import { sandboxScript } from './kubelet/sandbox.ts';

describe('process kubelet: images', () => {
  it('finds an image by exact reference first, then by repository whatever the tag or digest', () => {
    const map = new Map([
      ['registry.k8s.io/gateway-api/echo-basic', entrypoint(['/bin/echo-basic'])],
      ['registry.k8s.io/gateway-api/echo-basic:special', entrypoint(['/bin/special'])],
    ]);
    assert.deepEqual(lookupImage(map, 'registry.k8s.io/gateway-api/echo-basic:v1.5.1')?.({ name: 'c' }), ['/bin/echo-basic']);
    assert.deepEqual(lookupImage(map, 'registry.k8s.io/gateway-api/echo-basic:special')?.({ name: 'c' }), ['/bin/special']);
    assert.deepEqual(lookupImage(map, 'registry.k8s.io/gateway-api/echo-basic@sha256:abcd')?.({ name: 'c' }), ['/bin/echo-basic']);
    assert.equal(lookupImage(map, 'registry.k8s.io/other:v1'), undefined);
    assert.equal(repositoryOf('localhost:5000/wsgate:0.1.0'), 'localhost:5000/wsgate', 'a registry port is not a tag');
    assert.equal(repositoryOf('localhost:5000/wsgate'), 'localhost:5000/wsgate');
  });

  it('follows ENTRYPOINT/CMD rules: args replace CMD, a command must be mapped from its in-image path', () => {
    const wsgate = entrypoint(['node', 'bin/wsgate.js'], { cmd: ['controller'], commands: { '/app/bin/wsgate.js': ['node', 'bin/wsgate.js'] } });
    assert.deepEqual(wsgate({ name: 'c' }), ['node', 'bin/wsgate.js', 'controller']);
    assert.deepEqual(wsgate({ name: 'c', args: ['serve', '-f', 'x'] }), ['node', 'bin/wsgate.js', 'serve', '-f', 'x']);
    assert.deepEqual(wsgate({ name: 'c', command: ['/app/bin/wsgate.js', 'sidecar'], args: ['--x'] }), ['node', 'bin/wsgate.js', 'sidecar', '--x']);
    assert.match((wsgate({ name: 'c', command: ['/bin/sh'] }) as { error: string }).error, /\/bin\/sh/);
    assert.deepEqual(placeholder()({ name: 'c', args: ['-conf', '/root/Corefile'] }), ['sleep', 'infinity']);
  });
});

describe('process kubelet: environment', () => {
  const pod: V1Pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u1', labels: { b: '2', a: '1' }, annotations: { note: 'x"y' } },
    spec: { nodeName: 'node-1', serviceAccountName: 'sa', containers: [] },
  };
  const addrs = { podIP: '198.51.100.5', hostIP: '198.51.100.1', apiServer: { host: '198.51.100.1', port: '6443' } };

  it('resolves the downward-API fields echo-basic and wsgate read', () => {
    const f = (fieldPath: string): string => fieldValue(pod, { fieldPath }, addrs);
    assert.equal(f('metadata.name'), 'p');
    assert.equal(f('metadata.namespace'), 'ns');
    assert.equal(f('metadata.uid'), 'u1');
    assert.equal(f('spec.nodeName'), 'node-1');
    assert.equal(f('spec.serviceAccountName'), 'sa');
    assert.equal(f('status.podIP'), '198.51.100.5');
    assert.equal(f('status.hostIP'), '198.51.100.1');
    assert.equal(f("metadata.labels['a']"), '1');
    assert.equal(f('metadata.labels'), 'a="1"\nb="2"', 'sorted key="value" lines');
    assert.equal(f('metadata.annotations'), 'note="x\\"y"');
    assert.throws(() => f('status.phase'), /unsupported fieldRef status.phase/);
  });

  it('expands $(VAR) from earlier variables, leaves unknown ones, and reads $$ as $', () => {
    const env = { HOST: 'a', PORT: '80' };
    assert.equal(expand('http://$(HOST):$(PORT)/', env), 'http://a:80/');
    assert.equal(expand('$(NOPE) $$(HOST) $$', env), '$(NOPE) $(HOST) $');
  });
});

describe('process kubelet: the sandbox script', () => {
  const overlayDir = join(mkdtempSync(join(tmpdir(), 'wsgate-sandbox-test-')), 'overlay');
  after(() => rmSync(dirname(overlayDir), { recursive: true, force: true }));

  it('bind-mounts volumes at existing paths, covers missing ones with an overlay of their deepest existing ancestor, and execs the program', () => {
    const script = sandboxScript({
      hostname: 'pod-1',
      workingDir: '/tmp',
      overlayDir,
      mounts: [
        { hostPath: '/tmp/v/sa', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
        { hostPath: '/tmp/v/tls', mountPath: '/etc/secret-volume', readOnly: false },
        { hostPath: '/tmp/v/tmp', mountPath: '/tmp', readOnly: false },
      ],
    });
    const lines = script.split('\n');
    assert.equal(lines[0], 'set -eu');
    assert.equal(lines[1], "hostname 'pod-1'");
    // /etc exists: its overlay (upper layer in the pod's directory) lets the missing directory be made privately.
    assert.ok(lines.includes(`mount -t overlay overlay -o 'lowerdir=/etc,upperdir=${overlayDir}/0/upper,workdir=${overlayDir}/0/work' '/etc'`), script);
    assert.ok(lines.includes("mkdir -p '/etc/secret-volume'"));
    assert.ok(lines.includes("mount --bind '/tmp/v/tls' '/etc/secret-volume'"));
    // The overlay goes on the real directory (/var/run is a symlink to /run on these machines).
    let ancestor = '/var/run/secrets/kubernetes.io/serviceaccount';
    while (!existsSync(ancestor)) ancestor = dirname(ancestor);
    assert.ok(lines.some((l) => l.includes(`lowerdir=${realpathSync(ancestor)},`)), script);
    assert.ok(lines.includes("mount -o remount,bind,ro '/var/run/secrets/kubernetes.io/serviceaccount'"));
    // An existing mountPath is bound as it is.
    assert.ok(lines.includes("mount --bind '/tmp/v/tmp' '/tmp'"));
    assert.deepEqual(lines.slice(-3), ["cd '/tmp'", 'exec "$@"', '']);
  });

  it('refuses a mountPath under which only / exists', () => {
    assert.throws(
      () => sandboxScript({ hostname: 'p', workingDir: '/', overlayDir, mounts: [{ hostPath: '/tmp', mountPath: '/no-such-top-level-dir/x', readOnly: false }] }),
      /only \/ exists above it/,
    );
  });
});
