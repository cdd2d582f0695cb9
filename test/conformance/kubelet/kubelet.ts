// TEST FIXTURE — never ships; no code under src/ knows it exists.
//
// The process kubelet: a kubelet for tests that runs local programs instead of container images. It gives a real
// kube-apiserver and kube-controller-manager a Node whose Pods really run, so that Deployments, ReplicaSets,
// EndpointSlices and the Gateway API conformance suite's backends behave as in a cluster, without a container
// runtime, an image registry or a scheduler.
//
// - It registers one Ready Node (InternalIP: the pod network's bridge address) and binds to it every Pod that has no
//   nodeName (and the default scheduler): there is no scheduler.
// - For each Pod of its Node it makes a network namespace with its own IP on the bridge (network.ts) and starts, per
//   container, the program that the image map (images.ts) gives for its image, with the environment the Pod spec asks
//   for (downward-API fieldRefs, Secret and ConfigMap keys: pod-spec.ts) and its volumes mounted (sandbox.ts). Init
//   containers run first, one by one, to completion.
// - It writes Pod status: phase, podIP(s), hostIP(s), startTime, containerStatuses (state, lastState, restartCount,
//   ready) and the PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady and Ready conditions. A
//   container is ready when its readinessProbe (httpGet, tcpSocket or exec) passes; without one, when its process is
//   up and every TCP port it declares accepts a connection.
// - A container that exits is restarted (restartPolicy Always, or OnFailure after a failure) after a backoff of
//   0.5 s doubling to 10 s (a real kubelet: 10 s to 5 min), reset after 10 s of running.
// - A Pod being deleted gets its preStop hooks (exec or sleep), SIGTERM, and SIGKILL once its grace period
//   (deletionGracePeriodSeconds, else terminationGracePeriodSeconds, else 30 s) has passed since the deletion began;
//   then its namespace is removed and the kubelet deletes the Pod object for good (grace 0), as a kubelet does.
// - An image with no entry in the map leaves the Pod Pending: the container waits with reason `ImageNotMapped` and a
//   message naming the image, and a Warning Event says the same.
//
// What it does not do: securityContext (every program runs as root, which the pod's own network namespace makes
// harmless: it may bind 80 and 443 there; root is also what its mounts need), cgroups and resource limits, liveness
// and startup probes (readiness only), image pulls, hostPath volumes, subPath mounts, service environment variables
// other than KUBERNETES_SERVICE_* (which name the API server's real address: no kube-proxy here makes the ClusterIP
// reachable), node heartbeats (no node-lifecycle controller runs), ephemeral containers. Probes run every
// `probePeriodMs` (500 ms) whatever their periodSeconds.
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  Watch,
  type KubeConfig,
  type V1Container,
  type V1ContainerState,
  type V1ContainerStatus,
  type V1Node,
  type V1Pod,
  type V1PodCondition,
  type V1PodStatus,
  type V1Probe,
} from '@kubernetes/client-node';
import { lookupImage, type ImageMap } from './images.ts';
import type { PodInterface, PodNetwork } from './network.ts';
import { containerEnv, expand, materializeVolumes, type PodAddresses } from './pod-spec.ts';
import { execInPod, startInSandbox, type Mount } from './sandbox.ts';

export interface KubeletOptions {
  readonly kc: KubeConfig;
  readonly network: PodNetwork;
  readonly images: ImageMap;
  /** Where pods reach the API server (the network's bridge address and the secure port). */
  readonly apiServer: { host: string; port: string };
  /** [nodeName=`process-kubelet-<network id>`] */
  readonly nodeName?: string;
  /** [probePeriodMs=500] How often readiness is evaluated. */
  readonly probePeriodMs?: number;
  /** Diagnostics, one line each; silent by default. */
  readonly log?: (line: string) => void;
}

export interface ProcessKubelet {
  readonly nodeName: string;
  /** The log file of a container (stdout and stderr, all restarts), for failure messages. */
  logPath(namespace: string, pod: string, container: string): string | undefined;
  /** Kills every pod's processes (SIGTERM, SIGKILL after 2 s) and removes their namespaces; no API calls. */
  stop(): Promise<void>;
}

const KUBELET_VERSION = 'v1.37.2';
const MAX_BACKOFF_MS = 10_000;

export async function startProcessKubelet(o: KubeletOptions): Promise<ProcessKubelet> {
  const api = o.kc.makeApiClient(CoreV1Api);
  const nodeName = o.nodeName ?? `process-kubelet-${o.network.id}`;
  const log = o.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-kubelet-'));
  const workers = new Map<string, PodWorker>();
  const binding = new Set<string>();
  let stopped = false;
  let abort: AbortController | undefined;

  await registerNode(api, nodeName, o.network.hostIP);
  const ctx: WorkerContext = { api, nodeName, network: o.network, images: o.images, apiServer: o.apiServer, dir, log, probePeriodMs: o.probePeriodMs ?? 500 };

  const handle = (pod: V1Pod): void => {
    const uid = pod.metadata?.uid ?? '';
    const node = pod.spec?.nodeName;
    if (!node) {
      const scheduler = pod.spec?.schedulerName ?? 'default-scheduler';
      if (scheduler === 'default-scheduler' && !pod.metadata?.deletionTimestamp && !binding.has(uid)) {
        binding.add(uid);
        void bind(api, pod, nodeName).then(
          () => log(`bound ${key(pod)} to ${nodeName}`),
          (err: unknown) => { binding.delete(uid); log(`binding ${key(pod)} failed: ${String(err)}`); },
        );
      }
      return;
    }
    if (node !== nodeName) return;
    binding.delete(uid);
    let w = workers.get(uid);
    if (w === undefined) {
      if (pod.metadata?.deletionTimestamp && pod.status?.phase !== 'Running' && pod.status?.podIP === undefined) {
        // Deleted before it ever started here: nothing to stop.
        void finalDelete(api, pod, log);
        return;
      }
      w = new PodWorker(ctx, pod, () => workers.delete(uid));
      workers.set(uid, w);
    }
    w.update(pod);
  };
  const gone = (pod: V1Pod): void => {
    const w = workers.get(pod.metadata?.uid ?? '');
    if (w !== undefined) void w.kill(0);
  };

  // List, then watch from the list's resourceVersion; any error or end of the watch relists after 500 ms.
  const watchLoop = async (): Promise<void> => {
    while (!stopped) {
      try {
        const list = await api.listPodForAllNamespaces();
        const seen = new Set<string>();
        for (const p of list.items) {
          seen.add(p.metadata?.uid ?? '');
          handle(p);
        }
        for (const [uid, w] of workers) if (!seen.has(uid)) void w.kill(0);
        const ended = new Promise<void>((resolve) => {
          void new Watch(o.kc).watch(
            '/api/v1/pods',
            { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
            (type: string, obj: V1Pod) => {
              if (type === 'ADDED' || type === 'MODIFIED') handle(obj);
              else if (type === 'DELETED') gone(obj);
            },
            () => resolve(),
          ).then((a) => { abort = a; }, () => resolve());
        });
        await ended;
      } catch (err) {
        if (!stopped) log(`pod list failed: ${String(err)}`);
      }
      if (!stopped) await sleep(500);
    }
  };
  void watchLoop();

  return {
    nodeName,
    logPath(namespace, pod, container) {
      for (const w of workers.values()) if (w.namespace === namespace && w.name === pod) return w.logPath(container);
      return undefined;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      abort?.abort();
      await Promise.all([...workers.values()].map((w) => w.kill(2)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function key(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

async function registerNode(api: CoreV1Api, name: string, hostIP: string): Promise<void> {
  const node: V1Node = {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' } },
    spec: {},
  };
  await api.createNode({ body: node });
  const created = await api.readNode({ name });
  const now = new Date();
  const capacity = { cpu: '2', memory: '24Gi', pods: '250', 'ephemeral-storage': '100Gi' };
  created.status = {
    capacity,
    allocatable: capacity,
    addresses: [{ type: 'InternalIP', address: hostIP }, { type: 'Hostname', address: name }],
    conditions: [
      { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'process kubelet', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'process kubelet', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'process kubelet', lastHeartbeatTime: now, lastTransitionTime: now },
      { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'process kubelet (a test fixture) is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now },
    ],
    nodeInfo: {
      machineID: name, systemUUID: name, bootID: name, kernelVersion: 'host', osImage: 'process kubelet (test fixture)',
      containerRuntimeVersion: 'process://0', kubeletVersion: KUBELET_VERSION, kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64',
    },
  };
  await api.replaceNodeStatus({ name, body: created });
}

async function bind(api: CoreV1Api, pod: V1Pod, nodeName: string): Promise<void> {
  await api.createNamespacedBinding({
    namespace: pod.metadata?.namespace ?? 'default',
    body: { metadata: { name: pod.metadata?.name ?? '', uid: pod.metadata?.uid }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
  });
}

/** The kubelet's last word on a terminated pod: delete it for good (grace 0, only this uid). */
async function finalDelete(api: CoreV1Api, pod: V1Pod, log: (l: string) => void): Promise<void> {
  try {
    await api.deleteNamespacedPod({
      name: pod.metadata?.name ?? '',
      namespace: pod.metadata?.namespace ?? 'default',
      gracePeriodSeconds: 0,
      // In DeleteOptions too: with the query parameter alone (client-node 2.0.1) the Pod stayed, Terminating.
      body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
    });
  } catch (err) {
    const code = (err as { code?: number }).code;
    // 404: already gone (a second delete raced this one); 409: another pod of that name (uid precondition).
    if (code !== 404 && code !== 409) log(`final delete of ${key(pod)} failed: ${String(err)}`);
  }
}

interface WorkerContext {
  readonly api: CoreV1Api;
  readonly nodeName: string;
  readonly network: PodNetwork;
  readonly images: ImageMap;
  readonly apiServer: { host: string; port: string };
  readonly dir: string;
  readonly log: (line: string) => void;
  readonly probePeriodMs: number;
}

/** One container's process, restarts and readiness. */
class ContainerRunner {
  readonly spec: V1Container;
  readonly init: boolean;
  child: ChildProcess | undefined;
  state: V1ContainerState = { waiting: { reason: 'ContainerCreating' } };
  lastState: V1ContainerState = {};
  restartCount = 0;
  backoffIndex = 0;
  ready = false;
  /** Consecutive probe results, for failureThreshold/successThreshold. */
  failures = 0;
  successes = 0;
  startedAtMs = 0;
  exited: Promise<void> = Promise.resolve();
  restartTimer: NodeJS.Timeout | undefined;

  constructor(spec: V1Container, init: boolean) {
    this.spec = spec;
    this.init = init;
  }

  get running(): boolean {
    return this.state.running !== undefined;
  }
}

class PodWorker {
  readonly namespace: string;
  readonly name: string;
  private pod: V1Pod;
  private readonly ctx: WorkerContext;
  private readonly onGone: () => void;
  private readonly dir: string;
  private sandbox: PodInterface | undefined;
  private addresses: PodAddresses | undefined;
  private mounts = new Map<string, string>();
  private envs = new Map<string, Record<string, string>>();
  private readonly containers: ContainerRunner[];
  private readonly initContainers: ContainerRunner[];
  private started = false;
  private initialized = false;
  private terminating = false;
  private killed = false;
  private startTime: Date | undefined;
  private pendingReason: { reason: string; message: string } | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private statusDirty = false;
  private statusWriting = false;
  private lastWritten = '';
  private readonly transitions = new Map<string, { status: string; at: Date }>();

  constructor(ctx: WorkerContext, pod: V1Pod, onGone: () => void) {
    this.ctx = ctx;
    this.pod = pod;
    this.onGone = onGone;
    this.namespace = pod.metadata?.namespace ?? 'default';
    this.name = pod.metadata?.name ?? '';
    this.dir = join(ctx.dir, `${this.namespace}_${this.name}_${pod.metadata?.uid ?? ''}`);
    mkdirSync(this.dir, { recursive: true });
    this.initContainers = (pod.spec?.initContainers ?? []).map((c) => new ContainerRunner(c, true));
    this.containers = (pod.spec?.containers ?? []).map((c) => new ContainerRunner(c, false));
  }

  logPath(container: string): string {
    return join(this.dir, `${container}.log`);
  }

  update(pod: V1Pod): void {
    this.pod = pod;
    if (pod.metadata?.deletionTimestamp) {
      if (!this.terminating) this.terminate().catch((err: unknown) => this.log(`termination failed: ${String(err)}`));
      return;
    }
    if (!this.started) {
      this.started = true;
      void this.start();
    }
  }

  private log(line: string): void {
    this.ctx.log(`${this.namespace}/${this.name}: ${line}`);
  }

  private async start(): Promise<void> {
    const unmapped = [...this.initContainers, ...this.containers].filter((c) => lookupImage(this.ctx.images, c.spec.image ?? '') === undefined);
    if (unmapped.length > 0) {
      for (const c of unmapped) {
        const message = `the process kubelet (a test fixture) has no command for image ${c.spec.image ?? '(none)'}; add it to its image map`;
        c.state = { waiting: { reason: 'ImageNotMapped', message } };
        void this.event('ImageNotMapped', message);
      }
      this.pendingReason = { reason: 'ImageNotMapped', message: `no command for image ${unmapped.map((c) => c.spec.image ?? '').join(', ')}` };
      this.markStatus();
      return;
    }
    this.sandbox = this.ctx.network.addPod();
    this.startTime = new Date();
    this.addresses = { podIP: this.sandbox.ip, hostIP: this.ctx.network.hostIP, apiServer: this.ctx.apiServer };
    this.log(`sandbox ${this.sandbox.netns} at ${this.sandbox.ip}`);
    this.markStatus();
    // Volumes and environments can name Secrets and ConfigMaps that do not exist yet: retry, as a kubelet does.
    for (let attempt = 0; !this.terminating; attempt++) {
      try {
        this.mounts = await materializeVolumes(this.ctx.api, this.pod, join(this.dir, 'volumes'), this.addresses);
        for (const c of [...this.initContainers, ...this.containers]) {
          this.envs.set(c.spec.name, await containerEnv(this.ctx.api, this.pod, c.spec, this.addresses));
        }
        break;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        for (const c of [...this.initContainers, ...this.containers]) c.state = { waiting: { reason: 'CreateContainerConfigError', message } };
        if (attempt === 0) void this.event('FailedMount', message);
        this.markStatus();
        await sleep(1000);
      }
    }
    for (const c of this.initContainers) {
      while (!this.terminating) {
        this.run(c);
        await c.exited;
        if (c.state.terminated?.exitCode === 0) break;
        await sleep(backoffMs(c.restartCount++));
      }
    }
    if (this.terminating) return;
    this.initialized = true;
    for (const c of this.containers) this.run(c);
    this.probeTimer = setInterval(() => void this.probeAll(), this.ctx.probePeriodMs);
    this.markStatus();
  }

  /** Starts the container's process once; its exit restarts it per the pod's restartPolicy. */
  private run(c: ContainerRunner): void {
    const command = lookupImage(this.ctx.images, c.spec.image ?? '')!;
    const argv0 = command(c.spec);
    const env = this.envs.get(c.spec.name) ?? {};
    if (!Array.isArray(argv0)) {
      c.state = { waiting: { reason: 'CommandNotMapped', message: (argv0 as { error: string }).error } };
      this.markStatus();
      return;
    }
    const argv = (argv0 as readonly string[]).map((a) => expand(a, env));
    let mounts: Mount[];
    try {
      mounts = (c.spec.volumeMounts ?? []).map((m) => {
        if (m.subPath) throw new Error(`volumeMount ${m.name}: subPath is not supported by the process kubelet`);
        const hostPath = this.mounts.get(m.name);
        if (hostPath === undefined) throw new Error(`volumeMount ${m.name}: no such volume`);
        return { hostPath, mountPath: m.mountPath, readOnly: m.readOnly ?? false };
      });
    } catch (err) {
      c.state = { waiting: { reason: 'CreateContainerError', message: err instanceof Error ? err.message : String(err) } };
      this.markStatus();
      return;
    }
    const child = startInSandbox({
      netns: this.sandbox!.netns,
      argv,
      env,
      mounts,
      hostname: this.name.slice(0, 63),
      workingDir: c.spec.workingDir ?? this.dir,
      dir: join(this.dir, 'containers', c.spec.name),
      logPath: this.logPath(c.spec.name),
    });
    c.child = child;
    c.startedAtMs = Date.now();
    c.ready = false;
    c.failures = 0;
    c.successes = 0;
    c.state = { running: { startedAt: new Date() } };
    this.log(`started ${c.spec.name} (pid ${child.pid ?? '?'}): ${argv.join(' ')}`);
    c.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        const startedAt = c.state.running?.startedAt;
        c.state = {
          terminated: {
            exitCode: code ?? 128 + signalNumber(signal),
            ...(signal ? { signal: signalNumber(signal) } : {}),
            reason: code === 0 ? 'Completed' : 'Error',
            startedAt,
            finishedAt: new Date(),
          },
        };
        c.child = undefined;
        c.ready = false;
        this.log(`${c.spec.name} exited (${signal ?? `code ${code}`})`);
        resolve();
        if (!c.init) this.afterExit(c);
        this.markStatus();
      };
      child.once('exit', done);
      child.once('error', (err) => { this.log(`${c.spec.name}: ${err.message}`); done(127, null); });
    });
    this.markStatus();
  }

  private afterExit(c: ContainerRunner): void {
    if (this.terminating) return;
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const failed = (c.state.terminated?.exitCode ?? 1) !== 0;
    if (policy === 'Never' || (policy === 'OnFailure' && !failed)) return;
    // A container that ran for 10 s starts its backoff over.
    if (Date.now() - c.startedAtMs > 10_000) c.backoffIndex = 0;
    const delay = backoffMs(c.backoffIndex++);
    c.lastState = c.state;
    c.state = { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${delay} ms restarting failed container ${c.spec.name}` } };
    c.restartTimer = setTimeout(() => {
      c.restartTimer = undefined;
      if (this.terminating) return;
      c.restartCount++;
      this.run(c);
    }, delay);
  }

  private async probeAll(): Promise<void> {
    if (this.terminating || this.sandbox === undefined) return;
    let changed = false;
    for (const c of this.containers) {
      const before = c.ready;
      if (!c.running) {
        c.ready = false;
      } else {
        const probe = c.spec.readinessProbe;
        if (probe && Date.now() - c.startedAtMs < (probe.initialDelaySeconds ?? 0) * 1000) {
          c.ready = false;
        } else {
          const ok = await this.probe(c, probe);
          if (ok) {
            c.failures = 0;
            if (++c.successes >= (probe?.successThreshold ?? 1)) c.ready = true;
          } else {
            c.successes = 0;
            if (!before || ++c.failures >= (probe?.failureThreshold ?? 3)) c.ready = false;
          }
        }
      }
      if (c.ready !== before) changed = true;
    }
    if (changed) this.markStatus();
  }

  private async probe(c: ContainerRunner, probe: V1Probe | undefined): Promise<boolean> {
    const ip = this.sandbox!.ip;
    const timeoutMs = (probe?.timeoutSeconds ?? 1) * 1000;
    const port = (p: number | string | undefined): number => {
      if (typeof p === 'number') return p;
      const named = c.spec.ports?.find((x) => x.name === p);
      return named?.containerPort ?? Number(p);
    };
    if (probe?.httpGet) {
      const g = probe.httpGet;
      return httpProbe(g.scheme === 'HTTPS', g.host ?? ip, port(g.port), g.path ?? '/', Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value])), timeoutMs);
    }
    if (probe?.tcpSocket) return tcpProbe(probe.tcpSocket.host ?? ip, port(probe.tcpSocket.port), timeoutMs);
    if (probe?.exec) return (await execInPod(this.sandbox!.netns, probe.exec.command ?? [], this.envs.get(c.spec.name) ?? {}, timeoutMs)) === 0;
    const ports = (c.spec.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
    for (const p of ports) if (!(await tcpProbe(ip, p.containerPort, timeoutMs))) return false;
    return true;
  }

  /** Graceful stop of a pod being deleted: preStop, SIGTERM, SIGKILL at the end of the grace period; then delete it. */
  private async terminate(): Promise<void> {
    this.terminating = true;
    const graceS = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    this.log(`terminating, grace ${graceS} s`);
    await this.kill(graceS);
    await finalDelete(this.ctx.api, this.pod, this.ctx.log);
  }

  /** Stops every process (preStop hooks first when graceS > 0), removes the sandbox; idempotent. */
  async kill(graceS: number): Promise<void> {
    this.terminating = true;
    if (this.killed) return;
    this.killed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    const deadline = Date.now() + graceS * 1000;
    const all = [...this.initContainers, ...this.containers];
    for (const c of all) if (c.restartTimer) clearTimeout(c.restartTimer);
    await Promise.all(all.map(async (c) => {
      if (c.child === undefined) return;
      const child = c.child;
      if (graceS > 0) await this.preStop(c, deadline);
      child.kill(graceS > 0 ? 'SIGTERM' : 'SIGKILL');
      const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
      await c.exited;
      clearTimeout(timer);
    }));
    if (this.sandbox) this.ctx.network.removePod(this.sandbox);
    this.sandbox = undefined;
    rmSync(this.dir, { recursive: true, force: true });
    this.onGone();
  }

  private async preStop(c: ContainerRunner, deadline: number): Promise<void> {
    const hook = c.spec.lifecycle?.preStop;
    if (hook === undefined) return;
    const left = deadline - Date.now();
    if (hook.sleep) await sleep(Math.min(left, hook.sleep.seconds * 1000));
    else if (hook.exec?.command && this.sandbox) await execInPod(this.sandbox.netns, hook.exec.command, this.envs.get(c.spec.name) ?? {}, left);
  }

  private async event(reason: string, message: string): Promise<void> {
    const now = new Date();
    try {
      await this.ctx.api.createNamespacedEvent({
        namespace: this.namespace,
        body: {
          metadata: { generateName: `${this.name}.`, namespace: this.namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', name: this.name, namespace: this.namespace, uid: this.pod.metadata?.uid },
          reason,
          message,
          type: 'Warning',
          source: { component: 'process-kubelet', host: this.ctx.nodeName },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log(`event ${reason} not written: ${String(err)}`);
    }
  }

  private condition(type: string, ok: boolean, reason?: string, message?: string): V1PodCondition {
    const status = ok ? 'True' : 'False';
    const prev = this.transitions.get(type);
    const at = prev !== undefined && prev.status === status ? prev.at : new Date();
    this.transitions.set(type, { status, at });
    return { type, status, lastTransitionTime: at, ...(reason ? { reason } : {}), ...(message ? { message } : {}) };
  }

  private containerStatus(c: ContainerRunner): V1ContainerStatus {
    return {
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: '',
      containerID: c.child?.pid === undefined ? undefined : `process://${c.child.pid}`,
      ready: c.ready,
      started: c.running,
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState,
    };
  }

  private status(): V1PodStatus {
    const notReady = this.containers.filter((c) => !c.ready).map((c) => c.spec.name);
    const allReady = this.initialized && notReady.length === 0;
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const allDone = this.containers.every((c) => c.state.terminated !== undefined);
    const phase = this.sandbox === undefined || !this.initialized
      ? 'Pending'
      : policy !== 'Always' && allDone
        ? (this.containers.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed')
        : 'Running';
    const notReadyMsg = notReady.length > 0 ? `containers with unready status: [${notReady.join(' ')}]` : undefined;
    const ips = this.addresses === undefined ? {} : {
      hostIP: this.addresses.hostIP, hostIPs: [{ ip: this.addresses.hostIP }],
      podIP: this.addresses.podIP, podIPs: [{ ip: this.addresses.podIP }],
    };
    return {
      phase,
      ...(this.pendingReason && phase === 'Pending' ? { reason: this.pendingReason.reason, message: this.pendingReason.message } : {}),
      conditions: [
        this.condition('PodReadyToStartContainers', this.sandbox !== undefined),
        this.condition('Initialized', this.initialized, this.initialized ? undefined : 'ContainersNotInitialized'),
        this.condition('Ready', allReady, allReady ? undefined : 'ContainersNotReady', notReadyMsg),
        this.condition('ContainersReady', allReady, allReady ? undefined : 'ContainersNotReady', notReadyMsg),
        this.condition('PodScheduled', true),
      ],
      ...ips,
      ...(this.startTime ? { startTime: this.startTime } : {}),
      initContainerStatuses: this.initContainers.map((c) => this.containerStatus(c)),
      containerStatuses: this.containers.map((c) => this.containerStatus(c)),
    };
  }

  /** Asks for a status write; writes are serialised and coalesced, and skipped when nothing changed. */
  private markStatus(): void {
    this.statusDirty = true;
    if (!this.statusWriting) void this.writeStatus();
  }

  private async writeStatus(): Promise<void> {
    this.statusWriting = true;
    try {
      while (this.statusDirty && !this.killed) {
        this.statusDirty = false;
        const status = this.status();
        const fingerprint = JSON.stringify(status);
        if (fingerprint === this.lastWritten) continue;
        for (let attempt = 0; attempt < 5; attempt++) {
          try {
            const current = await this.ctx.api.readNamespacedPod({ name: this.name, namespace: this.namespace });
            if (current.metadata?.uid !== this.pod.metadata?.uid) return;
            // qosClass, resize and the like belong to the API server; keep them.
            current.status = { ...current.status, ...status };
            await this.ctx.api.replaceNamespacedPodStatus({ name: this.name, namespace: this.namespace, body: current });
            this.lastWritten = fingerprint;
            break;
          } catch (err) {
            const code = (err as { code?: number }).code;
            if (code === 404) return;
            if (code !== 409) {
              this.log(`status write failed: ${String(err)}`);
              await sleep(200);
            }
          }
        }
      }
    } finally {
      this.statusWriting = false;
    }
  }
}

function backoffMs(restarts: number): number {
  return Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(restarts, 10));
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 0;
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean): void => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

function httpProbe(https: boolean, host: string, port: number, path: string, headers: Record<string, string>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(
      { host, port, path, headers, timeout: timeoutMs, rejectUnauthorized: false },
      (res) => {
        res.resume();
        const s = res.statusCode ?? 0;
        resolve(s >= 200 && s < 400);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
    req.end();
  });
}
