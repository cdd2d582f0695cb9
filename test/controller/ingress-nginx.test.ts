// A migration from ingress-nginx against a real kube-apiserver (issue 12): wsgate takes over the `nginx` class
// (--ingress-class nginx, --watch-ingress-without-class) and serves Ingresses written the way ingress-nginx's docs and
// users write them: WebSocket timeouts, cookie affinity, a source allow-list, the TLS redirect, and snippets. What it
// does not support is said with a condition (Accepted, UnsupportedAnnotation), a Warning Event and a log line; the
// Ingresses' status, which ingress-nginx still writes during the cut-over, is left alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import http from 'node:http';
import { PatchStrategy, setHeaderOptions, type V1Ingress } from '@kubernetes/client-node';
import { generateSelfSigned } from '../../src/tls/selfsigned.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { apis, awaitReadyLeader, endpointSlice, eventually, exchange, service, startTestController, tlsSecret, type Apis, type TestController } from './harness.ts';
import { createPodNetwork, type PodNetwork } from './pod-network.ts';

const NS = 'shop';
const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));

function ingress(name: string, o: { className?: string; annotations?: Record<string, string>; host: string; path?: string; tls?: string }): V1Ingress {
  return {
    metadata: { name, namespace: NS, ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: {
      ...(o.className !== undefined ? { ingressClassName: o.className } : {}),
      ...(o.tls !== undefined ? { tls: [{ hosts: [o.host], secretName: o.tls }] } : {}),
      rules: [
        {
          host: o.host,
          http: { paths: [{ path: o.path ?? '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] },
        },
      ],
    },
  };
}

/** A handshake through wsgate: the echo of `message` and the 101's Set-Cookie, or `HTTP <status>`. */
function handshake(port: number, host: string, path: string, message: string): Promise<{ reply: string; setCookie?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host }, handshakeTimeout: 3000 });
    let setCookie: string | undefined;
    ws.once('upgrade', (res) => (setCookie = res.headers['set-cookie']?.[0]));
    ws.once('open', () => ws.send(message));
    ws.once('message', (data: Buffer) => {
      resolve({ reply: data.toString(), ...(setCookie !== undefined ? { setCookie } : {}) });
      ws.close();
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ reply: `HTTP ${res.statusCode}` });
    });
    ws.once('error', reject);
  });
}

describe('taking over ingress-nginx Ingresses', () => {
  let cp: ControlPlane;
  let net: PodNetwork;
  let api: Apis;
  let t: TestController;
  const backends: { stop(): Promise<void> }[] = [];

  before(async () => {
    cp = await startControlPlane();
    net = createPodNetwork(11);
    backends.push(await net.startEchoBackend(net.podIP(0), 8080, 'a'));
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    // The class stays ingress-nginx's: spec.controller is immutable, and wsgate serves the class by name.
    await api.networking.createIngressClass({ body: { metadata: { name: 'nginx' }, spec: { controller: 'k8s.io/ingress-nginx' } } });
    await api.core.createNamespacedService({ namespace: NS, body: service(NS, 'chat') });
    await api.discovery.createNamespacedEndpointSlice({ namespace: NS, body: endpointSlice(NS, 'chat', [net.podIP(0)]) });
    await api.core.createNamespacedSecret({ namespace: NS, body: tlsSecret(NS, 'secure-tls', generateSelfSigned({ commonName: 'secure.test' })) });
    // As ingress-nginx's docs and users write them.
    await api.networking.createNamespacedIngress({
      namespace: NS,
      body: ingress('chat', {
        className: 'nginx',
        host: 'chat.test',
        path: '/ws',
        annotations: {
          'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
          'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
          'nginx.ingress.kubernetes.io/affinity': 'cookie',
          'nginx.ingress.kubernetes.io/session-cookie-name': 'route',
          'nginx.ingress.kubernetes.io/session-cookie-max-age': '172800',
          'nginx.ingress.kubernetes.io/whitelist-source-range': '127.0.0.0/8, 10.0.0.0/8',
          'nginx.ingress.kubernetes.io/configuration-snippet': 'more_set_headers "X-Frame-Options: DENY";\n',
          'nginx.ingress.kubernetes.io/server-snippet': 'location /metrics { deny all; }\n',
        },
      }),
    });
    await api.networking.createNamespacedIngress({
      namespace: NS,
      body: ingress('office', { className: 'nginx', host: 'office.test', annotations: { 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8' } }),
    });
    await api.networking.createNamespacedIngress({ namespace: NS, body: ingress('secure', { className: 'nginx', host: 'secure.test', tls: 'secure-tls' }) });
    await api.networking.createNamespacedIngress({ namespace: NS, body: ingress('classless', { host: 'classless.test' }) });
    await api.networking.createNamespacedIngress({ namespace: NS, body: ingress('traefik', { className: 'traefik', host: 'traefik.test' }) });
    // ingress-nginx's status, as it would have written it.
    await api.networking.patchNamespacedIngressStatus(
      { namespace: NS, name: 'chat', body: { status: { loadBalancer: { ingress: [{ ip: '192.0.2.9' }] } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    t = await startTestController(cp.kubeConfig(), { leaseName: 'ingress-nginx-test', ingressClass: 'nginx', watchIngressWithoutClass: true });
    await awaitReadyLeader(t);
  });

  after(async () => {
    await t?.controller.stop();
    for (const b of backends) await b.stop();
    net?.destroy();
    await cp?.stop();
  });

  it('serves the WebSocket Ingress with its timeouts and issues the affinity cookie on the 101', async () => {
    const r = await eventually('the echo through wsgate', async () => {
      const r = await handshake(t.httpPort, 'chat.test', '/ws', 'hello');
      return r.reply === 'a:hello' ? r : undefined;
    });
    assert.match(r.setCookie ?? '', /^route=[A-Za-z0-9_-]{22}; Path=\/ws; Max-Age=172800; HttpOnly$/);
    const route = t.controller.gateway.table.virtualHosts.find((v) => v.hostname === 'chat.test')?.routes[0];
    assert.equal(route?.policy.idleTimeoutSeconds, 3600);
    assert.equal(route?.policy.loadBalancing.policy, 'Cookie');
  });

  it('refuses a client outside whitelist-source-range with 403', async () => {
    await eventually('403 from office.test', async () => ((await exchange(t.httpPort, 'office.test', '/', 'x')) === 'HTTP 403' ? true : undefined));
  });

  it('redirects plain HTTP on a host with TLS (308), and answers a WebSocket handshake there 426', async () => {
    const status = await eventually('308 from secure.test', () =>
      new Promise<{ status: number; location: string | undefined } | undefined>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: t.httpPort, path: '/cart?id=1', headers: { Host: 'secure.test' }, agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode === 308 ? { status: 308, location: res.headers.location } : undefined);
          })
          .on('error', reject);
      }),
    );
    assert.equal(status.location, 'https://secure.test/cart?id=1');
    assert.equal(await exchange(t.httpPort, 'secure.test', '/', 'x'), 'HTTP 426');
  });

  it('serves an Ingress without a class, and leaves another class alone', async () => {
    await eventually('the classless Ingress', async () => ((await exchange(t.httpPort, 'classless.test', '/', 'c')) === 'a:c' ? true : undefined));
    assert.equal(await exchange(t.httpPort, 'traefik.test', '/', 'c'), 'HTTP 404');
  });

  it('says which annotations it does not support: a condition, and a Warning Event naming each', async () => {
    const status = t.controller.lastResult?.statuses.find((s) => s.kind === 'Ingress' && s.name === 'chat');
    const accepted = status?.conditions.find((c) => c.type === 'Accepted');
    assert.equal(accepted?.status, 'True');
    assert.equal(accepted?.reason, 'UnsupportedAnnotation');
    assert.match(accepted?.message ?? '', /configuration-snippet.*server-snippet/);
    const event = await eventually('the Warning Event', async () => {
      const events = await api.core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=chat' });
      return events.items.find((e) => e.type === 'Warning' && e.reason === 'UnsupportedAnnotation');
    }, { times: 1 });
    assert.match(event.message ?? '', /nginx\.ingress\.kubernetes\.io\/configuration-snippet/);
    assert.match(event.message ?? '', /nginx\.ingress\.kubernetes\.io\/server-snippet/);
    assert.equal(event.involvedObject.kind, 'Ingress');
  });

  it('wsgate migrate --from-cluster reports the Ingresses of a class from the API server, and exits 1 for the snippets', async () => {
    // Not spawnSync: the controller in this process keeps running (and renewing its Lease) meanwhile.
    const child = spawn(process.execPath, [BIN, 'migrate', '--from-cluster', '--kubeconfig', cp.kubeconfigPath, '--namespace', NS, '--ingress-class', 'nginx']);
    const r = { stdout: '', stderr: '', status: null as number | null };
    child.stdout.on('data', (d: Buffer) => (r.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (r.stderr += d.toString()));
    [r.status] = (await once(child, 'close')) as [number | null];
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^# Ingress shop\/chat: 8 ingress-nginx annotations, 2 unsupported, 0 with bad values$/m);
    assert.match(r.stdout, /^# Ingress shop\/office: 1 ingress-nginx annotation, all carried over$/m);
    assert.doesNotMatch(r.stdout, /shop\/(classless|traefik)/);
    assert.match(r.stderr, /3 Ingresses; 1 with unsupported or bad annotations: shop\/chat/);
  });

  it("leaves the Ingresses' status to ingress-nginx without a publish flag", async () => {
    await t.controller.resync();
    await t.controller.statusIdle();
    const ing = await api.networking.readNamespacedIngress({ namespace: NS, name: 'chat' });
    assert.deepEqual(ing.status?.loadBalancer?.ingress?.map((i) => i.ip), ['192.0.2.9']);
  });
});
