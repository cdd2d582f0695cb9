// The cluster half of the conformance harness, against real binaries: kube-apiserver, kube-controller-manager and
// the process kubelet (a test fixture) run echo-basic — the Gateway API conformance suite's backend — the way the suite
// deploys it, and every step a cluster owes it can be seen: Pods bound, Running and Ready, EndpointSlices made by
// kube-controller-manager from the Pod IPs, echo-basic answering from its pod IP with its own name and namespace.
// Needs root, iproute2 and the binaries of scripts/k8s/build.sh and scripts/conformance/build.sh.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { AppsV1Api, CoreV1Api, DiscoveryV1Api, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { conformanceBinaries, conformanceImages, startCluster, type Cluster } from './cluster.ts';
import { entrypoint } from './kubelet/images.ts';
import { startLoadBalancers, type LoadBalancers } from './load-balancer.ts';
import { eventually } from './wait.ts';

const ECHO_IMAGE = 'registry.k8s.io/gateway-api/echo-basic:v1.5.1';

/** A Deployment of echo-basic as the suite's base manifests write it: POD_NAME and NAMESPACE from the downward API. */
function echoDeployment(namespace: string, name: string, replicas: number): V1Deployment {
  return {
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [{
            name,
            image: ECHO_IMAGE,
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              { name: 'NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              { name: 'SERVICE_NAME', value: name },
            ],
            ports: [{ containerPort: 3000 }],
          }],
        },
      },
    },
  };
}

/** GET on a new connection each time (no keep-alive), so a load balancer sees each request as a connection. */
function getJSON<T>(url: string): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as T });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 5 s`)));
    req.on('error', reject);
  });
}

function isReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function netnsOf(cluster: Cluster): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`wsgate-kubelet-${cluster.network.id}-`));
}

describe('a cluster of kube-apiserver, kube-controller-manager and the process kubelet', () => {
  let cluster: Cluster;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let discovery: DiscoveryV1Api;
  let lbs: LoadBalancers;
  const ns = `cluster-${randomBytes(3).toString('hex')}`;
  const scratch = mkdtempSync(join(tmpdir(), 'wsgate-cluster-test-'));

  before(async () => {
    const bins = conformanceBinaries();
    cluster = await startCluster({
      images: conformanceImages(bins, {
        // Test images: a program that fails at once, one that ignores SIGTERM (writing down that it got it), and one
        // that calls the API server with the credentials the pod was given.
        'wsgate.test/crash': entrypoint(['sh', '-c', 'echo crashing; exit 3']),
        'wsgate.test/ignore-term': entrypoint(['sh', '-c', 'trap "echo TERM >> $MARK" TERM; while :; do sleep 0.1; done']),
        'wsgate.test/in-cluster': entrypoint([process.execPath, join(import.meta.dirname, 'in-cluster-probe.ts')]),
        // wsgate itself, as the harness maps its image (test/conformance/run.ts).
        wsgate: entrypoint([process.execPath, join(import.meta.dirname, '..', '..', 'bin', 'wsgate.js')], { cmd: ['controller'] }),
      }),
    });
    const kc = cluster.kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    discovery = kc.makeApiClient(DiscoveryV1Api);
    lbs = startLoadBalancers(kc, cluster.network);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });

  after(async () => {
    await lbs?.stop();
    await cluster?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('registers a Ready Node whose InternalIP is the pod network bridge', async () => {
    const node = await core.readNode({ name: cluster.kubelet.nodeName });
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.deepEqual(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, cluster.network.hostIP);
  });

  it('runs a Deployment of echo-basic: Pods Ready with their own IPs, an EndpointSlice of them, echo-basic answering with its pod name and namespace, also through a LoadBalancer address', async () => {
    await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'echo' }, spec: { type: 'LoadBalancer', selector: { app: 'echo' }, ports: [{ name: 'http', port: 8080, targetPort: 3000 }] } },
    });
    await apps.createNamespacedDeployment({ namespace: ns, body: echoDeployment(ns, 'echo', 2) });

    const pods = await eventually('two echo Pods Running and Ready', async () => {
      const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=echo' });
      const ready = list.items.filter((p) => p.status?.phase === 'Running' && isReady(p) && !p.metadata?.deletionTimestamp);
      return ready.length === 2 ? ready : undefined;
    }, { timeoutMs: 60_000 });
    const ips = pods.map((p) => p.status?.podIP ?? '').sort();
    for (const p of pods) {
      assert.equal(p.spec?.nodeName, cluster.kubelet.nodeName, 'bound to the process kubelet node');
      assert.equal(p.status?.hostIP, cluster.network.hostIP);
      assert.deepEqual(p.status?.podIPs?.map((x) => x.ip), [p.status?.podIP]);
      assert.equal(p.status?.containerStatuses?.[0]?.ready, true);
    }
    assert.notEqual(ips[0], ips[1], 'each pod has its own IP');

    const slice = await eventually('an EndpointSlice for Service echo with both pod IPs, ready', async () => {
      const list = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=echo' });
      const s = list.items[0];
      const addrs = (s?.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses).sort();
      return list.items.length === 1 && JSON.stringify(addrs) === JSON.stringify(ips) ? s : undefined;
    }, { timeoutMs: 30_000 });
    assert.equal(slice?.metadata?.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
    assert.deepEqual(slice?.ports?.map((p) => p.port), [3000]);

    for (const p of pods) {
      const { status, body } = await getJSON<{ pod: string; namespace: string; service: string; path: string }>(`http://${p.status?.podIP}:3000/hello`);
      assert.equal(status, 200);
      assert.equal(body.pod, p.metadata?.name, 'POD_NAME from metadata.name');
      assert.equal(body.namespace, ns, 'NAMESPACE from metadata.namespace');
      assert.equal(body.service, 'echo');
      assert.equal(body.path, '/hello');
    }

    // The harness's load balancer: an address on the bridge in status.loadBalancer, forwarding to the endpoints.
    const lbIP = await eventually('status.loadBalancer.ingress of Service echo', async () => {
      const svc = await core.readNamespacedService({ name: 'echo', namespace: ns });
      return svc.status?.loadBalancer?.ingress?.[0]?.ip;
    }, { times: 1 });
    assert.equal(lbIP, lbs.addressOf(`${ns}/echo`));
    // Like a cloud load balancer, it learns endpoints a little after the EndpointSlice has them.
    await eventually('an answer through the load balancer', async () => (await getJSON(`http://${lbIP}:8080/`)).status === 200 ? true : undefined, { times: 2 });
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) {
      names.add((await getJSON<{ pod: string }>(`http://${lbIP}:8080/lb`)).body.pod);
    }
    assert.deepEqual([...names].sort(), pods.map((p) => p.metadata?.name ?? '').sort(), 'round robin over both pods');
  });

  it('stops a deleted Pod: its process and network namespace go, the EndpointSlice drops its IP, the Pod object is removed', async () => {
    const before = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=echo' })).items;
    assert.equal(netnsOf(cluster).length, 2);
    await apps.patchNamespacedDeploymentScale(
      { name: 'echo', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 1 }] },
    );
    const left = await eventually('one echo Pod left', async () => {
      const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=echo' });
      return list.items.length === 1 ? list.items[0] : undefined;
    }, { timeoutMs: 30_000 });
    const goneIP = before.map((p) => p.status?.podIP).find((ip) => ip !== left?.status?.podIP);
    await eventually('the EndpointSlice to hold only the remaining pod', async () => {
      const list = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: 'kubernetes.io/service-name=echo' });
      const addrs = (list.items[0]?.endpoints ?? []).flatMap((e) => e.addresses);
      return addrs.length === 1 && addrs[0] === left?.status?.podIP ? true : undefined;
    });
    assert.equal(netnsOf(cluster).length, 1, 'the deleted pod\'s network namespace is removed');
    await assert.rejects(getJSON(`http://${goneIP}:3000/`), 'nothing answers at the deleted pod\'s IP');
  });

  it('leaves a Pod whose image it cannot map Pending, saying so in its container status and a Warning Event', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'unmapped' }, spec: { containers: [{ name: 'c', image: 'example.invalid/nothing:1' }] } },
    });
    const pod = await eventually('the Pod to report ImageNotMapped', async () => {
      const p = await core.readNamespacedPod({ name: 'unmapped', namespace: ns });
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImageNotMapped' ? p : undefined;
    }, { times: 1 });
    assert.equal(pod.status?.phase, 'Pending');
    assert.match(pod.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '', /example\.invalid\/nothing:1/);
    await eventually('a Warning Event ImageNotMapped', async () => {
      const events = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=unmapped' });
      return events.items.some((e) => e.reason === 'ImageNotMapped' && e.type === 'Warning') ? true : undefined;
    }, { times: 1 });
  });

  it('restarts a container that exits, counting restarts and keeping the last termination', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'crash' }, spec: { containers: [{ name: 'c', image: 'wsgate.test/crash' }] } },
    });
    const pod = await eventually('two restarts', async () => {
      const p = await core.readNamespacedPod({ name: 'crash', namespace: ns });
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2 ? p : undefined;
    }, { timeoutMs: 30_000, times: 1 });
    const cs = pod.status?.containerStatuses?.[0];
    assert.equal(cs?.lastState?.terminated?.exitCode, 3);
    assert.equal(cs?.ready, false);
    assert.equal(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
  });

  it('gives a Pod that ignores SIGTERM its grace period, then kills it, and only then removes the Pod object', async () => {
    const mark = join(scratch, 'term');
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'stubborn' },
        spec: { terminationGracePeriodSeconds: 2, containers: [{ name: 'c', image: 'wsgate.test/ignore-term', env: [{ name: 'MARK', value: mark }] }] },
      },
    });
    const running = await eventually('the stubborn Pod Ready', async () => {
      const p = await core.readNamespacedPod({ name: 'stubborn', namespace: ns });
      return isReady(p) ? p : undefined;
    }, { timeoutMs: 30_000, times: 1 });
    const pid = Number((running.status?.containerStatuses?.[0]?.containerID ?? '').replace('process://', ''));
    assert.ok(pid > 0);
    await core.deleteNamespacedPod({ name: 'stubborn', namespace: ns });
    await eventually('the Pod object removed', async () => {
      const list = await core.listNamespacedPod({ namespace: ns, fieldSelector: 'metadata.name=stubborn' });
      return list.items.length === 0 ? true : undefined;
    }, { timeoutMs: 20_000, times: 1 });
    assert.match(readFileSync(mark, 'utf8'), /TERM/, 'SIGTERM was delivered first');
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the process was killed');
  });

  it('runs wsgate in a Pod: the sidecar beside echo-basic shares its network, is Ready by its /readyz probe, and carries a WebSocket to it', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'sidecar' },
        spec: {
          containers: [
            { name: 'app', image: ECHO_IMAGE, env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] },
            {
              name: 'wsgate',
              image: 'wsgate:0.1.0',
              args: ['sidecar', '--upstream', '127.0.0.1:3000', '--listen', '0.0.0.0:8800', '--admin-addr', '0.0.0.0:9800'],
              ports: [{ name: 'wsgate', containerPort: 8800 }, { name: 'admin', containerPort: 9800 }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'admin' } },
            },
          ],
        },
      },
    });
    const pod = await eventually('the sidecar Pod Ready', async () => {
      const p = await core.readNamespacedPod({ name: 'sidecar', namespace: ns });
      return isReady(p) ? p : undefined;
    }, { timeoutMs: 30_000, times: 1 });
    assert.deepEqual(pod.status?.containerStatuses?.map((c) => [c.name, c.ready]), [['app', true], ['wsgate', true]]);
    // echo-basic's /ws echoes frames back; through wsgate on the pod IP.
    const ws = new WebSocket(`ws://${pod.status?.podIP}:8800/ws`, { origin: 'http://test', handshakeTimeout: 5000 });
    const reply = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('through wsgate'));
      ws.once('message', (data: Buffer) => resolve(data.toString()));
      ws.once('error', reject);
    }).finally(() => ws.terminate());
    assert.equal(reply, 'through wsgate');
  });

  it('gives Pods the in-cluster credentials: a service-account token and CA at the standard path, and the API server address', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: 'in-cluster' }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'wsgate.test/in-cluster' }] } },
    });
    const pod = await eventually('the in-cluster probe to finish', async () => {
      const p = await core.readNamespacedPod({ name: 'in-cluster', namespace: ns });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    }, { timeoutMs: 30_000, times: 1 });
    const log = cluster.kubelet.logPath(ns, 'in-cluster', 'c');
    const output = log !== undefined && existsSync(log) ? readFileSync(log, 'utf8') : '(no log)';
    assert.equal(pod.status?.phase, 'Succeeded', output);
    // The default ServiceAccount may not read Pods: a 403 that names it proves the token was accepted.
    assert.match(output, new RegExp(`HTTP 403 .*system:serviceaccount:${ns}:default`));
  });
});
