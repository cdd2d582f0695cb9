// Issue 9, item 18 (the controller's half): a slow API server must not stall the next routing table. Status PATCHes
// and Events are queued and written off the rebuild path (Contour's StatusUpdater): the latest per object, retried
// with backoff, by the leader only.
//
// The slow API server is the real kube-apiserver behind a TLS-terminating HTTP proxy in this file: kube-apiserver
// cannot be made slow for some requests only, and a plain TCP proxy cannot tell a status write from a watch inside
// TLS. The proxy forwards everything at once except status writes (PATCH .../status) and Event creations, which it
// holds until the test releases them, or answers with a 500 when told to (a fault the real server would not produce
// on demand).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { defaultWorkers } from '../../src/cluster/plane.ts';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { apis, awaitReadyLeader, condition, eventually, exchange, readRoute, service, startTestController, webSocketRoute, type Apis, type TestController } from './harness.ts';

const NS = 'slow';
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };

interface SlowProxy {
  readonly url: string;
  /** While true, status writes wait for release(). */
  hold: boolean;
  /** Status writes waiting now. */
  readonly held: number;
  /** Status writes answered with 500 so far. */
  readonly failed: number;
  /** Sends every held status write on. */
  release(): void;
  /** The next `n` status writes are answered with 500. */
  failNext(n: number): void;
  close(): Promise<void>;
}

function isStatusWrite(req: IncomingMessage): boolean {
  const path = (req.url ?? '').split('?')[0] ?? '';
  return (req.method === 'PATCH' && path.endsWith('/status')) || (req.method === 'POST' && path.endsWith('/events'));
}

async function startSlowProxy(cp: ControlPlane): Promise<SlowProxy> {
  const upstream = new URL(cp.server);
  const pem = generateSelfSigned({ commonName: 'wsgate slow apiserver proxy' });
  const waiting: (() => void)[] = [];
  const sockets = new Set<Socket>();
  let toFail = 0;
  let failed = 0;
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const up = https.request({
      hostname: upstream.hostname,
      port: upstream.port,
      path: req.url,
      method: req.method,
      headers: req.headers,
      ca: cp.caPem,
    });
    up.on('response', (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  };
  const proxy: SlowProxy & { server: https.Server } = {
    server: https.createServer({ cert: pem.certPem, key: pem.keyPem }, (req, res) => {
      if (!isStatusWrite(req)) return forward(req, res);
      if (toFail > 0) {
        toFail--;
        failed++;
        req.resume();
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'injected by the test proxy', code: 500 }));
        return;
      }
      if (proxy.hold) waiting.push(() => forward(req, res));
      else forward(req, res);
    }),
    url: '',
    hold: false,
    get held() {
      return waiting.length;
    },
    get failed() {
      return failed;
    },
    release() {
      for (const go of waiting.splice(0)) go();
    },
    failNext(n) {
      toFail = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        proxy.server.close(() => resolve());
      }),
  };
  proxy.server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
  const address = proxy.server.address() as { port: number };
  return Object.assign(proxy, { url: `https://127.0.0.1:${address.port}` });
}

/** The admin user's kubeconfig, pointed at the proxy (its certificate is self-signed: not verified). */
function kubeConfigVia(cp: ControlPlane, url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'slow', server: url, skipTLSVerify: true }],
    users: [{ name: cp.admin.name, token: cp.admin.token }],
    contexts: [{ name: 'slow', cluster: 'slow', user: cp.admin.name }],
    currentContext: 'slow',
  });
  return kc;
}

describe('wsgate controller behind a slow API server', () => {
  let cp: ControlPlane;
  let api: Apis;

  before(async () => {
    cp = await startControlPlane();
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'echo') });
  });

  after(async () => {
    await cp?.stop();
  });

  for (const workers of [1, defaultWorkers()]) {
    describe(`with --workers ${workers}`, () => {
      let proxy: SlowProxy;
      let t: TestController;
      const a = `a-${workers}`;
      const b = `b-${workers}`;

      before(async () => {
        proxy = await startSlowProxy(cp);
        t = await startTestController(kubeConfigVia(cp, proxy.url), { leaseName: `slow-${workers}`, workers });
        await awaitReadyLeader(t);
      });

      after(async () => {
        proxy.hold = false;
        proxy.release();
        await t?.controller.stop();
        await proxy?.close();
      });

      it('applies the next table while the status writes of the last one are held', async () => {
        proxy.hold = true;
        await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, a, { host: `${a}.test`, service: 'echo' }) });
        // A route without endpoints: 503 once its table is live, 404 before.
        await eventually(`${a}.test in the table`, async () => ((await exchange(t.httpPort, `${a}.test`, '/', 'x')) === 'HTTP 503' ? true : undefined));
        await eventually(`the status write of ${a} held`, () => (proxy.held >= 1 ? true : undefined));
        await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, b, { host: `${b}.test`, service: 'echo' }) });
        await eventually(`${b}.test in the table`, async () => ((await exchange(t.httpPort, `${b}.test`, '/', 'x')) === 'HTTP 503' ? true : undefined));
        // Neither status has reached the API server.
        assert.equal((await readRoute(api, NS, a)).status, undefined);
        assert.equal((await readRoute(api, NS, b)).status, undefined);

        proxy.hold = false;
        proxy.release();
        for (const name of [a, b]) {
          await eventually(`the status of ${name} written`, async () => {
            const r = await readRoute(api, NS, name);
            return condition(r, 'Accepted')?.status === 'True' && r.status?.observedGeneration === r.metadata.generation ? true : undefined;
          });
        }
      });

      it('retries a status write the API server refuses until it is written', async () => {
        proxy.failNext(2);
        await api.custom.patchNamespacedCustomObject({ ...WSR, name: b, body: [{ op: 'replace', path: '/spec/rules/0/path/value', value: '/v2' }] });
        await eventually(`generation 2 of ${b} in its status`, async () => {
          const r = await readRoute(api, NS, b);
          return r.metadata.generation === 2 && r.status?.observedGeneration === 2 && condition(r, 'Accepted')?.status === 'True' ? true : undefined;
        });
        assert.equal(proxy.failed, 2);
      });
    });
  }
});
