// A whole test cluster on one machine, for the Gateway API conformance harness and the tests of the process
// kubelet: etcd + kube-apiserver (test/helpers/kube.ts) + kube-controller-manager + the process kubelet
// (kubelet/kubelet.ts, a test fixture), with pods in network namespaces on a bridge (kubelet/network.ts).
//
// The API server listens on the bridge's address (not loopback), so that pods reach it; kube-controller-manager runs
// the controllers that make Deployments into Pods and Services into EndpointSlices (see CONTROLLERS).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, CoreV1Api, KubernetesObjectApi, loadAllYaml, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { entrypoint, placeholder, type ImageCommand, type ImageMap } from './kubelet/images.ts';
import { startProcessKubelet, type ProcessKubelet } from './kubelet/kubelet.ts';
import { createPodNetwork, type PodNetwork } from './kubelet/network.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The kube-controller-manager controllers this cluster runs, and why:
 * - deployment, replicaset: Deployments → ReplicaSets → Pods (the suite's backends; wsgate's proxies if provisioned);
 * - endpointslice: Services + Pod IPs → EndpointSlices, which wsgate reads;
 * - serviceaccount, serviceaccount-token, root-ca-certificate-publisher: the `default` ServiceAccount and the
 *   `kube-root-ca.crt` ConfigMap in every namespace, without which the ServiceAccount admission plugin refuses Pods
 *   and the kube-api-access projected volume cannot be filled;
 * - namespace, garbage-collector, pod-garbage-collector: the suite deletes its namespaces and Deployments after each
 *   test; without these they would stay Terminating and their Pods would live on.
 * Not run: endpoints and endpointslice-mirroring (nothing here reads core/v1 Endpoints), node-lifecycle (the process
 * kubelet posts no heartbeats), and the rest (jobs, cronjobs, statefulsets, daemonsets, HPA, nodeipam, ...).
 */
export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'endpointslice-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'pod-garbage-collector-controller',
];

export interface ConformanceBinaries {
  readonly kubeControllerManager: string;
  readonly echoBasic: string;
  readonly conformance: string;
  readonly gatewayAPIVersion: string;
}

function parseEnv(path: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*?)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) env.set(m[1], m[2]);
  }
  return env;
}

/** Where scripts/k8s/build.sh and scripts/conformance/build.sh cache their binaries (WSGATE_* variables override). */
export function conformanceBinaries(): ConformanceBinaries {
  const cache = process.env.WSGATE_CACHE ?? join(homedir(), '.cache', 'wsgate');
  const kube = parseEnv(join(repoRoot, 'scripts', 'k8s', 'versions.env')).get('KUBE_VERSION') ?? '';
  const gw = parseEnv(join(repoRoot, 'scripts', 'conformance', 'versions.env')).get('GATEWAY_API_VERSION') ?? '';
  return {
    kubeControllerManager: process.env.WSGATE_KUBE_CONTROLLER_MANAGER ?? join(cache, 'k8s', kube, 'kube-controller-manager'),
    echoBasic: process.env.WSGATE_ECHO_BASIC ?? join(cache, 'gateway-api', gw, 'echo-basic'),
    conformance: process.env.WSGATE_CONFORMANCE_TEST ?? join(cache, 'gateway-api', gw, 'conformance.test'),
    gatewayAPIVersion: gw,
  };
}

/** Fails with the command that builds a missing binary. */
export function requireBinaries(b: ConformanceBinaries, which: readonly ('kubeControllerManager' | 'echoBasic' | 'conformance')[]): void {
  const how = {
    kubeControllerManager: 'scripts/k8s/build.sh kube-controller-manager',
    echoBasic: 'scripts/conformance/build.sh echo-basic',
    conformance: 'scripts/conformance/build.sh conformance',
  };
  for (const w of which) if (!existsSync(b[w])) throw new Error(`${b[w]} not found: run ${how[w]}`);
}

/**
 * The image map of the conformance suite: its echo-basic images run the echo-basic binary; its coredns Deployment
 * (behind the UDPRoute tests, which wsgate does not claim) only has to be Ready, so it runs a placeholder.
 */
export function conformanceImages(b: ConformanceBinaries, extra: Readonly<Record<string, ImageCommand>> = {}): ImageMap {
  return new Map<string, ImageCommand>([
    ['registry.k8s.io/gateway-api/echo-basic', entrypoint([b.echoBasic])],
    ['gcr.io/k8s-staging-gateway-api/echo-basic', entrypoint([b.echoBasic])],
    ['registry.k8s.io/coredns/coredns', placeholder()],
    ...Object.entries(extra),
  ]);
}

export interface ClusterOptions {
  /** [images=conformanceImages()] What the process kubelet runs for each image. */
  readonly images?: ImageMap;
  /** [prefix=26] The pod network's size: /26 (61 addresses) or /25 (125). */
  readonly prefix?: 25 | 26;
  /** Install the Gateway API CRDs vendored in charts/wsgate/crds-gateway-api/. */
  readonly gatewayAPI?: boolean;
  /** Diagnostics of the process kubelet, one line each. */
  readonly log?: (line: string) => void;
}

export interface Cluster {
  readonly controlPlane: ControlPlane;
  readonly network: PodNetwork;
  readonly kubelet: ProcessKubelet;
  readonly kubeconfigPath: string;
  kubeConfig(): KubeConfig;
  /** The last lines of every process's log. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export async function startCluster(o: ClusterOptions = {}): Promise<Cluster> {
  const bins = conformanceBinaries();
  requireBinaries(bins, ['kubeControllerManager', 'echoBasic']);
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-cluster-'));
  const network = createPodNetwork({ prefix: o.prefix ?? 26 });
  let controlPlane: ControlPlane | undefined;
  let kcm: ChildProcess | undefined;
  let kubelet: ProcessKubelet | undefined;
  const kcmLog = join(dir, 'kube-controller-manager.log');
  const logTail = (lines = 40): string => {
    const own = existsSync(kcmLog) ? readFileSync(kcmLog, 'utf8').split('\n').slice(-lines - 1).join('\n') : '';
    return `${controlPlane?.logTail(lines) ?? ''}\n--- kube-controller-manager (${kcmLog}), last ${lines} lines ---\n${own}`;
  };
  const stop = async (): Promise<void> => {
    await kubelet?.stop();
    if (kcm && kcm.exitCode === null && kcm.signalCode === null) {
      const exited = new Promise((resolve) => kcm?.once('exit', resolve));
      kcm.kill('SIGTERM');
      const t = setTimeout(() => kcm?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await controlPlane?.stop();
    network.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    controlPlane = await startControlPlane({ crds: false, address: network.hostIP });
    const kc = controlPlane.kubeConfig();
    const caPath = join(dir, 'ca.crt');
    writeFileSync(caPath, controlPlane.caPem);
    kcm = startKcm(bins.kubeControllerManager, controlPlane, caPath, kcmLog);
    // kcm serves no port here (--secure-port=0): it is up once its serviceaccount controller has made `default`.
    await until('kube-controller-manager (the default ServiceAccount)', 60_000, logTail, kcm, async () => {
      await kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
      return true;
    });
    if (o.gatewayAPI) await installGatewayAPI(kc);
    const port = new URL(controlPlane.server).port;
    kubelet = await startProcessKubelet({
      kc,
      network,
      images: o.images ?? conformanceImages(bins),
      apiServer: { host: network.hostIP, port },
      log: o.log,
    });
    const cp = controlPlane;
    return {
      controlPlane: cp,
      network,
      kubelet,
      kubeconfigPath: cp.kubeconfigPath,
      kubeConfig: () => cp.kubeConfig(),
      logTail,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

function startKcm(bin: string, cp: ControlPlane, caPath: string, logPath: string): ChildProcess {
  const args = [
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--controllers=${CONTROLLERS.join(',')}`,
    // The serviceaccount-token controller signs legacy token Secrets with it; the root-ca publisher copies the CA.
    `--service-account-private-key-file=${cp.serviceAccountKeyPath}`,
    `--root-ca-file=${caPath}`,
    // Every controller acts as the admin of the kubeconfig: no per-controller ServiceAccounts to bootstrap.
    '--use-service-account-credentials=false',
    '--leader-elect=false',
    // No serving port: nothing scrapes it, and a fixed default port (10257) would collide between parallel runs.
    '--secure-port=0',
    '--kube-api-qps=200',
    '--kube-api-burst=400',
  ];
  const fd = openSync(logPath, 'a');
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

async function until(what: string, timeoutMs: number, logTail: () => string, proc: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'not ready';
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${what}: the process exited (${proc.exitCode ?? proc.signalCode})\n${logTail()}`);
    try {
      if (await ready()) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms (${last})\n${logTail()}`);
    await sleep(200);
  }
}

/** The vendored Gateway API release: charts/wsgate/crds-gateway-api/ (standard channel). */
export const GATEWAY_API_CRDS = join(repoRoot, 'charts', 'wsgate', 'crds-gateway-api');

/** Creates every object of the vendored Gateway API files and waits for each CRD to be Established and listable. */
export async function installGatewayAPI(kc: KubeConfig, timeoutMs = 60_000): Promise<void> {
  const objects = readdirSync(GATEWAY_API_CRDS)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => loadAllYaml(readFileSync(join(GATEWAY_API_CRDS, f), 'utf8')) as KubernetesObject[]);
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objects) await client.create(obj);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (const obj of objects.filter((x) => x.kind === 'CustomResourceDefinition')) {
    const name = obj.metadata?.name ?? '';
    for (;;) {
      const crd = await ext.readCustomResourceDefinition({ name });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}
