// A real Kubernetes control plane for tests: etcd and kube-apiserver, built from upstream Go modules by
// scripts/k8s/build.sh, started on loopback with ephemeral ports and a temp directory per call.
//
// No controller-manager, no scheduler, no kubelet: objects are stored, validated (OpenAPI schemas, CEL, admission)
// and authorised (RBAC) for real, but nothing acts on them. Pods stay Pending, no default ServiceAccount appears in a
// new namespace, Services get a ClusterIP but no EndpointSlices: tests write the EndpointSlices they need.
//
// The API server's own timing, which a test with tight deadlines meets: the first create of a custom resource
// within 2 s of its CRD becoming Established sleeps 2 s (apiextensions-apiserver's customresource_handler.go), and
// EndpointSlices may not point at 127.0.0.0/8 (docs/testing-kubernetes.md has the workaround).
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  ApiextensionsV1Api,
  CustomObjectsApi,
  KubeConfig,
  loadAllYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A user the API server authenticates by a static bearer token (`--token-auth-file`). */
export interface StaticUser {
  readonly name: string;
  readonly groups: readonly string[];
  readonly token: string;
}

export interface ControlPlaneOptions {
  /**
   * Extra users with static tokens, for RBAC tests; none by default. The admin user (`wsgate-admin`, group
   * `system:masters`) always exists.
   */
  readonly users?: readonly { name: string; groups?: readonly string[] }[];
  /** [crds=true] Apply every deploy/crds/*.yaml and wait for `Established`. */
  readonly crds?: boolean;
  /** [readyTimeoutMs=60000] How long to wait for etcd and then `/readyz`, each, in milliseconds. */
  readonly readyTimeoutMs?: number;
  /**
   * [address='127.0.0.1'] The address kube-apiserver binds, advertises (its self-signed certificate names it) and is
   * reached at. The conformance cluster (test/conformance/) passes its bridge address so that pods in network
   * namespaces reach the API server; it must be an address of this machine.
   */
  readonly address?: string;
}

export interface ControlPlane {
  /** A kubeconfig for the admin user (context `wsgate-test`), in the control plane's temp dir. */
  readonly kubeconfigPath: string;
  /** The API server's URL, `https://127.0.0.1:<port>`. */
  readonly server: string;
  /** PEM of the CA that signed the serving certificate (self-signed by kube-apiserver into its --cert-dir). */
  readonly caPem: string;
  /** The admin, in `system:masters`: every request is allowed. */
  readonly admin: StaticUser;
  /** The users asked for in `options.users`, by name. */
  readonly users: ReadonlyMap<string, StaticUser>;
  /** The `--service-cluster-ip-range`. */
  readonly serviceClusterIPRange: string;
  /** The service-account signing key (PEM, PKCS#8), for a kube-controller-manager's token controller. */
  readonly serviceAccountKeyPath: string;
  readonly versions: { readonly kubernetes: string; readonly etcd: string };
  /** A KubeConfig for `user` (default admin), loaded from a kubeconfig written for that user. */
  kubeConfig(user?: StaticUser): KubeConfig;
  /** The last `lines` lines of each process's log, for failure messages. */
  logTail(lines?: number): string;
  /**
   * Stops kube-apiserver only; etcd keeps running with its data. [signal='SIGTERM'] SIGTERM is a graceful stop
   * (SIGKILL after 5 s if it has not exited); SIGKILL is a crash: open watches and requests are cut at once.
   * Resolves once the process has exited. Does nothing if it is already stopped.
   */
  stopApiServer(o?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /**
   * Starts kube-apiserver again with the same arguments, port, certificates, tokens and etcd, and waits for
   * `/readyz` and for every CRD's resources to be listable again (custom resources are served a little after the
   * rest). Throws if it is running.
   */
  startApiServer(): Promise<void>;
  /** stopApiServer(o), then startApiServer(). */
  restartApiServer(o?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Kills both processes and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

export const serviceClusterIPRange = '10.96.0.0/16';

/** The versions in scripts/k8s/versions.env and where build.sh caches their binaries. */
export function controlPlaneBinaries(): { kubernetes: string; etcd: string; apiserverPath: string; etcdPath: string } {
  const env = parseEnvFile(readFileSync(join(repoRoot, 'scripts', 'k8s', 'versions.env'), 'utf8'));
  const kubernetes = required(env, 'KUBE_VERSION');
  const etcd = required(env, 'ETCD_VERSION');
  const cache = process.env.WSGATE_CACHE ?? join(homedir(), '.cache', 'wsgate');
  return {
    kubernetes,
    etcd,
    apiserverPath: process.env.WSGATE_KUBE_APISERVER ?? join(cache, 'k8s', kubernetes, 'kube-apiserver'),
    etcdPath: process.env.WSGATE_ETCD ?? join(cache, 'etcd', etcd, 'etcd'),
  };
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bins = controlPlaneBinaries();
  for (const [name, path] of [['kube-apiserver', bins.apiserverPath], ['etcd', bins.etcdPath]] as const) {
    if (!existsSync(path)) {
      throw new Error(`${name} not found at ${path}: run scripts/k8s/build.sh (builds Kubernetes ${bins.kubernetes}, etcd ${bins.etcd})`);
    }
  }
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-kube-'));
  const procs: Proc[] = [];
  // A test process that exits without calling stop() must not leave an API server behind. (One killed outright
  // does not either: see `setpriv --pdeathsig` in startProcess.)
  const cleanup = (): void => {
    for (const p of procs) if (!p.hasExited()) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', cleanup);
    // The API server first, so it does not spend its last seconds retrying a dead etcd.
    for (const p of [...procs].reverse()) await p.terminate();
    rmSync(dir, { recursive: true, force: true });
  };
  const logTail = (lines = 40): string => procs.map((p) => p.tail(lines)).join('\n');

  try {
    const [etcdClient = 0, etcdPeer = 0, securePort = 0] = await freePorts(3);
    // 1. etcd, one member, on loopback. --unsafe-no-fsync: test data need not survive a power cut.
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = startProcess('etcd', bins.etcdPath, [
      '--name=wsgate-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=wsgate-test=${peerUrl}`,
      '--log-level=warn',
      '--unsafe-no-fsync',
    ], dir);
    procs.push(etcd);
    await waitFor('etcd', etcd, readyTimeoutMs, logTail, async () => (await httpGet(`${etcdUrl}/health`)).status === 200);

    // 2. Credentials: static tokens and a service-account signing key (ES256: quick to generate).
    const admin: StaticUser = { name: 'wsgate-admin', groups: ['system:masters'], token: token() };
    const users = new Map<string, StaticUser>();
    for (const u of options.users ?? []) users.set(u.name, { name: u.name, groups: u.groups ?? [], token: token() });
    writeFileSync(join(dir, 'tokens.csv'), [admin, ...users.values()].map(tokenLine).join(''), { mode: 0o600 });
    const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));

    // 3. kube-apiserver. Its serving certificate and CA are self-generated into --cert-dir.
    const address = options.address ?? '127.0.0.1';
    const server = `https://${address}:${securePort}`;
    const args = apiserverArgs({ dir, etcdUrl, securePort, server, address });
    const certFile = join(dir, 'certs', 'apiserver.crt');
    // The one running now (procs holds it too, last: stop() ends it before etcd).
    let apiserver: Proc | undefined;
    const launchApiServer = async (): Promise<void> => {
      const p = startProcess('kube-apiserver', bins.apiserverPath, args, dir);
      apiserver = p;
      procs.push(p);
      await waitFor('kube-apiserver', p, readyTimeoutMs, logTail, async () => {
        if (!existsSync(certFile)) return false;
        const res = await httpGet(`${server}/readyz`, { ca: readFileSync(certFile, 'utf8'), token: admin.token });
        return res.status === 200;
      });
    };
    await launchApiServer();
    const caPem = readFileSync(certFile, 'utf8');

    // 4. Kubeconfigs: one for the admin, one more per user on demand.
    const kubeconfigFor = (user: StaticUser): string => {
      const path = join(dir, `kubeconfig-${user.name}.yaml`);
      if (!existsSync(path)) writeFileSync(path, kubeconfigYaml(server, caPem, user), { mode: 0o600 });
      return path;
    };
    const kubeconfigPath = kubeconfigFor(admin);
    const kubeConfig = (user: StaticUser = admin): KubeConfig => {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigFor(user));
      return kc;
    };

    const crds = options.crds ?? true;
    if (crds) await applyCRDs(kubeConfig(), readyTimeoutMs);

    const stopApiServer = async (o: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> => {
      const p = apiserver;
      if (p === undefined || p.hasExited()) return;
      if (o.signal === 'SIGKILL') {
        p.child.kill('SIGKILL');
        await p.exited;
      } else {
        await p.terminate();
      }
      procs.splice(procs.indexOf(p), 1);
      apiserver = undefined;
    };
    const startApiServer = async (): Promise<void> => {
      if (stopped) throw new Error('the control plane is stopped');
      if (apiserver !== undefined && !apiserver.hasExited()) throw new Error('kube-apiserver is running');
      await launchApiServer();
      if (crds) await waitForCRDsServed(kubeConfig(), readyTimeoutMs);
    };

    return {
      kubeconfigPath,
      server,
      caPem,
      admin,
      users,
      serviceClusterIPRange,
      serviceAccountKeyPath: join(dir, 'sa.key'),
      versions: { kubernetes: bins.kubernetes, etcd: bins.etcd },
      kubeConfig,
      logTail,
      stopApiServer,
      startApiServer,
      async restartApiServer(o) {
        await stopApiServer(o);
        await startApiServer();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The flags: everything on one local address (127.0.0.1 unless `address`), RBAC, and off what a test does not need. */
function apiserverArgs(o: { dir: string; etcdUrl: string; securePort: number; server: string; address: string }): string[] {
  return [
    `--etcd-servers=${o.etcdUrl}`,
    `--bind-address=${o.address}`,
    `--advertise-address=${o.address}`,
    `--secure-port=${o.securePort}`,
    `--cert-dir=${join(o.dir, 'certs')}`,
    `--token-auth-file=${join(o.dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    `--service-account-issuer=${o.server}`,
    `--service-account-key-file=${join(o.dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(o.dir, 'sa.key')}`,
    `--service-cluster-ip-range=${serviceClusterIPRange}`,
    // The `kubernetes` Service's endpoints would be 127.0.0.1, which EndpointSlice validation rejects; tests do
    // not need them.
    '--endpoint-reconciler-type=none',
    // API Priority and Fairness creates its default objects at start and adds nothing to a test.
    '--enable-priority-and-fairness=false',
    '--profiling=false',
    '--anonymous-auth=false',
  ];
}

interface Proc {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<string>;
  hasExited(): boolean;
  tail(lines: number): string;
  terminate(): Promise<void>;
}

/**
 * util-linux's setpriv, if present: `--pdeathsig KILL` makes the kernel kill the child when the test process dies,
 * however it dies (SIGKILL, a runner's timeout), which no 'exit' handler can promise.
 */
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

function startProcess(name: string, bin: string, args: readonly string[], dir: string): Proc {
  const logPath = join(dir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, [...args]];
  const child = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let done = false;
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => { done = true; resolve(`spawn error: ${err.message}`); });
    child.once('exit', (code, signal) => { done = true; resolve(signal ?? `exit code ${code}`); });
  });
  return {
    child,
    exited,
    hasExited: () => done,
    tail(lines) {
      const text = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
      return `--- ${name} (${logPath}), last ${lines} lines ---\n${text.split('\n').slice(-lines - 1).join('\n')}`;
    },
    async terminate() {
      if (done) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `ready` every 200 ms until it returns true, the process exits, or `timeoutMs` passes. */
async function waitFor(
  name: string, proc: Proc, timeoutMs: number, logTail: () => string, ready: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'not ready';
  for (;;) {
    if (proc.hasExited()) throw new Error(`${name} exited before it was ready (${await proc.exited})\n${logTail()}`);
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready after ${timeoutMs} ms (${lastError})\n${logTail()}`);
    await sleep(200);
  }
}

function httpGet(url: string, o: { ca?: string; token?: string } = {}): Promise<{ status: number; body: string }> {
  if (url.startsWith('http:')) {
    return fetch(url, { signal: AbortSignal.timeout(2_000) }).then(async (r) => ({ status: r.status, body: await r.text() }));
  }
  return new Promise((resolve, reject) => {
    const req = request(url, {
      ca: o.ca,
      headers: o.token ? { authorization: `Bearer ${o.token}` } : {},
      timeout: 2_000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Creates every CRD in deploy/crds and waits until each is servable: `Established`, and then a list of its
 * resources succeeds. For a moment after `Established` the API server answers 429 "storage is (re)initializing"
 * while the new resource's watch cache fills, and a create waits ~2 s; an informer started then would see errors.
 */
export async function applyCRDs(kc: KubeConfig, timeoutMs: number): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const body of readCRDs()) await api.createCustomResourceDefinition({ body });
  await waitForCRDsServed(kc, timeoutMs);
}

function readCRDs(): V1CustomResourceDefinition[] {
  const crdDir = join(repoRoot, 'deploy', 'crds');
  return readdirSync(crdDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => loadAllYaml(readFileSync(join(crdDir, f), 'utf8')) as V1CustomResourceDefinition[]);
}

/** Waits until every CRD of deploy/crds is `Established` and a list of each served version's resources succeeds. */
async function waitForCRDsServed(kc: KubeConfig, timeoutMs: number): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const deadline = Date.now() + timeoutMs;
  const until = async (what: string, ready: () => Promise<boolean>): Promise<void> => {
    let last = 'not ready';
    for (;;) {
      try {
        if (await ready()) return;
      } catch (err) {
        last = err instanceof ApiException ? `HTTP ${err.code}: ${JSON.stringify(err.body)}` : String(err);
      }
      if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms: ${last}`);
      await sleep(100);
    }
  };
  for (const crd of readCRDs()) {
    const name = crd.metadata?.name ?? '';
    await until(`CRD ${name}`, async () => {
      const got = await api.readCustomResourceDefinition({ name });
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
    });
    for (const version of crd.spec.versions.filter((v) => v.served)) {
      const ref = { group: crd.spec.group, version: version.name, plural: crd.spec.names.plural, limit: 1 };
      await until(`${crd.spec.names.plural}.${crd.spec.group}/${version.name}`, async () => {
        await custom.listClusterCustomObject(ref);
        return true;
      });
    }
  }
}

function kubeconfigYaml(server: string, caPem: string, user: StaticUser): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'wsgate-test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user.name, user: { token: user.token } }],
    contexts: [{ name: 'wsgate-test', context: { cluster: 'wsgate-test', user: user.name } }],
    'current-context': 'wsgate-test',
  });
}

/** A --token-auth-file line: token,user,uid,"group1,group2". */
function tokenLine(u: StaticUser): string {
  return `${u.token},${u.name},${u.name},"${u.groups.join(',')}"\n`;
}

function token(): string {
  return randomBytes(24).toString('hex');
}

/** Ports the OS hands out for port 0, released again; a small race with other listeners, fine on a test machine. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function parseEnvFile(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*?)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) env.set(m[1], m[2]);
  }
  return env;
}

function required(env: Map<string, string>, key: string): string {
  const v = env.get(key);
  if (!v) throw new Error(`scripts/k8s/versions.env has no ${key}`);
  return v;
}
