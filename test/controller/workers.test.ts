// `wsgate controller --workers 2` against a real API server: the controller runs in the primary and hands each
// table to both data-plane workers, which share the listening port; a change made through the API reaches both.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { apis, endpointSlice, eventually, exchange, freePort, service, webSocketRoute, type Apis } from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NS = 'workers';
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };

describe('wsgate controller --workers 2', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let child: ChildProcess;
  let httpPort: number;
  let admin: string;
  const backends: { stop(): Promise<void> }[] = [];

  before(async () => {
    cp = await startControlPlane();
    net = createPodNetwork(6);
    backends.push(await net.startEchoBackend(net.podIP(0), 8080, 'a'));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'echo') });
    await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, 'echo', [net.podIP(0)]) });
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'echo', { host: 'echo.test', service: 'echo', path: '/v1' }) });
    httpPort = await freePort();
    const adminPort = await freePort();
    admin = `http://127.0.0.1:${adminPort}`;
    child = spawn(
      process.execPath,
      ['bin/wsgate.js', 'controller', '--kubeconfig', cp.kubeconfigPath, '--namespace', NS, '--workers', '2',
        '--http-addr', `127.0.0.1:${httpPort}`, '--https-addr', 'off', '--admin-addr', `127.0.0.1:${adminPort}`,
        '--leader-election-namespace', NS, '--leader-election-id', 'workers-test', '--log-level', 'warn'],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    await eventually('the controller ready', async () => {
      if (child.exitCode !== null) throw new Error(`wsgate controller exited with ${child.exitCode}`);
      try {
        return (await fetch(`${admin}/readyz`)).status === 200 ? true : undefined;
      } catch {
        return undefined;
      }
    }, { timeoutMs: 30_000 });
  });

  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
  });

  async function workers(): Promise<{ worker: number; notReady: string | null }[]> {
    return (await (await fetch(`${admin}/debug/workers`)).json()) as { worker: number; notReady: string | null }[];
  }

  it('serves the route from both workers, and a change through the API reaches both', async () => {
    const ws = await workers();
    assert.equal(ws.length, 2);
    assert.ok(ws.every((w) => w.notReady === null), JSON.stringify(ws));
    // The kernel spreads connections over the two workers; 20 in a row all being served means both have the table
    // (the chance that one worker got none of them is 2 × 2^-20).
    for (let i = 0; i < 20; i++) assert.equal(await exchange(httpPort, 'echo.test', '/v1', `m${i}`), `a:m${i}`);

    await api.custom.patchNamespacedCustomObject({
      ...WSR,
      name: 'echo',
      body: [{ op: 'replace', path: '/spec/rules/0/path/value', value: '/v2' }],
    });
    await eventually('/v2 served by every worker', async () => {
      for (let i = 0; i < 20; i++) if ((await exchange(httpPort, 'echo.test', '/v2', `n${i}`)) !== `a:n${i}`) return undefined;
      return true;
    });
    assert.equal(await exchange(httpPort, 'echo.test', '/v1', 'gone'), 'HTTP 404');
  });

  it('adds up both workers on /metrics and reports leadership from the primary', async () => {
    const text = await (await fetch(`${admin}/metrics`)).text();
    const value = (prefix: string): number =>
      text
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    assert.ok(value('wsgate_connections_total{route="workers/echo"') >= 41, text.slice(0, 400));
    assert.equal(value('wsgate_leader '), 1);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
  });
});
