// Every ci/ scenario, rendered by helm and applied with server-side dry run (dryRun=All, fieldValidation=Strict) to
// the real kube-apiserver: schemas, defaulting, validation and admission are the API server's own, nothing stored.
// The Prometheus Operator's objects render only where its API exists: without it they are absent; with stand-in
// CRDs for it installed (monitoring-crds.ts), they render and pass the same dry run. The sidecar injector (on in
// ci/all-options) is accepted in both certificate modes (cert-manager's with stand-in CRDs, cert-manager-crds.ts),
// and its webhook configuration keeps the caBundle of the live object (helm's lookup against the API server).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { certManagerCrds } from './cert-manager-crds.ts';
import { chartDir, helm, kinds, one, parseManifests, render, scenarios, type Manifest } from './helm.ts';
import { apply, applyOrThrow, objectPath, send } from './kube-apply.ts';
import { prometheusRuleCrd, serviceMonitorCrd } from './monitoring-crds.ts';

/** The namespaces the scenarios put objects in: the release's, single-namespace's watched one, the dashboard's. */
const NAMESPACES = ['wsgate', 'team-a', 'monitoring'];

const namespace = (name: string): Manifest => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

/** Dry-runs every object; the failures, as `Kind/name: HTTP status: message` lines, and any warning. */
async function dryRunAll(cp: ControlPlane, ms: readonly Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  for (const m of ms) {
    const r = await apply(cp, m, { dryRun: true });
    if (r.status < 200 || r.status > 299) {
      const message = (JSON.parse(r.body) as { message?: string }).message ?? r.body;
      problems.push(`${m.kind}/${m.metadata.name}: HTTP ${r.status}: ${message}`);
    }
    for (const w of r.warnings) problems.push(`${m.kind}/${m.metadata.name}: warning: ${w}`);
  }
  return problems;
}

async function waitServed(cp: ControlPlane, crd: Manifest): Promise<void> {
  const { group, names } = crd.spec as { group: string; names: { plural: string } };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await send(cp, 'GET', `/apis/${group}/v1/${names.plural}`, undefined, '');
    if (r.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${crd.metadata.name} not served after 30 s: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    await sleep(200);
  }
}

describe('the chart: server-side dry run against kube-apiserver', () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane();
    for (const ns of NAMESPACES) await applyOrThrow(cp, namespace(ns));
  });
  after(async () => {
    await cp?.stop();
  });

  for (const { name, file } of scenarios()) {
    it(`accepts every object of ci/${name}-values.yaml, CRDs included, with no warning`, async () => {
      const ms = render({ valuesFiles: [file], includeCrds: true });
      assert.ok(!kinds(ms).includes('ServiceMonitor') && !kinds(ms).includes('PrometheusRule'), 'monitoring objects without the API');
      if (name === 'all-options') assert.ok(kinds(ms).includes('MutatingWebhookConfiguration'), 'the sidecar injector is on');
      assert.deepEqual(await dryRunAll(cp, ms), []);
    });
  }

  /** `helm install --dry-run=server` against the test cluster: helm discovers its APIs itself and renders NOTES. */
  const helmInstallDryRun = (values: string[]): string => {
    const r = helm([
      'install', 'wsgate', chartDir, '--namespace', 'wsgate', '--dry-run=server', '--kubeconfig', cp.kubeconfigPath,
      ...values.flatMap((v) => ['--set', v]),
    ]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };

  it('installs with helm install --dry-run=server, leaving out what the cluster has no API for and saying so', () => {
    const out = helmInstallDryRun(['metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true']);
    assert.match(out, /^kind: Deployment$/m);
    assert.doesNotMatch(out, /^kind: (ServiceMonitor|PrometheusRule)$/m);
    assert.match(out, /NOTES:\nwsgate 0\.1\.0 is installed as Deployment wsgate\/wsgate\./);
    assert.match(out, /no ServiceMonitor\s+was created/);
    assert.match(out, /no PrometheusRule\s+was created/);
  });

  it('installs the sidecar injector with helm install --dry-run=server and says which namespaces to label', () => {
    const out = helmInstallDryRun(['sidecarInjector.enabled=true']);
    assert.match(out, /^kind: MutatingWebhookConfiguration$/m);
    assert.match(out, /annotated\nwsgate\.io\/inject: "true" \(docs\/sidecar\.md\) in namespaces labelled so:\n {2}kubectl label namespace NAME wsgate\.io\/sidecar-injection=enabled\n/);
    assert.match(out, /start without the sidecar \(failurePolicy Ignore\)\.$/m);
  });

  describe('the sidecar injector\'s caBundle across an upgrade', () => {
    const NAME = 'wsgate-sidecar-injector';
    const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nwritten by the injector\n-----END CERTIFICATE-----\n').toString('base64');
    /** The webhook configuration helm would apply in an upgrade: `helm template --dry-run=server` runs its lookups. */
    const upgradeRender = (mode: string): { clientConfig: { caBundle?: string } } => {
      const r = helm([
        'template', 'wsgate', chartDir, '--namespace', 'wsgate', '--dry-run=server', '--kubeconfig', cp.kubeconfigPath,
        '--set', 'sidecarInjector.enabled=true', '--set', `sidecarInjector.certificate.mode=${mode}`,
        '--show-only', 'templates/sidecar-injector-webhook.yaml',
      ]);
      assert.equal(r.status, 0, r.stderr);
      return (one(parseManifests(r.stdout), 'MutatingWebhookConfiguration') as unknown as { webhooks: { clientConfig: { caBundle?: string } }[] }).webhooks[0]!;
    };
    before(async () => {
      // Installed as the first install renders it, then the caBundle written as the injector writes it.
      const config = render({ values: { sidecarInjector: { enabled: true } } }).find((m) => m.kind === 'MutatingWebhookConfiguration')!;
      await applyOrThrow(cp, config);
      const r = await send(
        cp, 'PATCH', objectPath(config),
        JSON.stringify([{ op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: caBundle }]), 'application/json-patch+json',
      );
      assert.equal(r.status, 200, r.body);
    });
    after(async () => {
      await send(cp, 'DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`, undefined, '');
    });

    it('keeps the caBundle the injector wrote in self-signed mode (lookup of the live object), so pods are injected during an upgrade', () => {
      assert.equal(upgradeRender('self-signed').clientConfig.caBundle, caBundle);
    });

    it('renders no caBundle in cert-manager mode, where cainjector owns it', () => {
      assert.equal(upgradeRender('cert-manager').clientConfig.caBundle, undefined);
    });
  });

  it('stores nothing in a dry run', async () => {
    const ms = render({});
    const deployment = ms.find((m) => m.kind === 'Deployment')!;
    assert.equal((await apply(cp, deployment, { dryRun: true })).status, 201);
    assert.equal((await send(cp, 'GET', objectPath(deployment), undefined, '')).status, 404);
  });

  it('rejects what the chart must never render: the dry run really validates', async () => {
    const deployment = render({}).find((m) => m.kind === 'Deployment')!;
    type Broken = Manifest & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    const misspelt = structuredClone(deployment) as Broken;
    misspelt.spec.template.spec.containers[0]!.livenessProbes = {};
    const r1 = await apply(cp, misspelt, { dryRun: true });
    assert.ok(r1.status >= 400, r1.body);
    assert.match(r1.body, /livenessProbes: field not declared in schema/);
    const invalid = structuredClone(deployment) as Broken;
    invalid.spec.template.spec.containers[0]!.ports = [{ name: 'http', containerPort: 70000 }];
    const r2 = await apply(cp, invalid, { dryRun: true });
    assert.equal(r2.status, 422, r2.body);
    assert.match(r2.body, /containerPort: Invalid value: 70000/);
  });

  describe('where cert-manager.io/v1 exists', () => {
    before(async () => {
      for (const crd of certManagerCrds) await applyOrThrow(cp, crd);
      for (const crd of certManagerCrds) await waitServed(cp, crd);
    });

    for (const [what, certManager] of [['its own self-signed Issuer', {}], ['a ClusterIssuer', { issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca', group: 'cert-manager.io' } }]] as const) {
      it(`accepts the sidecar injector in cert-manager mode with ${what}`, async () => {
        const ms = render({ values: { sidecarInjector: { enabled: true, certificate: { mode: 'cert-manager', certManager } } } });
        assert.ok(kinds(ms).includes('Certificate'));
        assert.equal(kinds(ms).includes('Issuer'), what !== 'a ClusterIssuer');
        assert.deepEqual(await dryRunAll(cp, ms), []);
      });
    }
  });

  describe('where monitoring.coreos.com/v1 exists', () => {
    before(async () => {
      for (const crd of [serviceMonitorCrd, prometheusRuleCrd]) await applyOrThrow(cp, crd);
      for (const crd of [serviceMonitorCrd, prometheusRuleCrd]) await waitServed(cp, crd);
    });

    it('installs the ServiceMonitor and PrometheusRule with helm install --dry-run=server once the API exists', () => {
      const out = helmInstallDryRun(['metrics.serviceMonitor.enabled=true', 'metrics.prometheusRule.enabled=true']);
      assert.match(out, /^kind: ServiceMonitor$/m);
      assert.match(out, /^kind: PrometheusRule$/m);
      assert.doesNotMatch(out, /was created/);
    });

    for (const { name, file } of scenarios()) {
      it(`accepts every object of ci/${name}-values.yaml rendered for a cluster with the Prometheus Operator`, async () => {
        const ms = render({ valuesFiles: [file], apiVersions: ['monitoring.coreos.com/v1'] });
        if (name === 'all-options') {
          assert.ok(kinds(ms).includes('ServiceMonitor'));
          assert.ok(kinds(ms).includes('PrometheusRule'));
          assert.ok(kinds(ms).includes('ConfigMap'));
        }
        assert.deepEqual(await dryRunAll(cp, ms), []);
      });
    }
  });
});
