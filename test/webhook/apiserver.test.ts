// The sidecar injector called by a real kube-apiserver (test/helpers/kube.ts): registered with a loopback URL and
// the test CA's caBundle, `failurePolicy: Ignore`, for namespaces labelled to opt in.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import {
  ApiException,
  AppsV1Api,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1Container,
  type V1Deployment,
  type V1Namespace,
  type V1Service,
} from '@kubernetes/client-node';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { LogCapture } from '../helpers/serve-harness.ts';
import { startWebhook, type Webhook, type WebhookFlags } from '../../src/webhook/cli.ts';
import { createWebhookMetrics, type WebhookMetrics } from '../../src/webhook/metrics.ts';
import { cluster, issueForIP, podManifest, webhookConfiguration, type Cluster } from './harness.ts';
import { freePort } from '../sidecar/process.ts';

const IMAGE = 'registry.example/wsgate:test';
const NS = 'app';
const LABEL = 'wsgate.io/sidecar-injection';

function flags(o: Partial<WebhookFlags> & Pick<WebhookFlags, 'certificates' | 'listen'>): WebhookFlags {
  return {
    adminAddr: undefined,
    reconcileIntervalMs: 60_000,
    inject: { image: IMAGE, resources: { requests: { cpu: '50m', memory: '64Mi' } } },
    logLevel: 'debug',
    ...o,
  };
}

const sidecarOf = (p: { spec?: { initContainers?: V1Container[] } }): V1Container[] =>
  (p.spec?.initContainers ?? []).filter((c) => c.name === 'wsgate');

describe('the sidecar injector, called by the API server', { timeout: 120_000 }, () => {
  let cp: ControlPlane;
  let ca: TestCA;
  let cert: ReturnType<typeof issueForIP>;
  let k: Cluster;
  let webhook: Webhook | undefined;
  let metrics: WebhookMetrics;
  const logs = new LogCapture('debug');

  const count = async (result: string): Promise<number> =>
    (await metrics.admissions.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  before(async () => {
    ca = createTestCA('wsgate webhook test CA');
    cert = issueForIP(ca, '127.0.0.1');
    cp = await startControlPlane({ crds: false });
    k = cluster(cp.kubeConfig());
    metrics = createWebhookMetrics('test', { defaultMetrics: false });
    webhook = await startWebhook(
      flags({ listen: { host: '127.0.0.1', port: 0 }, certificates: { kind: 'files', certFile: cert.certFile, keyFile: cert.keyFile } }),
      logs.logger,
      metrics,
    );
    const url = `https://127.0.0.1:${webhook.addresses.listen.port}/mutate`;
    await k.admission.createMutatingWebhookConfiguration({ body: webhookConfiguration({ name: 'wsgate-sidecar-injector', url, caPem: ca.certPem, namespaceLabel: LABEL }) });
    await k.namespace(NS, LABEL);
    await k.awaitInjection(NS);
  });

  after(async () => {
    await webhook?.stop();
    await cp?.stop();
    cert?.dispose();
    ca?.dispose();
  });

  test('stores an annotated Pod with the native sidecar and the arguments its annotations ask for', async () => {
    const injected = await count('injected');
    const stored = await k.createPod(NS, podManifest('chat', {
      'wsgate.io/inject': 'true',
      'wsgate.io/upstream-port': 'http',
      'wsgate.io/allowed-origins': 'https://chat.example.com',
      'wsgate.io/max-connections-per-client': '5',
      'wsgate.io/idle-timeout-seconds': '300',
    }));
    const [sidecar, ...more] = sidecarOf(stored);
    assert.ok(sidecar, 'the stored pod has the sidecar');
    assert.equal(more.length, 0);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.equal(sidecar.image, IMAGE);
    assert.deepEqual(sidecar.args, [
      'sidecar',
      '--upstream=127.0.0.1:8080',
      '--listen=0.0.0.0:8800',
      '--admin-addr=0.0.0.0:9800',
      '--allowed-origin=https://chat.example.com',
      '--max-connections-per-client=5',
      '--idle-timeout=300s',
    ]);
    assert.deepEqual(sidecar.ports?.map((p) => [p.name, p.containerPort]), [['wsgate', 8800], ['wsgate-admin', 9800]]);
    assert.equal(sidecar.env?.[0]?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
    assert.deepEqual(sidecar.resources?.requests, { cpu: '50m', memory: '64Mi' });
    assert.equal(sidecar.securityContext?.runAsNonRoot, true);
    assert.equal(sidecar.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(sidecar.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(sidecar.securityContext?.capabilities?.drop, ['ALL']);
    // The app container is as it was written.
    assert.deepEqual(stored.spec?.containers.map((c) => c.name), ['app']);
    assert.equal(await count('injected'), injected + 1);
    // And what the API server stored is what a later read returns.
    const read = await k.core.readNamespacedPod({ namespace: NS, name: 'chat' });
    assert.equal(sidecarOf(read).length, 1);
  });

  test('stores an unannotated Pod unchanged', async () => {
    const seen = await count('not_annotated');
    const stored = await k.createPod(NS, podManifest('plain'));
    assert.deepEqual(stored.spec?.initContainers ?? [], []);
    assert.deepEqual(stored.spec?.containers.map((c) => c.name), ['app']);
    // The webhook was asked, and said why it did nothing.
    assert.equal(await count('not_annotated'), seen + 1);
  });

  test('stores a Pod with a bad annotation unchanged, and logs and counts the reason', async () => {
    const bad = await count('bad_annotation');
    const stored = await k.createPod(NS, podManifest('bad', {
      'wsgate.io/inject': 'true',
      'wsgate.io/upstream-port': '8080',
      'wsgate.io/max-connections': 'plenty',
    }));
    assert.deepEqual(stored.spec?.initContainers ?? [], []);
    assert.equal(await count('bad_annotation'), bad + 1);
    const line = await logs.waitFor((l) => l.msg === 'pod admitted without sidecar' && l.pod === 'bad', 'the reason for pod bad');
    assert.equal(line.namespace, NS);
    assert.equal(line.result, 'bad_annotation');
    assert.match(String(line.reason), /wsgate\.io\/max-connections: "plenty"/);
  });

  test('does not inject twice: a Pod spec that already has the sidecar keeps exactly one', async () => {
    const first = await k.createPod(NS, podManifest('twice-a', { 'wsgate.io/inject': 'true', 'wsgate.io/upstream-port': '8080' }));
    assert.equal(sidecarOf(first).length, 1);
    // The same spec again, as stored (sidecar included), under another name: what a copied manifest does. Less the
    // service-account token mounts the API server added, whose volume name is generated per pod.
    const already = await count('already_injected');
    const withoutTokenMounts = (cs: V1Container[]): V1Container[] => cs.map(({ volumeMounts: _, ...c }) => c);
    const second = await k.createPod(NS, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'twice-b', annotations: first.metadata?.annotations ?? {} },
      spec: { containers: withoutTokenMounts(first.spec!.containers), initContainers: withoutTokenMounts(first.spec!.initContainers ?? []) },
    });
    assert.equal(sidecarOf(second).length, 1);
    assert.deepEqual(sidecarOf(second)[0]?.args, sidecarOf(first)[0]?.args);
    assert.equal(await count('already_injected'), already + 1);
  });

  test('applying the same Pod twice (server-side apply) injects once and the second apply succeeds', async () => {
    const manifest = podManifest('applied', { 'wsgate.io/inject': 'true', 'wsgate.io/upstream-port': '8080' });
    const apply = () =>
      k.core.patchNamespacedPod(
        { namespace: NS, name: 'applied', body: manifest, fieldManager: 'test', force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    const once = await apply();
    assert.equal(sidecarOf(once).length, 1);
    let twice;
    try {
      twice = await apply();
    } catch (err) {
      assert.fail(`second apply failed: ${err instanceof ApiException ? `HTTP ${err.code} ${JSON.stringify(err.body)}` : String(err)}`);
    }
    assert.equal(sidecarOf(twice).length, 1);
  });

  test('the example in deploy/examples is accepted, and its pods get the sidecar the Service targets', async () => {
    const docs = loadAllYaml(readFileSync(new URL('../../deploy/examples/sidecar-echo.yaml', import.meta.url), 'utf8')) as
      [V1Namespace, V1Deployment, V1Service];
    const [ns, deployment, service] = docs;
    const namespace = ns.metadata!.name!;
    await k.core.createNamespace({ body: ns });
    await k.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'default' } } });
    await cp.kubeConfig().makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace, body: deployment });
    await k.core.createNamespacedService({ namespace, body: service });
    // No controller-manager makes the Deployment's pods: one is created from its template, as the ReplicaSet would.
    const template = deployment.spec!.template;
    const stored = await k.createPod(namespace, { metadata: { ...template.metadata, name: 'echo-0' }, spec: template.spec! });
    const [sidecar] = sidecarOf(stored);
    assert.ok(sidecar, 'the example pod has the sidecar');
    assert.deepEqual(sidecar.args, [
      'sidecar',
      '--upstream=127.0.0.1:8080',
      '--listen=0.0.0.0:8800',
      '--admin-addr=0.0.0.0:9800',
      '--allowed-origin=https://echo.example.com',
      '--max-connections=10000',
      '--max-connections-per-client=20',
      '--idle-timeout=600s',
      '--drain-delay=5s',
      '--drain-timeout=60s',
    ]);
    const targetPort = service.spec!.ports![0]!.targetPort;
    assert.ok(sidecar.ports?.some((p) => p.name === targetPort), `the Service's targetPort ${String(targetPort)} is a sidecar port`);
  });

  test('with the webhook stopped, Pods are still created (failurePolicy Ignore), without the sidecar', async () => {
    await webhook!.stop();
    webhook = undefined;
    const stored = await k.createPod(NS, podManifest('while-down', { 'wsgate.io/inject': 'true', 'wsgate.io/upstream-port': '8080' }));
    assert.deepEqual(stored.spec?.initContainers ?? [], []);
  });
});

describe('the sidecar injector in self-signed mode', { timeout: 120_000 }, () => {
  const SELF_NS = 'self';
  const SELF_LABEL = 'wsgate.io/self-signed-injection';
  const CONFIG = 'wsgate-self-signed';
  const SECRET = { namespace: 'wsgate', name: 'injector-tls' };
  let cp: ControlPlane;
  let k: Cluster;
  const webhooks: Webhook[] = [];
  const logs = new LogCapture('debug');

  before(async () => {
    cp = await startControlPlane({ crds: false });
    k = cluster(cp.kubeConfig());
    await k.core.createNamespace({ body: { metadata: { name: SECRET.namespace } } });
    await k.namespace(SELF_NS, SELF_LABEL);
  });

  after(async () => {
    for (const w of webhooks) await w.stop();
    await cp?.stop();
  });

  const start = async (port: number): Promise<Webhook> => {
    const w = await startWebhook(
      flags({
        listen: { host: '127.0.0.1', port },
        certificates: { kind: 'self-signed', kc: cp.kubeConfig(), webhookConfig: CONFIG, secret: SECRET, dnsNames: ['localhost'] },
      }),
      logs.logger,
      createWebhookMetrics('test', { defaultMetrics: false }),
    );
    webhooks.push(w);
    return w;
  };

  test('writes its certificate to a Secret and the caBundle, and the API server then calls it', async () => {
    const port = await freePort();
    // The chart's configuration: no caBundle yet.
    await k.admission.createMutatingWebhookConfiguration({
      body: webhookConfiguration({ name: CONFIG, url: `https://localhost:${port}/mutate`, namespaceLabel: SELF_LABEL }),
    });
    await start(port);
    const secret = await k.core.readNamespacedSecret(SECRET);
    assert.equal(secret.type, 'kubernetes.io/tls');
    const certPem = Buffer.from(secret.data!['tls.crt']!, 'base64').toString();
    const config = await k.admission.readMutatingWebhookConfiguration({ name: CONFIG });
    assert.equal(Buffer.from(config.webhooks![0]!.clientConfig.caBundle!, 'base64').toString(), certPem);
    await k.awaitInjection(SELF_NS);
  });

  test('puts the caBundle back when something resets it (a helm upgrade), at the next reconcile', async () => {
    const config = await k.admission.readMutatingWebhookConfiguration({ name: CONFIG });
    const before = config.webhooks![0]!.clientConfig.caBundle;
    await k.admission.patchMutatingWebhookConfiguration(
      { name: CONFIG, body: [{ op: 'remove', path: '/webhooks/0/clientConfig/caBundle' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    await webhooks[0]!.reconcile();
    const after = await k.admission.readMutatingWebhookConfiguration({ name: CONFIG });
    assert.equal(after.webhooks![0]!.clientConfig.caBundle, before);
  });

  test('a second replica serves the same certificate instead of writing its own', async () => {
    const secretBefore = await k.core.readNamespacedSecret(SECRET);
    await start(0);
    const secretAfter = await k.core.readNamespacedSecret(SECRET);
    assert.equal(secretAfter.metadata?.resourceVersion, secretBefore.metadata?.resourceVersion);
    const served = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: webhooks[1]!.addresses.listen.port, servername: 'localhost', rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()!.toString());
        socket.destroy();
      });
      socket.once('error', reject);
    });
    assert.equal(served, new X509Certificate(Buffer.from(secretAfter.data!['tls.crt']!, 'base64')).toString());
  });
});
