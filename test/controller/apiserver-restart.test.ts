// The API server going away never touches the data plane: kube-apiserver is stopped (etcd keeps running, so the
// data survive) and started again. Traffic flows the whole time, on a connection opened before and on new ones; the
// informers count their errors, reconnect with backoff, and a change made after the restart is applied.
//
// test/helpers/kube.ts has no way yet to restart only the API server, so this file does it itself: it finds the
// kube-apiserver process by its --secure-port, stops it, and starts the same binary again with the same arguments
// in the same directory (same certificates, tokens and etcd). To be replaced by a harness method when there is one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import {
  apis,
  endpointSlice,
  eventually,
  exchange,
  service,
  startTestController,
  webSocketRoute,
  type Apis,
  type TestController,
} from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'outage';
/** [WSGATE_OUTAGE_MS=5000] How long the API server stays away (the scenario is 30 s: set 30000). */
const OUTAGE_MS = Number(process.env.WSGATE_OUTAGE_MS ?? 5000);
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };

interface ApiServerProcess {
  readonly pid: number;
  readonly argv: string[];
  readonly cwd: string;
}

function findApiServer(server: string): ApiServerProcess {
  const port = new URL(server).port;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (argv[0]?.endsWith('kube-apiserver') && argv.includes(`--secure-port=${port}`)) {
        return { pid: Number(entry), argv, cwd: readlinkSync(`/proc/${entry}/cwd`) };
      }
    } catch {
      // a process that ended while we looked
    }
  }
  throw new Error(`no kube-apiserver process with --secure-port=${port}`);
}

async function waitForExit(pid: number): Promise<void> {
  await eventually(`kube-apiserver ${pid} to exit`, () => {
    try {
      // Gone, or a zombie its parent (the harness) has not reaped yet.
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z' ? true : undefined;
    } catch {
      return true;
    }
  }, { times: 1, timeoutMs: 15_000 });
}

describe('the API server stopped and started again', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  let restarted: ChildProcess | undefined;
  let backend: { stop(): Promise<void> } | undefined;

  before(async () => {
    cp = await startControlPlane();
    net = createPodNetwork(2);
    backend = await net.startEchoBackend(net.podIP(0), 8080, 'a');
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'echo') });
    await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, 'echo', [net.podIP(0)]) });
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'before', { host: 'before.test', service: 'echo' }) });
    t = await startTestController(cp.kubeConfig(), { leaseName: 'outage-test' });
    await eventually('the route to serve', async () => ((await exchange(t.httpPort, 'before.test', '/', 'hi')) === 'a:hi' ? true : undefined));
  });

  after(async () => {
    await t?.controller.stop();
    await backend?.stop();
    net?.destroy();
    if (restarted && restarted.exitCode === null) {
      const exited = once(restarted, 'exit');
      restarted.kill('SIGTERM');
      await exited;
    }
    await cp?.stop();
  });

  it('keeps serving while the API server is away, and applies a change made after it returns', async () => {
    // A connection opened before the outage, kept open through it.
    const held = new WebSocket(`ws://127.0.0.1:${t.httpPort}/`, { headers: { host: 'before.test' } });
    await once(held, 'open');
    const heldEcho = async (m: string): Promise<string> => {
      const reply = once(held, 'message');
      held.send(m);
      return String((await reply)[0]);
    };
    assert.equal(await heldEcho('one'), 'a:one');

    const apiserver = findApiServer(cp.server);
    const errorsBefore = await watchErrors(t);
    // SIGKILL: a graceful stop waits for open watches to end; a crash is the harder case anyway.
    process.kill(apiserver.pid, 'SIGKILL');
    await waitForExit(apiserver.pid);
    const stoppedAt = Date.now();

    // While it is away: the informers notice (and back off), and every new connection is served.
    let served = 0;
    await eventually('the informers to notice and new connections to keep working', async () => {
      assert.equal(await exchange(t.httpPort, 'before.test', '/', `n${served}`), `a:n${served}`);
      served++;
      const away = Date.now() - stoppedAt >= OUTAGE_MS;
      return away && (await watchErrors(t)) >= errorsBefore + 3 ? true : undefined;
    }, { times: 1, timeoutMs: OUTAGE_MS + 30_000, everyMs: 100 });
    assert.equal(t.controller.gateway.notReady(), undefined, 'still ready: the data plane does not depend on the API server');
    assert.equal(await heldEcho('two'), 'a:two');

    // Back, with the same etcd.
    restarted = spawn(apiserver.argv[0] ?? '', apiserver.argv.slice(1), { cwd: apiserver.cwd, stdio: 'ignore' });
    await eventually('the API server to answer again', async () => ((await api.core.listNamespace()).items.length > 0 ? true : undefined), {
      times: 1,
      timeoutMs: 60_000,
      everyMs: 250,
    });
    // Custom resources are served a little after the rest (503 until then): retry the create until it is taken.
    await eventually('the new route to be created', async () => {
      try {
        await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'after', { host: 'after.test', service: 'echo' }) });
      } catch (err) {
        if ((err as { code?: unknown }).code !== 409) throw err;
      }
      return true;
    }, { times: 1, timeoutMs: 60_000, everyMs: 250 });
    await eventually('the route made after the restart to serve', async () =>
      (await exchange(t.httpPort, 'after.test', '/', 'x')) === 'a:x' ? true : undefined,
    { timeoutMs: 60_000 });
    assert.equal(await heldEcho('three'), 'a:three');
    assert.equal(await exchange(t.httpPort, 'before.test', '/', 'y'), 'a:y');
    held.close();
  });
});

async function watchErrors(t: TestController): Promise<number> {
  const { values } = await t.metrics.controllerWatchErrors.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

