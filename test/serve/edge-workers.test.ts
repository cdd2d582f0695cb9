// The edge policy's per-process state means the same whatever --workers says (issue 12):
//  - the request rate per client is the pod's: the primary holds the token buckets, so concurrent handshakes that the
//    kernel spreads over the workers are admitted exactly up to the burst (ingress-nginx's limit-rpm here, whose
//    refill of one token a minute keeps the count exact);
//  - the affinity cookie's key is the same in every worker: a cookie issued by one is recognised by every other, and
//    with --affinity-key-file by every replica (a separate wsgate process) too; without the flag a replica has its
//    own key and issues a new cookie.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { serve, type Server } from '../../src/cli/serve.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { generatedAffinityKey } from '../../src/proxy/affinity.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { createConfigDir, endpointSlice, service, webSocketRoute, type ConfigDir, type Obj } from '../helpers/serve-harness.ts';
import { killAll, spawnServe, type ServeProcess } from './serve-process.ts';

const defaultCertificate = generateSelfSigned({ commonName: 'wsgate edge workers test' });
const BURST = 5;
const ATTEMPTS = 20;

/** One handshake: its status, the 101's Set-Cookie, and the backend port it reached (from the echo). */
function handshake(port: number, host: string, cookie?: string): Promise<{ status: number; setCookie?: string; retryAfter?: string; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { Host: host, ...(cookie ? { Cookie: cookie } : {}) } });
    let setCookie: string | undefined;
    ws.once('upgrade', (res) => (setCookie = res.headers['set-cookie']?.[0]));
    ws.once('open', () => resolve({ status: 101, ws, ...(setCookie !== undefined ? { setCookie } : {}) }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      const retryAfter = res.headers['retry-after'];
      resolve({ status: res.statusCode ?? 0, ...(retryAfter !== undefined ? { retryAfter } : {}) });
    });
    ws.once('error', reject);
  });
}

/** Two backends in one Service: 127.0.0.1 on two ports (two EndpointSlices). */
function twoBackends(a: WsBackend, b: WsBackend): Obj[] {
  return [
    service('chat'),
    endpointSlice('chat', a.port, { name: 'chat-a' }),
    endpointSlice('chat', b.port, { name: 'chat-b' }),
  ];
}

const objects = (a: WsBackend, b: WsBackend): Obj[] => [
  ...twoBackends(a, b),
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: 'storm',
      namespace: 'default',
      annotations: { 'nginx.ingress.kubernetes.io/limit-rpm': '1', 'nginx.ingress.kubernetes.io/limit-burst-multiplier': String(BURST) },
    },
    spec: {
      ingressClassName: 'wsgate',
      rules: [{ host: 'storm.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] } }],
    },
  },
  webSocketRoute('sticky', { hostnames: ['sticky.test'], rules: [{ backends: [{ service: 'chat' }] }], policy: { loadBalancing: { policy: 'Cookie' } } }),
];

/** The endpoint slices put both backends at 127.0.0.1 on different ports: each echo backend counts its own. */
function on(backends: WsBackend[], before: number[]): number[] {
  return backends.map((b, i) => b.tcpConnections() - before[i]!);
}

for (const workers of [defaultWorkers(), 1]) {
  describe(`wsgate serve --workers ${workers}: rates and affinity keys are the pod's`, { timeout: 90_000 }, () => {
    let a: WsBackend;
    let b: WsBackend;
    let dir: ConfigDir;
    let server: Server;
    let port: number;
    const open: WebSocket[] = [];

    before(async () => {
      a = await startWsBackend();
      b = await startWsBackend();
      dir = createConfigDir();
      dir.write('config.yaml', objects(a, b));
      const local = { host: '127.0.0.1', port: 0 };
      server = await serve({
        log: silentLogger(),
        logLevel: 'silent',
        metrics: createMetrics('test', { defaultMetrics: false }),
        configPath: dir.path,
        ingressClass: 'wsgate',
        httpAddr: local,
        adminAddr: local,
        tunnelHost: '127.0.0.1',
        handshakeTimeoutMs: 5000,
        defaultCertificate,
        workers,
        // As the command line gives it: one key made in the primary, for every worker.
        edge: { affinityKey: generatedAffinityKey() },
      });
      port = server.plane.addresses().http!.port;
    });

    after(async () => {
      for (const ws of open) ws.terminate();
      await server?.stop();
      await a?.close();
      await b?.close();
      dir?.dispose();
    });

    test(`admits exactly the burst (${BURST}) of ${ATTEMPTS} concurrent handshakes from one client, and 429 with Retry-After to the rest`, async () => {
      const results = await Promise.all(Array.from({ length: ATTEMPTS }, () => handshake(port, 'storm.test')));
      for (const r of results) if (r.ws) open.push(r.ws);
      const counts: Record<number, number> = {};
      for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
      assert.deepEqual(counts, { 101: BURST, 429: ATTEMPTS - BURST });
      // One token a minute: the wait is most of a minute.
      for (const r of results.filter((x) => x.status === 429)) assert.ok(Number(r.retryAfter) >= 30 && Number(r.retryAfter) <= 60, r.retryAfter);
    });

    test('recognises the affinity cookie in every worker: every handshake carrying it reaches its endpoint, and none gets a new one', async () => {
      const first = await handshake(port, 'sticky.test');
      assert.equal(first.status, 101);
      open.push(first.ws!);
      const cookie = first.setCookie?.split(';')[0];
      assert.match(cookie ?? '', /^wsgate-affinity=[A-Za-z0-9_-]{22}$/);
      const before = [a.tcpConnections(), b.tcpConnections()];
      const results = await Promise.all(Array.from({ length: ATTEMPTS }, () => handshake(port, 'sticky.test', cookie)));
      for (const r of results) if (r.ws) open.push(r.ws);
      assert.deepEqual(results.map((r) => r.status), Array(ATTEMPTS).fill(101));
      assert.deepEqual(results.filter((r) => r.setCookie !== undefined).length, 0);
      // All on one backend, though least connections alone would have split them.
      const counts = on([a, b], before);
      assert.ok(counts.includes(ATTEMPTS) && counts.includes(0), `per backend: ${counts.join(', ')}`);
    });
  });
}

describe('the affinity key across replicas', { timeout: 90_000 }, () => {
  let a: WsBackend;
  let b: WsBackend;
  let dir: ConfigDir;
  const replicas: ServeProcess[] = [];

  before(async () => {
    a = await startWsBackend();
    b = await startWsBackend();
    dir = createConfigDir();
    dir.write('config.yaml', objects(a, b));
    const keyFile = join(dir.path, '..', `${dir.path.split('/').pop()}.affinity-key`);
    writeFileSync(keyFile, `${generatedAffinityKey().toString('base64')}\n`);
    const withKey = ['--workers', '1', '--affinity-key-file', keyFile];
    replicas.push(await spawnServe(dir.path, withKey), await spawnServe(dir.path, withKey), await spawnServe(dir.path, ['--workers', '1']));
    for (const r of replicas) await r.ready();
  });

  after(async () => {
    for (const r of replicas) await r.stop();
    killAll();
    await a?.close();
    await b?.close();
    dir?.dispose();
  });

  test('a cookie issued by one replica is recognised by another with the same --affinity-key-file, not by one without it', async () => {
    const [one, two, own] = replicas as [ServeProcess, ServeProcess, ServeProcess];
    const first = await handshake(one.httpPort, 'sticky.test');
    first.ws?.close();
    const cookie = first.setCookie?.split(';')[0];
    assert.ok(cookie);
    const before = [a.tcpConnections(), b.tcpConnections()];
    for (let i = 0; i < 5; i++) {
      const r = await handshake(two.httpPort, 'sticky.test', cookie);
      assert.equal(r.status, 101);
      assert.equal(r.setCookie, undefined, 'the second replica did not know the cookie');
      r.ws?.close();
    }
    const counts = on([a, b], before);
    assert.ok(counts.includes(5) && counts.includes(0), `per backend: ${counts.join(', ')}`);
    const other = await handshake(own.httpPort, 'sticky.test', cookie);
    other.ws?.close();
    assert.match(other.setCookie ?? '', /^wsgate-affinity=/, 'a replica with its own key recognised a foreign cookie');
  });
});
