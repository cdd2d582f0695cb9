// The Gateway API conformance harness: `npm run conformance -- [options] [-- conformance flags]`.
//
// 1. starts the test cluster (cluster.ts): etcd, kube-apiserver on a bridge address, kube-controller-manager, the
//    process kubelet (a test fixture) with a /25 pod network, and the vendored Gateway API CRDs (v1.6.3, standard);
// 2. starts the harness's LoadBalancer (load-balancer.ts): Services of type LoadBalancer get an address on the bridge;
// 3. creates the GatewayClass `wsgate` (controllerName wsgate.io/gateway-controller), as the chart will;
// 4. starts the wsgate controller on this machine with the admin kubeconfig (--controller host, the default) or
//    nothing (--controller none: the suite then shows what it needs first). The proxies the controller provisions
//    (docs/gateway-api-design.md) run as Pods of the process kubelet: the image `wsgate` (any tag) maps to
//    `node bin/wsgate.js` with the container's args, as the Dockerfile's ENTRYPOINT;
// 5. runs the suite's test binary (scripts/conformance/build.sh) with KUBECONFIG set, and the flags below;
// 6. tears everything down and prints the durations and where the report and logs are.
//
// Options:
//   --run-test NAME               one test (the suite's ShortName), e.g. HTTPRouteSimpleSameNamespace
//   --supported-features A,B      features wsgate claims (default: SUPPORTED_FEATURES below; empty = the suite reads
//                                 the GatewayClass's status.supportedFeatures)
//   --profiles P,Q                conformance profiles (default: GATEWAY-HTTP,GATEWAY-TLS,GATEWAY-TCP)
//   --report-output PATH          the suite's YAML report (default: <log dir>/report.yaml)
//   --controller host|none        how wsgate runs (default host)
//   --timeout DURATION            go test -timeout (default 60m)
//   -- ...                        anything after a second `--` goes to the suite as is (e.g. --debug, --skip-tests X)
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { conformanceBinaries, conformanceImages, requireBinaries, startCluster, type Cluster } from './cluster.ts';
import { applyCRDs } from '../helpers/kube.ts';
import { entrypoint } from './kubelet/images.ts';
import { startLoadBalancers, type LoadBalancers } from './load-balancer.ts';
import { eventually } from './wait.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WSGATE = join(repoRoot, 'bin', 'wsgate.js');

export const GATEWAY_CLASS = 'wsgate';
export const CONTROLLER_NAME = 'wsgate.io/gateway-controller';
/**
 * What wsgate claims, passed as --supported-features. Empty (the default): the suite infers the features from the
 * GatewayClass's status.supportedFeatures, which the controller must publish (GEP-2162); with neither, the suite stops
 * at once with "no supported features were determined for test suite".
 */
export const SUPPORTED_FEATURES: readonly string[] = [];
export const PROFILES = ['GATEWAY-HTTP', 'GATEWAY-TLS', 'GATEWAY-TCP'];
/** The ClusterRole the provisioned proxies' ServiceAccounts are bound to, as the chart installs it. */
export const PROXY_CLUSTER_ROLE = 'wsgate-gateway-proxy';
/**
 * What the chart's `<release>-gateway-proxy` ClusterRole grants (charts/wsgate/templates/rbac-gateway.yaml, whose
 * rules test/chart/rbac.test.ts checks against this list): read access to what a proxy's informers watch.
 */
export const PROXY_RULES = [
  { apiGroups: ['gateway.networking.k8s.io'], resources: ['gatewayclasses', 'gateways', 'httproutes', 'tlsroutes', 'tcproutes', 'referencegrants'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['namespaces', 'services', 'secrets'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
];
/**
 * `wsgate <args>` for the controller on this machine (the admin kubeconfig is appended): it manages the GatewayClass
 * `wsgate` and provisions each Gateway's proxies (docs/gateway-api-design.md); the proxies run as Pods of the process
 * kubelet from the image `wsgate` (any tag). It serves no Gateway itself; its Ingress listener is on loopback.
 */
export const CONTROLLER_ARGS = [
  'controller',
  // Every GatewayClass of wsgate's controllerName, as the chart's default: the suite creates classes of its own
  // with the controllerName of --gateway-class's (GatewayClassObservedGenerationBump).
  '--gateway-class', '*',
  '--admin-addr', '127.0.0.1:0',
  '--http-addr', '127.0.0.1:0',
  '--https-addr', 'off',
  '--proxy-image', 'wsgate:conformance',
  '--proxy-cluster-role', PROXY_CLUSTER_ROLE,
];

interface Options {
  runTest?: string;
  features: string[];
  profiles: string[];
  report?: string;
  controller: 'host' | 'none';
  timeout: string;
  passthrough: string[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { features: [...SUPPORTED_FEATURES], profiles: [...PROFILES], controller: 'host', timeout: '60m', passthrough: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--run-test': o.runTest = value(); break;
      case '--supported-features': o.features = value().split(',').filter(Boolean); break;
      case '--profiles': o.profiles = value().split(',').filter(Boolean); break;
      case '--report-output': o.report = resolve(value()); break;
      case '--controller': {
        const v = value();
        if (v !== 'host' && v !== 'none') throw new Error('--controller is host or none');
        o.controller = v;
        break;
      }
      case '--timeout': o.timeout = value(); break;
      case '--': o.passthrough = argv.slice(i + 1); i = argv.length; break;
      default: throw new Error(`unknown option ${a} (see the header of test/conformance/run.ts)`);
    }
  }
  return o;
}

/** The suite's flags for these options. */
export function suiteArgs(o: { runTest?: string; features: readonly string[]; profiles: readonly string[]; report: string; timeout: string; passthrough?: readonly string[] }): string[] {
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  return [
    '-test.v',
    '-test.run=^TestConformance$',
    `-test.timeout=${o.timeout}`,
    `--gateway-class=${GATEWAY_CLASS}`,
    ...(o.features.length > 0 ? [`--supported-features=${o.features.join(',')}`] : []),
    `--conformance-profiles=${o.profiles.join(',')}`,
    `--report-output=${o.report}`,
    '--organization=wsgate',
    '--project=wsgate',
    '--url=https://github.com/wsgate/wsgate',
    `--version=v${version}`,
    '--contact=@wsgate/maintainers',
    ...(o.runTest ? [`--run-test=${o.runTest}`] : []),
    ...(o.passthrough ?? []),
  ];
}

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** Spawns with its output to `logPath` (and to stdout with `tee`); the child dies with this process (pdeathsig). */
function spawnLogged(command: string, commandArgs: string[], logPath: string, env: NodeJS.ProcessEnv, tee: boolean): ChildProcess {
  const [cmd, args] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', command, ...commandArgs]] : [command, commandArgs];
  if (tee) {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const fd = openSync(logPath, 'a');
    const write = (b: Buffer): void => {
      process.stdout.write(b);
      writeFileSync(fd, b);
    };
    child.stdout?.on('data', write);
    child.stderr?.on('data', write);
    // 'close', not 'exit': output may still arrive after the process has exited.
    child.once('close', () => closeSync(fd));
    return child;
  }
  const fd = openSync(logPath, 'a');
  const child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const bins = conformanceBinaries();
  requireBinaries(bins, ['kubeControllerManager', 'echoBasic', 'conformance']);
  const logs = mkdtempSync(join(tmpdir(), 'wsgate-conformance-'));
  const report = o.report ?? join(logs, 'report.yaml');
  const kubeletLog = openSync(join(logs, 'kubelet.log'), 'a');
  const t0 = Date.now();
  let cluster: Cluster | undefined;
  let lbs: LoadBalancers | undefined;
  let controller: ChildProcess | undefined;
  let code = 1;
  const say = (s: string): void => console.log(`[conformance ${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);
  try {
    say(`logs in ${logs}`);
    cluster = await startCluster({
      prefix: 25,
      gatewayAPI: true,
      images: conformanceImages(bins, { wsgate: entrypoint([process.execPath, WSGATE], { cmd: ['controller'] }) }),
      log: (line) => writeFileSync(kubeletLog, `${new Date().toISOString()} ${line}\n`),
    });
    say(`cluster up: API server ${cluster.controlPlane.server}, node ${cluster.kubelet.nodeName}, pods in ${cluster.network.cidr}`);
    const kc = cluster.kubeConfig();
    lbs = startLoadBalancers(kc, cluster.network, (line) => writeFileSync(kubeletLog, `${new Date().toISOString()} ${line}\n`));
    await kc.makeApiClient(CustomObjectsApi).createClusterCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      plural: 'gatewayclasses',
      body: { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: GATEWAY_CLASS }, spec: { controllerName: CONTROLLER_NAME } },
    });
    await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRole({ body: { metadata: { name: PROXY_CLUSTER_ROLE }, rules: PROXY_RULES } });
    // wsgate's own CRDs, as the chart installs them: the controller also serves WebSocketRoutes and TCPTunnels.
    await applyCRDs(kc, 60_000);
    if (o.controller === 'host') {
      controller = spawnLogged(process.execPath, [WSGATE, ...CONTROLLER_ARGS, '--kubeconfig', cluster.kubeconfigPath], join(logs, 'wsgate-controller.log'), process.env, false);
      // The suite reads the GatewayClass's status.supportedFeatures once, at its start (GEP-2162): wait until the
      // controller has accepted the class and published them, or has exited.
      const exited = new Promise<number | null>((r) => controller?.once('exit', (c) => r(c)));
      const objects = kc.makeApiClient(CustomObjectsApi);
      const published = eventually('the GatewayClass Accepted with its supportedFeatures', async () => {
        const cls = (await objects.getClusterCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gatewayclasses', name: GATEWAY_CLASS })) as {
          metadata?: { generation?: number };
          status?: { conditions?: { type: string; status: string; observedGeneration?: number }[]; supportedFeatures?: unknown[] };
        };
        const accepted = cls.status?.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True' && c.observedGeneration === cls.metadata?.generation);
        return accepted && (cls.status?.supportedFeatures?.length ?? 0) > 0 ? ('up' as const) : undefined;
      }, { timeoutMs: 120_000, times: 1, everyMs: 250 });
      const early = await Promise.race([exited, published]);
      if (early !== 'up') throw new Error(`wsgate controller exited with ${String(early)}:\n${readFileSync(join(logs, 'wsgate-controller.log'), 'utf8')}`);
      say('wsgate controller running; GatewayClass accepted with its features');
    } else {
      say('no Gateway implementation started (--controller none)');
    }
    const args = suiteArgs({ ...o, report });
    writeFileSync(join(logs, 'command'), `KUBECONFIG=${cluster.kubeconfigPath} ${bins.conformance} ${args.join(' ')}\n`);
    say(`running ${bins.conformance} ${args.join(' ')}`);
    const suite = spawnLogged(bins.conformance, args, join(logs, 'suite.log'), { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, true);
    code = await new Promise<number>((r) => suite.once('exit', (c) => r(c ?? 1)));
    say(`suite exited with ${code}`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    if (cluster) console.error(cluster.logTail(30));
  } finally {
    const t1 = Date.now();
    if (controller && controller.exitCode === null) controller.kill('SIGTERM');
    await lbs?.stop();
    if (cluster) {
      // Keep what the processes said: the cluster's temp dirs are removed by stop().
      writeFileSync(join(logs, 'control-plane-tail.log'), cluster.logTail(200));
      await cluster.stop();
    }
    closeSync(kubeletLog);
    say(`teardown ${((Date.now() - t1) / 1000).toFixed(1)}s; total ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    if (existsSync(report)) say(`report: ${report}`);
    say(`logs (suite.log, kubelet.log, wsgate-controller.log, control-plane-tail.log, command) in ${logs}`);
  }
  return code;
}

if (import.meta.main) {
  // Ctrl-C or a CI timeout: exit through 'exit', whose handlers (test/helpers/kube.ts, kubelet/network.ts) kill the
  // control plane and remove the pod network; pod processes die with their parent (setpriv --pdeathsig).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  process.exitCode = await main();
}
