// `wsgate controller [flags]`: the listener, admin and log flags of `serve` (src/cli/listener-flags.ts), plus where
// the cluster is, what to watch, what to publish and how to elect a leader. A bad flag is a BadFlagError (exit 2).
import { existsSync, readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { BadFlagError, parseCount, parseDuration, parseFlags, parseName } from '../cli/flags.ts';
import { LISTENER_OPTIONS, LISTENER_USAGE, parseListenerFlags } from '../cli/listener-flags.ts';
import { createLogger } from '../log/logger.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { startController, type ControllerOptions } from './controller.ts';

export const CONTROLLER_OPTIONS = {
  ...LISTENER_OPTIONS,
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  'publish-service': { type: 'string' },
  'publish-address': { type: 'string' },
  'leader-election-namespace': { type: 'string' },
  'leader-election-id': { type: 'string', default: 'wsgate-leader' },
  debounce: { type: 'string', default: '100ms' },
  'max-debounce': { type: 'string', default: '1s' },
  // [issue 14] Gateway API.
  'gateway-class': { type: 'string' },
  gateway: { type: 'string' },
  'provision': { type: 'boolean', default: true },
  'proxy-image': { type: 'string' },
  'proxy-replicas': { type: 'string', default: '1' },
  'proxy-service-type': { type: 'string', default: 'LoadBalancer' },
  'proxy-cluster-role': { type: 'string' },
  'proxy-workers': { type: 'string', default: '1' },
  'proxy-drain-timeout': { type: 'string', default: '60s' },
} as const satisfies ParseArgsConfig['options'];

export const CONTROLLER_USAGE = `Usage: wsgate controller [flags]

Serves the Ingresses (of --ingress-class), WebSocketRoutes and TCPTunnels of a Kubernetes cluster, with the
Services, EndpointSlices and Secrets they name, and, on the replica holding the leader Lease, writes their status.
In a cluster it finds the API server through its service account; elsewhere give --kubeconfig.

Flags of the cluster:
  --kubeconfig PATH          kubeconfig to reach the API server (default: in-cluster service account)
  --namespace NS             watch only this namespace (default: all namespaces)
  --publish-service NS/NAME  Service whose load balancer addresses (or cluster IP) go into Ingress status
  --publish-address ADDR,... addresses (IPs or host names) for Ingress status; overrides --publish-service
  --leader-election-namespace NS  namespace of the leader Lease (default: the pod's, else --namespace,
                             else default)
  --leader-election-id NAME  name of the leader Lease (default wsgate-leader)
  --debounce DUR             quiet time after a change before the table is rebuilt (default 100ms)
  --max-debounce DUR         longest a change waits for its rebuild (default 1s)
  IngressClass: Ingresses of --ingress-class are served; an IngressClass of that name should say
  spec.controller: wsgate.io/ingress-controller

Flags of the Gateway API (docs/gateway-api.md):
  --gateway-class NAME,...   manage these GatewayClasses (controllerName wsgate.io/gateway-controller; "*" = every
                             one): write the status of them, their Gateways and routes, and provision each accepted
                             Gateway's proxies. This controller serves no Gateway itself
  --gateway NS/NAME          be one Gateway's proxy: serve its listeners and routes, write nothing (the controller
                             of --gateway-class runs proxies with this flag)
  --provision=false          with --gateway-class: status only, no proxies (default true)
  --proxy-image IMAGE        the proxies' image (default wsgate:<this version>)
  --proxy-replicas N         proxies per Gateway (default 1)
  --proxy-service-type TYPE  LoadBalancer, ClusterIP or NodePort: the Service in front of a Gateway's proxies,
                             whose address is the Gateway's (default LoadBalancer)
  --proxy-cluster-role NAME  ClusterRole each proxy's ServiceAccount is bound to (default: none bound)
  --proxy-workers N          --workers of each proxy (default 1: Gateways scale by replicas)
  --proxy-drain-timeout DUR  --drain-timeout of each proxy; its pods' grace period is 10 s more (default 60s)

Flags of the proxy (as for wsgate serve):
${LISTENER_USAGE}
Example: wsgate controller --kubeconfig ~/.kube/config --namespace apps --publish-service wsgate/wsgate
`;

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The flags, checked and converted; everything the controller needs but the logger and metrics. */
export function parseControllerFlags(args: string[], version = '0.0.0'): { help: true } | ({ help: false; drainMs: number; drainDelayMs: number; logLevel: string } & Omit<ControllerOptions, 'log' | 'metrics'>) {
  const v = parseFlags(args, CONTROLLER_OPTIONS, 'controller');
  if (v.help) return { help: true };
  const namespace = v.namespace === undefined ? undefined : parseName('namespace', v.namespace);
  const publishService = v['publish-service'] === undefined ? undefined : parseNamespacedName('publish-service', v['publish-service']);
  const publishAddresses =
    v['publish-address'] === undefined ? undefined : parseAddressList('publish-address', v['publish-address']);
  const debounceMs = parseDuration('debounce', v.debounce);
  const maxDebounceMs = parseDuration('max-debounce', v['max-debounce']);
  if (maxDebounceMs < debounceMs) {
    throw new BadFlagError(`--max-debounce=${v['max-debounce']} is shorter than --debounce=${v.debounce}: give at least as long`);
  }
  const leaseName = parseName('leader-election-id', v['leader-election-id']);
  const leaseNamespace = parseName(
    'leader-election-namespace',
    v['leader-election-namespace'] ?? podNamespace() ?? namespace ?? 'default',
  );
  const kc = loadKubeConfig(v.kubeconfig);
  const f = parseListenerFlags(v);
  const gatewayAPI = parseGatewayFlags(v, version);
  return {
    help: false,
    kc,
    ...(namespace === undefined ? {} : { namespace }),
    ingressClass: f.ingressClass,
    ...(publishService === undefined ? {} : { publishService }),
    ...(publishAddresses === undefined ? {} : { publishAddresses }),
    leaderElection: { namespace: leaseNamespace, name: leaseName },
    debounceMs,
    maxDebounceMs,
    httpAddr: f.httpAddr,
    httpsAddr: f.httpsAddr,
    adminAddr: f.adminAddr,
    tunnelHost: f.tunnelHost,
    handshakeTimeoutMs: f.handshakeTimeoutMs,
    normalize: f.normalize,
    defaultCertificate: f.defaultCertificate,
    drainMs: f.drainMs,
    drainDelayMs: f.drainDelayMs,
    logLevel: f.logLevel,
    workers: f.workers,
    watchIngressWithoutClass: f.watchIngressWithoutClass,
    edge: f.edge,
    relay: f.relay,
    ...(gatewayAPI !== undefined ? { gatewayAPI } : {}),
  };
}

type ParsedFlags = ReturnType<typeof parseFlags<typeof CONTROLLER_OPTIONS>>;

/** [issue 14] --gateway-class and its --proxy-* flags, or --gateway; undefined when neither is given. */
function parseGatewayFlags(v: ParsedFlags, version: string): ControllerOptions['gatewayAPI'] {
  if (v['gateway-class'] !== undefined && v.gateway !== undefined) {
    throw new BadFlagError('--gateway-class and --gateway exclude each other: the first manages GatewayClasses, the second is one Gateway\'s proxy');
  }
  if (v.gateway !== undefined) {
    const { namespace, name } = parseNamespacedName('gateway', v.gateway);
    return { mode: 'gateway', namespace, name };
  }
  if (v['gateway-class'] === undefined) return undefined;
  const list = v['gateway-class'].split(',').map((c) => c.trim()).filter((c) => c !== '');
  if (list.length === 0) throw new BadFlagError('--gateway-class needs a GatewayClass name (or "*" for every one of wsgate\'s)');
  const classes = list.includes('*') ? [] : list.map((c) => parseName('gateway-class', c));
  const serviceType = v['proxy-service-type'];
  if (serviceType !== 'LoadBalancer' && serviceType !== 'ClusterIP' && serviceType !== 'NodePort') {
    throw new BadFlagError(`--proxy-service-type=${serviceType}: expected LoadBalancer, ClusterIP or NodePort`);
  }
  if (!v.provision) return { mode: 'gateway-class', classes };
  return {
    mode: 'gateway-class',
    classes,
    provision: {
      image: v['proxy-image'] ?? `wsgate:${version}`,
      replicas: parseCount('proxy-replicas', v['proxy-replicas'], 0, 1000),
      serviceType,
      workers: parseCount('proxy-workers', v['proxy-workers'], 1, 256),
      drainSeconds: Math.round(parseDuration('proxy-drain-timeout', v['proxy-drain-timeout']) / 1000),
      ...(v['proxy-cluster-role'] !== undefined ? { clusterRole: parseName('proxy-cluster-role', v['proxy-cluster-role']) } : {}),
    },
  };
}

function parseNamespacedName(flag: string, value: string): { namespace: string; name: string } {
  const [namespace, name, ...rest] = value.split('/');
  if (namespace === undefined || name === undefined || rest.length > 0) {
    throw new BadFlagError(`--${flag}=${value}: expected NAMESPACE/NAME (e.g. wsgate/wsgate)`);
  }
  return { namespace: parseName(flag, namespace), name: parseName(flag, name) };
}

function parseAddressList(flag: string, value: string): string[] {
  const list = value.split(',').map((a) => a.trim()).filter((a) => a !== '');
  for (const a of list) {
    if (!/^[0-9a-fA-F:.]+$/.test(a) && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(a)) {
      throw new BadFlagError(`--${flag}=${value}: "${a}" is neither an IP address nor a DNS name`);
    }
  }
  if (list.length === 0) throw new BadFlagError(`--${flag}=${value}: give one or more addresses, separated by commas`);
  return list;
}

function podNamespace(): string | undefined {
  try {
    return existsSync(SERVICE_ACCOUNT_NAMESPACE) ? readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined : undefined;
  } catch {
    return undefined;
  }
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new BadFlagError(`--kubeconfig=${path}: cannot load it (${(err as Error).message.split('\n')[0]})`);
    }
    if (kc.getCurrentCluster() === null) {
      throw new BadFlagError(`--kubeconfig=${path}: its current context names no cluster`);
    }
    return kc;
  }
  if (process.env.KUBERNETES_SERVICE_HOST === undefined) {
    throw new BadFlagError('not running in a cluster (no KUBERNETES_SERVICE_HOST): give --kubeconfig PATH');
  }
  kc.loadFromCluster();
  return kc;
}

export async function runController(args: string[], o: { version: string }): Promise<void> {
  const flags = parseControllerFlags(args, o.version);
  if (flags.help) {
    process.stdout.write(CONTROLLER_USAGE);
    return;
  }
  const { drainMs, drainDelayMs, logLevel, ...rest } = flags;
  const options: Omit<ControllerOptions, 'log' | 'metrics'> = rest;
  const log = createLogger(logLevel);
  const metrics = createMetrics(o.version);
  const controller = await startController({ ...options, log, metrics, logLevel: logLevel, version: o.version });
  const a = controller.gateway.addresses();
  log.info(
    { http: a.http, https: a.https, admin: a.admin, identity: controller.identity, namespace: options.namespace ?? '(all)', version: o.version },
    'wsgate controller serving',
  );
  let stopping = false;
  const onSignal = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: closing every tunnel now');
      void controller.gateway.closeTunnels();
      return;
    }
    stopping = true;
    void (async () => {
      // Readiness false at once; the listeners keep accepting for the delay, while load balancers notice.
      controller.gateway.beginDrain();
      log.info({ signal, tunnels: await controller.gateway.tunnels(), drainDelayMs, drainMs }, 'draining');
      if (drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, drainDelayMs));
      await controller.stop(drainMs);
      log.info('stopped');
      log.flush();
      process.exitCode = 0;
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
