// The webhook against a real kube-apiserver: a serving certificate for 127.0.0.1 signed by a test CA (openssl),
// the webhook in process on a loopback port, its MutatingWebhookConfiguration, namespaces that opt in by label,
// and Pods created through the API (stored as they are: there is no kubelet).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  type KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1Pod,
} from '@kubernetes/client-node';
import type { TestCA } from '../helpers/certs.ts';
import { converge } from '../helpers/l7-peers.ts';

/** A leaf certificate for an IP address (createTestCA issues DNS names only), written to files for --tls-cert. */
export function issueForIP(ca: TestCA, ip: string): { certFile: string; keyFile: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-webhook-cert-'));
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'ca.key'), ca.keyPem);
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'tls.key']);
  run(['req', '-new', '-key', 'tls.key', '-subj', `/CN=${ip}`, '-out', 'tls.csr']);
  writeFileSync(join(dir, 'ext'), `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\n`);
  run(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext', '-out', 'tls.crt']);
  readFileSync(join(dir, 'tls.crt'));
  return { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export function webhookConfiguration(o: { name: string; url: string; caPem?: string; namespaceLabel: string }): V1MutatingWebhookConfiguration {
  return {
    metadata: { name: o.name },
    webhooks: [
      {
        name: 'inject.sidecar.wsgate.io',
        clientConfig: { url: o.url, ...(o.caPem ? { caBundle: Buffer.from(o.caPem).toString('base64') } : {}) },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: { matchLabels: { [o.namespaceLabel]: 'enabled' } },
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 5,
      },
    ],
  };
}

export interface Cluster {
  readonly core: CoreV1Api;
  readonly admission: AdmissionregistrationV1Api;
  /** A namespace with `label: enabled` and the `default` ServiceAccount Pods need (no controller-manager makes it). */
  namespace(name: string, label: string): Promise<void>;
  createPod(namespace: string, pod: V1Pod): Promise<V1Pod>;
  /**
   * Creates annotated probe Pods until one is stored with the sidecar, three in a row: the API server has loaded
   * the webhook configuration (it does so from a watch, some time after the create).
   */
  awaitInjection(namespace: string, upstreamPort?: string): Promise<void>;
}

let probes = 0;

export function cluster(kc: KubeConfig): Cluster {
  const core = kc.makeApiClient(CoreV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const createPod = async (namespace: string, body: V1Pod): Promise<V1Pod> => {
    try {
      return await core.createNamespacedPod({ namespace, body });
    } catch (err) {
      if (err instanceof ApiException) throw new Error(`create pod: HTTP ${err.code}: ${JSON.stringify(err.body)}`, { cause: err });
      throw err;
    }
  };
  return {
    core,
    admission,
    async namespace(name, label) {
      await core.createNamespace({ body: { metadata: { name, labels: { [label]: 'enabled' } } } });
      await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
    },
    createPod,
    async awaitInjection(namespace, upstreamPort = '8080') {
      await converge(
        async () => {
          const p = await createPod(namespace, podManifest(`probe-${probes++}`, { 'wsgate.io/inject': 'true', 'wsgate.io/upstream-port': upstreamPort }));
          return (p.spec?.initContainers ?? []).some((c) => c.name === 'wsgate');
        },
        'the API server calls the webhook',
        3,
        30_000,
      );
    },
  };
}

/** A Pod with one container `app` (port 8080, named http) and the given annotations. */
export function podManifest(name: string, annotations?: Record<string, string>): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'app', image: 'registry.example/chat:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
  };
}
