// What the chart renders for the values that matter, read back from `helm template` as objects. Names are
// sentences, as in traefik's chart tests.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { chartDir, container, flag, kinds, one, podSpec, render, renderError, renderText, type Container, type Manifest, type PodSpec } from './helm.ts';

interface ServicePort {
  name: string;
  port: number;
  targetPort: string | number;
  nodePort?: number;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const servicePorts = (m: Manifest): ServicePort[] => (m.spec as { ports: ServicePort[] }).ports;
const rules = (m: Manifest): Rule[] => (m as unknown as { rules: Rule[] }).rules;
/** `group/resource: verbs` lines of a Role or ClusterRole, sorted, for readable comparisons. */
const grants = (m: Manifest): string[] =>
  rules(m)
    .flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.map((res) => `${g === '' ? 'core' : g}/${res}${r.resourceNames ? `[${r.resourceNames.join(',')}]` : ''}: ${[...r.verbs].sort().join(',')}`),
      ),
    )
    .sort();

describe('the chart: defaults', () => {
  const ms = render();
  const deployment = one(ms, 'Deployment');

  it('should render the objects of a cluster-wide install and nothing for monitoring', () => {
    assert.deepEqual(kinds(ms).sort(), [
      'ClusterRole', 'ClusterRoleBinding', 'Deployment', 'IngressClass', 'PodDisruptionBudget', 'Role', 'RoleBinding',
      'Service', 'Service', 'ServiceAccount',
    ]);
  });

  it('should put every namespaced object in the release namespace', () => {
    const clusterScoped = ['ClusterRole', 'ClusterRoleBinding', 'IngressClass'];
    for (const m of ms) {
      assert.equal(m.metadata.namespace, clusterScoped.includes(m.kind) ? undefined : 'wsgate', `${m.kind}/${m.metadata.name}`);
    }
  });

  it('should run wsgate controller from the image tagged with the appVersion', () => {
    const c = container(deployment);
    assert.equal(c.image, 'wsgate:0.1.0');
    assert.equal(c.args[0], 'controller');
  });

  it('should publish port 8080 as 80 and 8443 as 443 on a LoadBalancer Service', () => {
    const svc = one(ms, 'Service', 'wsgate');
    assert.equal((svc.spec as { type: string }).type, 'LoadBalancer');
    assert.deepEqual(servicePorts(svc).map((p) => [p.name, p.port, p.targetPort]), [['http', 80, 'http'], ['https', 443, 'https']]);
    assert.deepEqual(container(deployment).ports.map((p) => [p.name, p.containerPort]), [['http', 8080], ['https', 8443], ['admin', 9090]]);
    assert.equal(flag(deployment, 'http-addr'), '0.0.0.0:8080');
    assert.equal(flag(deployment, 'https-addr'), '0.0.0.0:8443');
  });

  it('should keep the admin port off the load balancer, on a ClusterIP metrics Service', () => {
    assert.ok(!servicePorts(one(ms, 'Service', 'wsgate')).some((p) => p.targetPort === 'admin' || p.port === 9090));
    const metrics = one(ms, 'Service', 'wsgate-metrics');
    assert.equal((metrics.spec as { type: string }).type, 'ClusterIP');
    assert.deepEqual(servicePorts(metrics).map((p) => [p.name, p.port, p.targetPort]), [['admin', 9090, 'admin']]);
    assert.equal(flag(deployment, 'admin-addr'), '0.0.0.0:9090');
  });

  it('should run as a non-root user with a read-only root filesystem, no privilege escalation and no capabilities', () => {
    const pod = podSpec(deployment);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
    const sc = container(deployment).securityContext;
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.privileged, false);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
    assert.deepEqual(container(deployment).volumeMounts?.map((v) => v.mountPath), ['/tmp']);
  });

  it('should request CPU and memory', () => {
    const r = container(deployment).resources;
    assert.ok(r.requests?.cpu !== undefined && r.requests.memory !== undefined, JSON.stringify(r));
  });

  it('should probe liveness on /healthz and readiness on /readyz, both on the admin port', () => {
    const c = container(deployment);
    assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
  });

  it('should keep accepting for a 5 s drain delay, spread the 1001s over 30 s, and need no preStop hook for it', () => {
    assert.equal(flag(deployment, 'drain-delay'), '5s');
    assert.equal(flag(deployment, 'drain-timeout'), '30s');
    assert.equal(container(deployment).lifecycle, undefined);
  });

  it('should give the pod a grace period of delay + timeout + 5 s of close handshakes + a 10 s margin', () => {
    assert.equal(podSpec(deployment).terminationGracePeriodSeconds, 5 + 30 + 5 + 10);
  });

  it('should run 2 replicas, spread across nodes, with a rolling update that never lowers capacity', () => {
    assert.equal((deployment.spec as { replicas: number }).replicas, 2);
    const anti = podSpec(deployment).affinity?.podAntiAffinity as { preferredDuringSchedulingIgnoredDuringExecution: { podAffinityTerm: { topologyKey: string } }[] };
    assert.equal(anti.preferredDuringSchedulingIgnoredDuringExecution[0]?.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual((deployment.spec as { strategy: unknown }).strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  });

  it('should let at most one replica be evicted at a time', () => {
    assert.deepEqual((one(ms, 'PodDisruptionBudget').spec as { maxUnavailable: number }).maxUnavailable, 1);
  });

  it('should serve the IngressClass wsgate, owned by wsgate.io/ingress-controller, not the default one', () => {
    const ic = one(ms, 'IngressClass');
    assert.equal(ic.metadata.name, 'wsgate');
    assert.deepEqual(ic.spec, { controller: 'wsgate.io/ingress-controller' });
    assert.equal(ic.metadata.annotations, undefined);
    assert.equal(flag(deployment, 'ingress-class'), 'wsgate');
  });

  it('should publish its own Service in Ingress status and elect a leader in the release namespace', () => {
    assert.equal(flag(deployment, 'publish-service'), 'wsgate/wsgate');
    assert.equal(flag(deployment, 'leader-election-namespace'), 'wsgate');
    assert.equal(flag(deployment, 'leader-election-id'), 'wsgate-leader');
    assert.equal(flag(deployment, 'namespace'), undefined);
  });

  it('should grant cluster-wide exactly the verbs the controller uses', () => {
    assert.deepEqual(grants(one(ms, 'ClusterRole')), [
      'core/events: create',
      'core/secrets: get,list,watch',
      'core/services: list,watch',
      'discovery.k8s.io/endpointslices: list,watch',
      'networking.k8s.io/ingressclasses: list,watch',
      'networking.k8s.io/ingresses/status: patch',
      'networking.k8s.io/ingresses: list,watch',
      'wsgate.io/tcptunnels/status: patch',
      'wsgate.io/tcptunnels: list,watch',
      'wsgate.io/websocketroutes/status: patch',
      'wsgate.io/websocketroutes: list,watch',
    ]);
    const binding = one(ms, 'ClusterRoleBinding') as unknown as { roleRef: { name: string }; subjects: unknown[] };
    assert.equal(binding.roleRef.name, 'wsgate');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'wsgate', namespace: 'wsgate' }]);
  });

  it('should grant the Lease and the publish Service by name only, in the release namespace', () => {
    const role = one(ms, 'Role', 'wsgate-leader');
    assert.equal(role.metadata.namespace, 'wsgate');
    assert.deepEqual(grants(role), [
      'coordination.k8s.io/leases: create',
      'coordination.k8s.io/leases[wsgate-leader]: get,update',
      'core/services[wsgate]: get',
    ]);
  });

  it('should create no ServiceMonitor, PrometheusRule or dashboard unless asked', () => {
    for (const k of ['ServiceMonitor', 'PrometheusRule', 'ConfigMap', 'HorizontalPodAutoscaler']) assert.ok(!kinds(ms).includes(k), k);
  });
});

describe('the chart: values that change what is rendered', () => {
  it('should watch one namespace with a Role there, keeping only IngressClasses in the ClusterRole', () => {
    const ms = render({ values: { controller: { watchNamespace: 'team-a' } } });
    assert.equal(flag(one(ms, 'Deployment'), 'namespace'), 'team-a');
    assert.deepEqual(grants(one(ms, 'ClusterRole')), ['networking.k8s.io/ingressclasses: list,watch']);
    const role = one(ms, 'Role', 'wsgate-watch');
    assert.equal(role.metadata.namespace, 'team-a');
    assert.ok(grants(role).includes('wsgate.io/websocketroutes/status: patch'));
    assert.ok(!grants(role).some((g) => g.includes('ingressclasses')));
    const binding = one(ms, 'RoleBinding', 'wsgate-watch') as unknown as { metadata: { namespace: string }; subjects: unknown[] };
    assert.equal(binding.metadata.namespace, 'team-a');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'wsgate', namespace: 'wsgate' }]);
  });

  it('should render a DaemonSet with no replicas, PDB, HPA or anti-affinity when kind is DaemonSet', () => {
    const ms = render({ values: { kind: 'DaemonSet', autoscaling: { enabled: true } } });
    const ds = one(ms, 'DaemonSet');
    assert.equal((ds.spec as { replicas?: number }).replicas, undefined);
    assert.equal(podSpec(ds).affinity, undefined);
    for (const k of ['Deployment', 'PodDisruptionBudget', 'HorizontalPodAutoscaler']) assert.ok(!kinds(ms).includes(k), k);
  });

  it('should drop the anti-affinity and the PDB for a single replica', () => {
    const ms = render({ values: { replicas: 1 } });
    assert.equal(podSpec(one(ms, 'Deployment')).affinity, undefined);
    assert.ok(!kinds(ms).includes('PodDisruptionBudget'));
  });

  it('should require replicas on different nodes with podAntiAffinity hard', () => {
    const anti = podSpec(one(render({ values: { podAntiAffinity: 'hard' } }), 'Deployment')).affinity?.podAntiAffinity;
    assert.ok(anti !== undefined && 'requiredDuringSchedulingIgnoredDuringExecution' in anti);
  });

  it('should publish each TCPTunnel port on the pod and the Service, under its own name', () => {
    const ms = render({ values: { tunnels: [{ name: 'mqtt', port: 8883 }, { name: 'pg', port: 5432, servicePort: 15432, nodePort: 30432 }] } });
    assert.deepEqual(container(one(ms, 'Deployment')).ports.slice(3).map((p) => [p.name, p.containerPort]), [['mqtt', 8883], ['pg', 5432]]);
    assert.deepEqual(
      servicePorts(one(ms, 'Service', 'wsgate')).slice(2).map((p) => [p.name, p.port, p.targetPort, p.nodePort]),
      [['mqtt', 8883, 'mqtt', undefined], ['pg', 15432, 'pg', 30432]],
    );
  });

  it('should turn a listener off in wsgate and drop its ports when disabled', () => {
    const ms = render({ values: { ports: { http: { enabled: false } } } });
    assert.equal(flag(one(ms, 'Deployment'), 'http-addr'), 'off');
    assert.deepEqual(servicePorts(one(ms, 'Service', 'wsgate')).map((p) => p.name), ['https']);
  });

  it('should write given addresses into Ingress status instead of the Service, and need no read of it', () => {
    const ms = render({ values: { controller: { publishAddresses: ['203.0.113.7', 'ws.example.com'] } } });
    const d = one(ms, 'Deployment');
    assert.equal(flag(d, 'publish-address'), '203.0.113.7,ws.example.com');
    assert.equal(flag(d, 'publish-service'), undefined);
    assert.ok(!grants(one(ms, 'Role', 'wsgate-leader')).some((g) => g.startsWith('core/services')));
  });

  it('should mark the IngressClass as the default when asked', () => {
    const ic = one(render({ values: { ingressClass: { default: true } } }), 'IngressClass');
    assert.deepEqual(ic.metadata.annotations, { 'ingressclass.kubernetes.io/is-default-class': 'true' });
  });

  it('should mount the default certificate Secret and pass its files to wsgate', () => {
    const d = one(render({ values: { controller: { defaultCertificateSecret: 'edge-tls' } } }), 'Deployment');
    assert.equal(flag(d, 'default-cert'), '/etc/wsgate/default-certificate/tls.crt');
    assert.equal(flag(d, 'default-key'), '/etc/wsgate/default-certificate/tls.key');
    assert.deepEqual(podSpec(d).volumes?.find((v) => v.name === 'default-certificate')?.secret, { secretName: 'edge-tls' });
  });

  it('should pull by digest when one is given', () => {
    const d = one(render({ values: { image: { repository: 'r.example.com/wsgate', digest: `sha256:${'a'.repeat(64)}` } } }), 'Deployment');
    assert.equal(container(d).image, `r.example.com/wsgate@sha256:${'a'.repeat(64)}`);
  });

  it('should run one data-plane process per pod by default, and the number asked for with controller.workers', () => {
    assert.equal(flag(one(render({}), 'Deployment'), 'workers'), '1');
    assert.equal(flag(one(render({ values: { controller: { workers: 4 } } }), 'Deployment'), 'workers'), '4');
    // 0 leaves the choice to wsgate: one per CPU the pod may use.
    assert.equal(flag(one(render({ values: { controller: { workers: 0 } } }), 'Deployment'), 'workers'), undefined);
  });

  it('should stretch the grace period with a longer drain delay and timeout', () => {
    const d = one(render({ values: { controller: { drain: { delaySeconds: 15, timeoutSeconds: 600 } } } }), 'Deployment');
    assert.equal(flag(d, 'drain-delay'), '15s');
    assert.equal(flag(d, 'drain-timeout'), '600s');
    assert.equal(podSpec(d).terminationGracePeriodSeconds, 15 + 600 + 5 + 10);
  });

  it('should close every connection at once with a drain timeout of 0, and still leave time for the close handshakes', () => {
    const d = one(render({ values: { controller: { drain: { delaySeconds: 0, timeoutSeconds: 0 } } } }), 'Deployment');
    assert.equal(flag(d, 'drain-delay'), '0s');
    assert.equal(flag(d, 'drain-timeout'), '0s');
    assert.equal(podSpec(d).terminationGracePeriodSeconds, 5 + 10);
  });

  it('should sleep in preStop when asked (with no drain delay), and count the sleep in the grace period', () => {
    const d = one(render({ values: { controller: { drain: { delaySeconds: 0, preStopSleepSeconds: 8 } } } }), 'Deployment');
    assert.deepEqual(container(d).lifecycle?.preStop, { sleep: { seconds: 8 } });
    assert.equal(flag(d, 'drain-delay'), '0s');
    assert.equal(podSpec(d).terminationGracePeriodSeconds, 8 + 30 + 5 + 10);
  });

  it('should refuse a preStop sleep together with a drain delay, since the two waits would add up', () => {
    assert.match(
      renderError({ values: { controller: { drain: { preStopSleepSeconds: 5 } } } }),
      /controller\.drain\.preStopSleepSeconds=5 and controller\.drain\.delaySeconds=5 both wait .* add up \(10 s\): set one of them to 0/,
    );
  });

  it('should refuse a grace period too short for the drain, and say what the drain needs', () => {
    assert.match(
      renderError({ values: { terminationGracePeriodSeconds: 39 } }),
      /terminationGracePeriodSeconds=39 is shorter than the drain needs: .*delaySeconds \(5\) \+ timeoutSeconds \(30\) \+ 5 s for the last close handshakes = 40 s.*set it to 0 to have it computed \(50\)/,
    );
  });

  it('should accept a grace period of exactly what the drain needs, and use it as given', () => {
    assert.equal(podSpec(one(render({ values: { terminationGracePeriodSeconds: 40 } }), 'Deployment')).terminationGracePeriodSeconds, 40);
  });

  it('should wire the same drain into a DaemonSet', () => {
    const d = one(render({ values: { kind: 'DaemonSet', controller: { drain: { timeoutSeconds: 60 } } } }), 'DaemonSet');
    assert.equal(flag(d, 'drain-delay'), '5s');
    assert.equal(flag(d, 'drain-timeout'), '60s');
    assert.equal(podSpec(d).terminationGracePeriodSeconds, 5 + 60 + 5 + 10);
  });

  it('should autoscale the Deployment instead of fixing replicas, and scale down one pod at a time', () => {
    const ms = render({ values: { autoscaling: { enabled: true } } });
    assert.equal((one(ms, 'Deployment').spec as { replicas?: number }).replicas, undefined);
    const hpa = one(ms, 'HorizontalPodAutoscaler').spec as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas: number;
      behavior: { scaleDown: { policies: { type: string; value: number }[] } };
    };
    assert.deepEqual([hpa.scaleTargetRef.kind, hpa.scaleTargetRef.name, hpa.minReplicas], ['Deployment', 'wsgate', 2]);
    assert.deepEqual(hpa.behavior.scaleDown.policies[0], { type: 'Pods', value: 1, periodSeconds: 300 });
    assert.ok(kinds(ms).includes('PodDisruptionBudget'));
  });

  it('should keep the ServiceMonitor and PrometheusRule out where monitoring.coreos.com/v1 does not exist', () => {
    const values = { metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } } };
    const ms = render({ values });
    assert.ok(!kinds(ms).includes('ServiceMonitor') && !kinds(ms).includes('PrometheusRule'));
    assert.match(renderText({ values }), /kind: Deployment/);
  });

  it('should scrape the metrics Service\'s admin port with a ServiceMonitor where the API exists', () => {
    const ms = render({ values: { metrics: { serviceMonitor: { enabled: true, labels: { release: 'prom' } } } }, apiVersions: ['monitoring.coreos.com/v1'] });
    const sm = one(ms, 'ServiceMonitor');
    assert.equal(sm.metadata.labels?.release, 'prom');
    const spec = sm.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
    assert.deepEqual(spec.endpoints.map((e) => [e.port, e.path]), [['admin', '/metrics']]);
    // The selector picks the metrics Service only.
    const selected = ms.filter(
      (m) => m.kind === 'Service' && Object.entries(spec.selector.matchLabels).every(([k, v]) => m.metadata.labels?.[k] === v),
    );
    assert.deepEqual(selected.map((m) => m.metadata.name), ['wsgate-metrics']);
  });

  it('should carry the rules of rules/wsgate-rules.yaml in the PrometheusRule where the API exists', () => {
    const ms = render({ values: { metrics: { prometheusRule: { enabled: true } } }, apiVersions: ['monitoring.coreos.com/v1'] });
    const pr = one(ms, 'PrometheusRule');
    const file = parse(readFileSync(join(chartDir, 'rules', 'wsgate-rules.yaml'), 'utf8')) as { groups: unknown[] };
    assert.ok(file.groups.length > 0);
    assert.deepEqual((pr.spec as { groups: unknown[] }).groups, file.groups);
  });

  it('should hold dashboards/wsgate.json in a ConfigMap labelled for Grafana\'s sidecar', () => {
    const ms = render({ values: { metrics: { dashboard: { enabled: true, namespace: 'monitoring' } } } });
    const cm = one(ms, 'ConfigMap');
    assert.equal(cm.metadata.namespace, 'monitoring');
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    const json = (cm as unknown as { data: Record<string, string> }).data['wsgate.json'];
    assert.deepEqual(JSON.parse(json ?? ''), JSON.parse(readFileSync(join(chartDir, 'dashboards', 'wsgate.json'), 'utf8')));
  });

  it('should use the release name for every object and the ServiceAccount it names', () => {
    const ms = render({ release: 'edge', namespace: 'ingress', values: { serviceAccount: { name: 'edge-sa' } } });
    assert.equal(one(ms, 'Deployment').metadata.name, 'edge-wsgate');
    assert.equal(podSpec(one(ms, 'Deployment')).serviceAccountName, 'edge-sa');
    assert.equal(one(ms, 'ServiceAccount').metadata.name, 'edge-sa');
    assert.equal(flag(one(ms, 'Deployment'), 'publish-service'), 'ingress/edge-wsgate');
  });
});

describe('the chart: the sidecar injector', () => {
  const NAME = 'wsgate-sidecar-injector';
  const on = (extra: Record<string, unknown> = {}): Manifest[] => render({ values: { sidecarInjector: { enabled: true, ...extra } } });
  const certManager = (certManagerValues: Record<string, unknown> = {}): Manifest[] =>
    on({ certificate: { mode: 'cert-manager', certManager: certManagerValues } });
  const injector = (ms: readonly Manifest[]): Container => {
    const c = podSpec(one(ms, 'Deployment', NAME)).containers[0];
    assert.ok(c !== undefined && c.name === 'webhook');
    return c;
  };
  const arg = (c: Container, name: string): string | undefined => c.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  interface Webhook {
    name: string;
    failurePolicy: string;
    reinvocationPolicy: string;
    sideEffects: string;
    timeoutSeconds: number;
    clientConfig: { service: { name: string; namespace: string; path: string; port: number }; caBundle?: string };
    rules: { operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[] }[];
    namespaceSelector: unknown;
    objectSelector?: unknown;
  }
  const webhooks = (ms: readonly Manifest[]): Webhook[] => (one(ms, 'MutatingWebhookConfiguration') as unknown as { webhooks: Webhook[] }).webhooks;
  const ms = on();

  it('should render nothing of the injector unless sidecarInjector.enabled', () => {
    const off = render();
    assert.ok(!kinds(off).includes('MutatingWebhookConfiguration'));
    assert.deepEqual(off.filter((m) => m.metadata.name.includes('sidecar-injector')).map((m) => m.kind), []);
    assert.deepEqual(render({ values: { sidecarInjector: { certificate: { mode: 'cert-manager' } } } }).filter((m) => m.metadata.name.includes('sidecar-injector')), []);
  });

  it('should add the injector\'s Deployment, Service, PDB, ServiceAccount, RBAC and webhook configuration when enabled', () => {
    assert.deepEqual(ms.filter((m) => m.metadata.name === NAME).map((m) => m.kind).sort(), [
      'ClusterRole', 'ClusterRoleBinding', 'Deployment', 'MutatingWebhookConfiguration', 'PodDisruptionBudget', 'Role',
      'RoleBinding', 'Service', 'ServiceAccount',
    ]);
    // The controller's own objects are unchanged.
    assert.equal(ms.filter((m) => m.metadata.name !== NAME).length, render().length);
  });

  it('should send pod CREATEs to the injector\'s Service at /mutate, with failurePolicy Ignore and one reinvocation', () => {
    const [w, ...more] = webhooks(ms);
    assert.deepEqual(more, []);
    assert.equal(w?.failurePolicy, 'Ignore');
    assert.equal(w.reinvocationPolicy, 'IfNeeded');
    assert.equal(w.sideEffects, 'None');
    assert.deepEqual(w.clientConfig.service, { name: NAME, namespace: 'wsgate', path: '/mutate', port: 443 });
    assert.deepEqual(w.rules.map((r) => [r.operations, r.apiGroups, r.apiVersions, r.resources]), [[['CREATE'], [''], ['v1'], ['pods']]]);
    const svc = one(ms, 'Service', NAME);
    assert.deepEqual(servicePorts(svc).map((p) => [p.name, p.port, p.targetPort]), [['https', 443, 'https'], ['admin', 9090, 'admin']]);
    assert.equal(arg(injector(ms), 'listen'), '0.0.0.0:8443');
  });

  it('should select namespaces by the label wsgate.io/sidecar-injection=enabled, and every pod in them', () => {
    const [w] = webhooks(ms);
    assert.deepEqual(w?.namespaceSelector, { matchLabels: { 'wsgate.io/sidecar-injection': 'enabled' } });
    assert.equal(w.objectSelector, undefined);
    const custom = webhooks(on({ namespaceSelector: { matchLabels: null, matchExpressions: [{ key: 'team', operator: 'Exists' }] }, objectSelector: { matchLabels: { sidecar: 'yes' } } }))[0];
    assert.deepEqual(custom?.namespaceSelector, { matchExpressions: [{ key: 'team', operator: 'Exists' }] });
    assert.deepEqual(custom.objectSelector, { matchLabels: { sidecar: 'yes' } });
  });

  it('should render no caBundle in self-signed mode when there is no live configuration to keep it from', () => {
    assert.equal(webhooks(ms)[0]?.clientConfig.caBundle, undefined);
    assert.equal(one(ms, 'MutatingWebhookConfiguration').metadata.annotations, undefined);
  });

  it('should run wsgate webhook in self-signed mode by default, keeping its Secret and its own configuration\'s caBundle', () => {
    const c = injector(ms);
    assert.equal(c.args[0], 'webhook');
    assert.ok(c.args.includes('--self-signed'));
    assert.equal(arg(c, 'webhook-config'), NAME);
    assert.equal(arg(c, 'cert-secret'), `wsgate/${NAME}-tls`);
    assert.deepEqual(c.args.filter((a) => a.startsWith('--dns-name=')), [`--dns-name=${NAME}.wsgate.svc`, `--dns-name=${NAME}.wsgate.svc.cluster.local`]);
    assert.equal(arg(c, 'reconcile-interval'), '1m');
    assert.equal(arg(c, 'tls-cert'), undefined);
    assert.equal((podSpec(one(ms, 'Deployment', NAME)) as PodSpec & { automountServiceAccountToken: boolean }).automountServiceAccountToken, true);
    assert.ok(!kinds(ms).includes('Certificate') && !kinds(ms).includes('Issuer'));
  });

  it('should grant the injector in self-signed mode only its Secret and its own webhook configuration', () => {
    assert.deepEqual(grants(one(ms, 'Role', NAME)), ['core/secrets: create', `core/secrets[${NAME}-tls]: get,update`]);
    assert.equal(one(ms, 'Role', NAME).metadata.namespace, 'wsgate');
    assert.deepEqual(grants(one(ms, 'ClusterRole', NAME)), [`admissionregistration.k8s.io/mutatingwebhookconfigurations[${NAME}]: get,patch`]);
    for (const kind of ['RoleBinding', 'ClusterRoleBinding']) {
      const b = one(ms, kind, NAME) as unknown as { roleRef: { kind: string; name: string }; subjects: unknown[] };
      assert.deepEqual([b.roleRef.kind, b.roleRef.name], [kind.replace('Binding', ''), NAME]);
      assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: NAME, namespace: 'wsgate' }]);
    }
    assert.equal(podSpec(one(ms, 'Deployment', NAME)).serviceAccountName, NAME);
  });

  it('should render a cert-manager Certificate for the Service\'s names, with a self-signed Issuer, only in cert-manager mode', () => {
    const cm = certManager();
    const cert = one(cm, 'Certificate', NAME).spec as { secretName: string; dnsNames: string[]; issuerRef: unknown; duration: string; renewBefore: string };
    assert.equal(cert.secretName, `${NAME}-tls`);
    assert.deepEqual(cert.dnsNames, [`${NAME}.wsgate.svc`, `${NAME}.wsgate.svc.cluster.local`]);
    assert.deepEqual(cert.issuerRef, { kind: 'Issuer', name: NAME });
    assert.deepEqual([cert.duration, cert.renewBefore], ['2160h', '360h']);
    assert.deepEqual(one(cm, 'Issuer', NAME).spec, { selfSigned: {} });
  });

  it('should use the given issuer and make none of its own when certManager.issuerRef is set', () => {
    const cm = certManager({ issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca' } });
    assert.deepEqual((one(cm, 'Certificate').spec as { issuerRef: unknown }).issuerRef, { kind: 'ClusterIssuer', name: 'corp-ca' });
    assert.ok(!kinds(cm).includes('Issuer'));
  });

  it('should serve the Certificate\'s Secret from files in cert-manager mode, with cainjector filling the caBundle and no API access', () => {
    const cm = certManager();
    const c = injector(cm);
    assert.equal(arg(c, 'tls-cert'), '/etc/wsgate/webhook-tls/tls.crt');
    assert.equal(arg(c, 'tls-key'), '/etc/wsgate/webhook-tls/tls.key');
    assert.ok(!c.args.includes('--self-signed'));
    assert.equal(podSpec(one(cm, 'Deployment', NAME)).volumes?.find((v) => v.name === 'webhook-tls')?.secret?.secretName, `${NAME}-tls`);
    assert.deepEqual(one(cm, 'MutatingWebhookConfiguration').metadata.annotations, { 'cert-manager.io/inject-ca-from': `wsgate/${NAME}` });
    assert.equal(webhooks(cm)[0]?.clientConfig.caBundle, undefined);
    // No role at all, and no token mounted.
    assert.deepEqual(cm.filter((m) => m.metadata.name === NAME && /Role/.test(m.kind)), []);
    assert.equal((podSpec(one(cm, 'Deployment', NAME)) as PodSpec & { automountServiceAccountToken: boolean }).automountServiceAccountToken, false);
  });

  it('should refuse an unknown certificate mode', () => {
    assert.match(renderError({ values: { sidecarInjector: { enabled: true, certificate: { mode: 'vault' } } } }), /at '\/sidecarInjector\/certificate\/mode'/);
  });

  it('should inject the chart\'s image by default, and pass the sidecar\'s image, ports, resources and user to wsgate webhook', () => {
    const c = injector(ms);
    assert.equal(c.image, 'wsgate:0.1.0');
    assert.deepEqual(
      ['image', 'image-pull-policy', 'listen-port', 'admin-port', 'cpu-request', 'memory-request', 'memory-limit', 'run-as-user'].map((f) => arg(c, f)),
      ['wsgate:0.1.0', 'IfNotPresent', '8800', '9800', '50m', '96Mi', undefined, '65532'],
    );
    const custom = injector(on({ sidecar: { image: 'r.example.com/wsgate:edge', listenPort: 8900, adminPort: 9900, cpuRequest: '10m', memoryRequest: '32Mi', memoryLimit: '128Mi' } }));
    assert.deepEqual(
      ['image', 'listen-port', 'admin-port', 'cpu-request', 'memory-request', 'memory-limit'].map((f) => arg(custom, f)),
      ['r.example.com/wsgate:edge', '8900', '9900', '10m', '32Mi', '128Mi'],
    );
    assert.equal(custom.image, 'wsgate:0.1.0');
  });

  it('should run the injector as the controller runs: non-root, read-only root filesystem, no privilege escalation, no capabilities', () => {
    const pod = podSpec(one(ms, 'Deployment', NAME));
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const sc = injector(ms).securityContext;
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
    assert.deepEqual(injector(ms).readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
  });

  it('should never let a selector of the controller pick the injector\'s pods, nor the injector\'s pick the controller\'s', () => {
    const all = ms;
    const podLabels = (d: Manifest): Record<string, string> => (d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
    const injectorPods = podLabels(one(all, 'Deployment', NAME));
    const controllerPods = podLabels(one(all, 'Deployment', 'wsgate'));
    for (const name of ['wsgate', 'wsgate-metrics']) assert.ok(!selects((one(all, 'Service', name).spec as { selector: Record<string, string> }).selector, injectorPods), name);
    assert.ok(!selects((one(all, 'PodDisruptionBudget', 'wsgate').spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, injectorPods));
    assert.ok(!selects((one(all, 'Service', NAME).spec as { selector: Record<string, string> }).selector, controllerPods));
    assert.ok(selects((one(all, 'Service', NAME).spec as { selector: Record<string, string> }).selector, injectorPods));
  });

  it('should keep injector replicas on different nodes when it can and let one be evicted at a time; one replica gets no PDB', () => {
    const anti = podSpec(one(ms, 'Deployment', NAME)).affinity?.podAntiAffinity as { preferredDuringSchedulingIgnoredDuringExecution: unknown[] } | undefined;
    assert.equal(anti?.preferredDuringSchedulingIgnoredDuringExecution.length, 1);
    assert.equal((one(ms, 'PodDisruptionBudget', NAME).spec as { maxUnavailable: number }).maxUnavailable, 1);
    const single = on({ replicas: 1 });
    assert.ok(!single.some((m) => m.kind === 'PodDisruptionBudget' && m.metadata.name === NAME));
    assert.equal(podSpec(one(single, 'Deployment', NAME)).affinity, undefined);
  });
});
