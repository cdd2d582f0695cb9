// [issue 14] The chart's Gateway API pieces (gatewayAPI.enabled): the vendored CRDs (kept on uninstall, never over a
// newer bundle-version the cluster has), the GatewayClass as a post-install hook, the controller's and the proxies'
// ClusterRoles, and the controller's flags; every object accepted by the real kube-apiserver's server-side dry run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { chartDir, helm, kinds, one, parseManifests, render, renderError, container, type Manifest } from './helm.ts';
import { apply, applyOrThrow, send } from './kube-apply.ts';
import { PROXY_RULES } from '../conformance/run.ts';

const ENABLED = { gatewayAPI: { enabled: true } };
const crdNames = (ms: readonly Manifest[]): string[] => ms.filter((m) => m.kind === 'CustomResourceDefinition').map((m) => m.metadata.name).sort();

describe('the chart: Gateway API', () => {
  it('renders nothing of it by default', () => {
    const ms = render();
    assert.ok(!kinds(ms).includes('GatewayClass'));
    assert.deepEqual(crdNames(ms), []);
    assert.ok(!container(ms.find((m) => m.kind === 'Deployment')!).args.some((a) => a.startsWith('--gateway-class')));
  });

  it('with gatewayAPI.enabled: the CRDs kept on uninstall, the GatewayClass as a hook, and the controller flags', () => {
    const ms = render({ values: ENABLED });
    assert.equal(crdNames(ms).length, 10);
    for (const m of ms.filter((x) => x.kind === 'CustomResourceDefinition')) {
      assert.equal(m.metadata.annotations?.['helm.sh/resource-policy'], 'keep', m.metadata.name);
      assert.equal(m.metadata.annotations?.['gateway.networking.k8s.io/bundle-version'], 'v1.6.3', m.metadata.name);
    }
    const gwc = one(ms, 'GatewayClass', 'wsgate') as Manifest & { spec: { controllerName: string } };
    assert.equal(gwc.spec.controllerName, 'wsgate.io/gateway-controller');
    assert.match(gwc.metadata.annotations?.['helm.sh/hook'] ?? '', /post-install/);
    const args = container(ms.find((m) => m.kind === 'Deployment')!).args;
    for (const a of ['--gateway-class=*', '--proxy-image=wsgate:0.1.0', '--proxy-cluster-role=wsgate-gateway-proxy', '--proxy-service-type=LoadBalancer']) {
      assert.ok(args.includes(a), a);
    }
  });

  it("grants the proxies exactly the read access their informers need (the conformance harness's list)", () => {
    const role = one(render({ values: ENABLED }), 'ClusterRole', 'wsgate-gateway-proxy') as Manifest & { rules: unknown[] };
    assert.deepEqual(role.rules, PROXY_RULES);
  });

  it('refuses gatewayAPI with controller.watchNamespace (the Gateway API is served cluster-wide)', () => {
    assert.match(renderError({ values: { ...ENABLED, controller: { watchNamespace: 'team-a' } } }), /leave controller.watchNamespace empty/);
  });

  it('leaves out the CRDs with gatewayAPI.installCRDs=false', () => {
    const ms = render({ values: { gatewayAPI: { enabled: true, installCRDs: false } } });
    assert.deepEqual(crdNames(ms), []);
    assert.ok(kinds(ms).includes('GatewayClass'));
  });

  describe('against kube-apiserver', () => {
    let cp: ControlPlane;
    before(async () => {
      cp = await startControlPlane({ crds: false });
      await applyOrThrow(cp, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wsgate' } });
    });
    after(async () => {
      await cp?.stop();
    });

    /** `helm template --dry-run=server`: the chart's lookups see the cluster. */
    const renderAgainstCluster = (): Manifest[] => {
      const r = helm(['template', 'wsgate', chartDir, '--namespace', 'wsgate', '--dry-run=server', '--kubeconfig', cp.kubeconfigPath, '--set', 'gatewayAPI.enabled=true']);
      assert.equal(r.status, 0, r.stderr);
      return parseManifests(r.stdout);
    };

    it('accepts every object in a server-side dry run once the CRDs are in', async () => {
      const ms = render({ values: ENABLED, includeCrds: true });
      const crds = ms.filter((m) => m.kind === 'CustomResourceDefinition');
      for (const c of crds) await applyOrThrow(cp, c);
      for (const c of crds.filter((x) => (x.spec as { group: string }).group === 'gateway.networking.k8s.io')) {
        const { group, names } = c.spec as { group: string; names: { plural: string } };
        for (let i = 0; ; i++) {
          const r = await send(cp, 'GET', `/apis/${group}/v1/${names.plural}`, undefined, '');
          if (r.status === 200) break;
          if (i > 150) throw new Error(`${c.metadata.name} not served: HTTP ${r.status}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      const problems: string[] = [];
      for (const m of ms.filter((x) => x.kind !== 'CustomResourceDefinition')) {
        const r = await apply(cp, m, { dryRun: true });
        if (r.status < 200 || r.status > 299) problems.push(`${m.kind}/${m.metadata.name}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
        for (const w of r.warnings) problems.push(`${m.kind}/${m.metadata.name}: warning: ${w}`);
      }
      assert.deepEqual(problems, []);
    });

    it('never downgrades: a CRD the cluster has at a newer bundle-version is left out, one at an older is rendered', async () => {
      const bump = async (name: string, version: string): Promise<void> => {
        const r = await send(
          cp,
          'PATCH',
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
          JSON.stringify({ metadata: { annotations: { 'gateway.networking.k8s.io/bundle-version': version } } }),
          'application/merge-patch+json',
        );
        assert.equal(r.status, 200, r.body);
      };
      await bump('httproutes.gateway.networking.k8s.io', 'v1.7.0');
      await bump('tcproutes.gateway.networking.k8s.io', 'v1.5.0');
      const names = crdNames(renderAgainstCluster());
      assert.ok(!names.includes('httproutes.gateway.networking.k8s.io'), 'the newer HTTPRoute CRD is left alone');
      assert.ok(names.includes('tcproutes.gateway.networking.k8s.io'), 'the older TCPRoute CRD is upgraded');
      assert.ok(!names.includes('gateways.gateway.networking.k8s.io'), 'one at the same version is left alone');
    });
  });
});
