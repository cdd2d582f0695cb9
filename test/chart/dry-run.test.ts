// Every ci/ scenario, rendered by helm and applied with server-side dry run (dryRun=All, fieldValidation=Strict) to
// the real kube-apiserver: schemas, defaulting, validation and admission are the API server's own, nothing stored.
// The Prometheus Operator's objects render only where its API exists: without it they are absent; with stand-in
// CRDs for it installed (monitoring-crds.ts), they render and pass the same dry run.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { chartDir, helm, kinds, render, scenarios, type Manifest } from './helm.ts';
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
