// `wsgate webhook`: the sidecar injector. Serves AdmissionReviews over TLS with a certificate from files
// (--tls-cert/--tls-key, re-read every --reconcile-interval, so that cert-manager's rotations are picked up) or,
// with --self-signed, from a Secret it manages itself while keeping the webhook's caBundle current (certs.ts).
import { existsSync, readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { AdminServer } from '../admin/server.ts';
import { BadFlagError, parseAddress, parseDuration, parseFlags, parseLogLevel, parseName } from '../cli/flags.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { EMPTY_TABLE } from '../model/table.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import { SelfSignedCertificates, type SecretRef } from './certs.ts';
import { createWebhookMetrics, type WebhookMetrics } from './metrics.ts';
import { INJECT_DEFAULTS, type InjectOptions } from './mutate.ts';
import { WebhookServer, type ServingCertificate } from './server.ts';

export const WEBHOOK_OPTIONS = {
  listen: { type: 'string', default: '0.0.0.0:8443' },
  'admin-addr': { type: 'string', default: '0.0.0.0:9090' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'self-signed': { type: 'boolean' },
  'webhook-config': { type: 'string' },
  'cert-secret': { type: 'string' },
  'dns-name': { type: 'string', multiple: true },
  kubeconfig: { type: 'string' },
  'reconcile-interval': { type: 'string', default: '1m' },
  image: { type: 'string' },
  'image-pull-policy': { type: 'string', default: 'IfNotPresent' },
  'listen-port': { type: 'string', default: String(INJECT_DEFAULTS.listenPort) },
  'admin-port': { type: 'string', default: String(INJECT_DEFAULTS.adminPort) },
  'cpu-request': { type: 'string', default: '50m' },
  'memory-request': { type: 'string', default: '96Mi' },
  'memory-limit': { type: 'string', default: 'off' },
  'run-as-user': { type: 'string', default: String(INJECT_DEFAULTS.runAsUser) },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const WEBHOOK_USAGE = `Usage: wsgate webhook --image IMAGE (--tls-cert FILE --tls-key FILE | --self-signed ...) [flags]

The sidecar injector: a mutating admission webhook that adds \`wsgate sidecar\` (as a native sidecar) to pods
annotated wsgate.io/inject: "true". Serves AdmissionReviews over HTTPS at /mutate.

Flags:
  --image IMAGE              the wsgate image the injected sidecar runs (required)
  --listen HOST:PORT         HTTPS address for AdmissionReviews at /mutate (default 0.0.0.0:8443)
  --admin-addr HOST:PORT     /metrics, /healthz, /readyz over plain HTTP, or "off" (default 0.0.0.0:9090)
  --tls-cert FILE            PEM serving certificate (e.g. from cert-manager); re-read every --reconcile-interval
  --tls-key FILE             its PEM private key
  --self-signed              instead: keep a self-signed certificate in --cert-secret and write it as the
                             caBundle of --webhook-config (needs --dns-name, and RBAC for both)
  --webhook-config NAME      the MutatingWebhookConfiguration whose caBundle to keep current
  --cert-secret NS/NAME      the Secret holding the certificate (default: $POD_NAMESPACE/wsgate-sidecar-injector-tls)
  --dns-name NAME            a name the certificate covers, repeatable (the Service: NAME.NS.svc)
  --kubeconfig PATH          (default: in-cluster service account)
  --reconcile-interval DUR   how often certificate and caBundle are checked (default 1m)
  --image-pull-policy P      of the sidecar: Always, IfNotPresent or Never (default IfNotPresent)
  --listen-port N            sidecar port when a pod does not say wsgate.io/listen-port (default ${INJECT_DEFAULTS.listenPort})
  --admin-port N             sidecar admin port when a pod does not say wsgate.io/admin-port (default ${INJECT_DEFAULTS.adminPort})
  --cpu-request Q            sidecar CPU request (default 50m)
  --memory-request Q         sidecar memory request (default 96Mi: an idle sidecar holds about 78 MiB)
  --memory-limit Q           sidecar memory limit, or "off" (default off)
  --run-as-user UID          sidecar's non-root user and group (default ${INJECT_DEFAULTS.runAsUser}, as the chart's controller)
  --log-level LEVEL          fatal, error, warn, info, debug, trace or silent (default info)

Example: wsgate webhook --image registry.example.com/wsgate:0.1.0 --tls-cert tls.crt --tls-key tls.key
`;

const QUANTITY = /^\d+(\.\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const IMAGE = /^[a-z0-9][^\s]*$/;

export type CertificateSource =
  | { readonly kind: 'files'; readonly certFile: string; readonly keyFile: string }
  | { readonly kind: 'self-signed'; readonly kc: KubeConfig; readonly webhookConfig: string; readonly secret: SecretRef; readonly dnsNames: readonly string[] };

export interface WebhookFlags {
  readonly listen: ListenAddress;
  readonly adminAddr: ListenAddress | undefined;
  readonly certificates: CertificateSource;
  readonly reconcileIntervalMs: number;
  readonly inject: InjectOptions;
  readonly logLevel: ReturnType<typeof parseLogLevel>;
}

export function parseWebhookFlags(args: string[], env: NodeJS.ProcessEnv = process.env): { help: true } | ({ help: false } & WebhookFlags) {
  const v = parseFlags(args, WEBHOOK_OPTIONS, 'webhook');
  if (v.help) return { help: true };
  if (!v.image || !IMAGE.test(v.image)) throw new BadFlagError('webhook needs --image IMAGE: the wsgate image the sidecar runs (e.g. ghcr.io/example/wsgate:0.1.0)');
  const listen = parseAddress('listen', v.listen);
  if (!listen) throw new BadFlagError('--listen=off: the webhook needs an address to serve on');
  const pullPolicy = v['image-pull-policy'];
  if (pullPolicy !== 'Always' && pullPolicy !== 'IfNotPresent' && pullPolicy !== 'Never') {
    throw new BadFlagError(`--image-pull-policy=${pullPolicy}: expected Always, IfNotPresent or Never`);
  }
  const quantity = (flag: string, value: string): string => {
    if (!QUANTITY.test(value)) throw new BadFlagError(`--${flag}=${value}: expected a Kubernetes quantity such as 50m, 64Mi or 1`);
    return value;
  };
  const port = (flag: string, value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new BadFlagError(`--${flag}=${value}: expected a port from 1 to 65535`);
    return n;
  };
  const uid = Number(v['run-as-user']);
  if (!/^\d+$/.test(v['run-as-user']) || uid === 0) throw new BadFlagError(`--run-as-user=${v['run-as-user']}: expected a non-root uid (not 0)`);
  const memoryLimit = v['memory-limit'] === 'off' ? undefined : quantity('memory-limit', v['memory-limit']);
  const inject: InjectOptions = {
    image: v.image,
    imagePullPolicy: pullPolicy,
    listenPort: port('listen-port', v['listen-port']),
    adminPort: port('admin-port', v['admin-port']),
    resources: {
      requests: { cpu: quantity('cpu-request', v['cpu-request']), memory: quantity('memory-request', v['memory-request']) },
      ...(memoryLimit ? { limits: { memory: memoryLimit } } : {}),
    },
    runAsUser: uid,
  };
  const reconcileIntervalMs = parseDuration('reconcile-interval', v['reconcile-interval']);
  if (reconcileIntervalMs <= 0) throw new BadFlagError(`--reconcile-interval=${v['reconcile-interval']}: must be more than 0`);

  let certificates: CertificateSource;
  if (v['self-signed']) {
    if (v['tls-cert'] || v['tls-key']) throw new BadFlagError('--self-signed and --tls-cert/--tls-key exclude each other: give one');
    if (!v['webhook-config']) throw new BadFlagError('--self-signed needs --webhook-config NAME: the MutatingWebhookConfiguration to keep the caBundle of');
    const dnsNames = v['dns-name'] ?? [];
    if (dnsNames.length === 0) throw new BadFlagError('--self-signed needs --dns-name NAME (repeatable): the names the API server calls, e.g. wsgate-injector.wsgate.svc');
    for (const n of dnsNames) parseName('dns-name', n);
    const secret = parseSecretRef(v['cert-secret'] ?? (env.POD_NAMESPACE ? `${env.POD_NAMESPACE}/wsgate-sidecar-injector-tls` : undefined));
    certificates = { kind: 'self-signed', kc: loadKubeConfig(v.kubeconfig), webhookConfig: parseName('webhook-config', v['webhook-config']), secret, dnsNames };
  } else {
    if (!v['tls-cert'] || !v['tls-key']) throw new BadFlagError('webhook needs --tls-cert FILE and --tls-key FILE, or --self-signed');
    for (const [flag, file] of [['tls-cert', v['tls-cert']], ['tls-key', v['tls-key']]] as const) {
      if (!existsSync(file)) throw new BadFlagError(`--${flag}=${file}: no such file`);
    }
    certificates = { kind: 'files', certFile: v['tls-cert'], keyFile: v['tls-key'] };
  }
  return {
    help: false,
    listen,
    adminAddr: parseAddress('admin-addr', v['admin-addr']),
    certificates,
    reconcileIntervalMs,
    inject,
    logLevel: parseLogLevel(v['log-level']),
  };
}

function parseSecretRef(value: string | undefined): SecretRef {
  if (value === undefined) throw new BadFlagError('--self-signed needs --cert-secret NS/NAME (or POD_NAMESPACE set, for the default)');
  const [namespace, name, ...rest] = value.split('/');
  if (!namespace || !name || rest.length > 0) throw new BadFlagError(`--cert-secret=${value}: expected NAMESPACE/NAME`);
  return { namespace: parseName('cert-secret', namespace), name: parseName('cert-secret', name) };
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) {
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new BadFlagError(`--kubeconfig=${path}: cannot load it (${(err as Error).message.split('\n')[0]})`);
    }
    return kc;
  }
  if (process.env.KUBERNETES_SERVICE_HOST === undefined) {
    throw new BadFlagError('--self-signed outside a cluster (no KUBERNETES_SERVICE_HOST): give --kubeconfig PATH');
  }
  kc.loadFromCluster();
  return kc;
}

export interface Webhook {
  readonly server: WebhookServer;
  readonly addresses: { readonly listen: { port: number }; readonly admin?: { port: number } };
  /** One reconcile of the certificate (and caBundle) now. */
  reconcile(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the injector: certificate first (the server cannot listen without one), then the two servers, then the loop. */
export async function startWebhook(f: WebhookFlags, log: Logger, metrics: WebhookMetrics): Promise<Webhook> {
  const src = f.certificates;
  const selfSigned = src.kind === 'self-signed' ? new SelfSignedCertificates(src.kc, src.secret, src.dnsNames) : undefined;
  const load = async (): Promise<ServingCertificate> => {
    if (src.kind === 'files') return { certPem: readFileSync(src.certFile, 'utf8'), keyPem: readFileSync(src.keyFile, 'utf8') };
    const { certificate, written } = await selfSigned!.ensureSecret();
    if (written) log.info({ secret: `${src.secret.namespace}/${src.secret.name}` }, 'self-signed serving certificate written');
    return certificate;
  };
  const writeCaBundle = async (c: ServingCertificate): Promise<void> => {
    if (src.kind !== 'self-signed') return;
    try {
      const changed = await selfSigned!.ensureCaBundle(src.webhookConfig, c.certPem);
      if (changed > 0) {
        metrics.caBundleUpdates.inc({ result: 'success' });
        log.info({ webhookConfig: src.webhookConfig, webhooks: changed }, 'caBundle updated');
      }
    } catch (err) {
      metrics.caBundleUpdates.inc({ result: 'failure' });
      log.error({ err, webhookConfig: src.webhookConfig }, 'caBundle not updated; retrying at the next reconcile');
    }
  };
  let cert: ServingCertificate;
  try {
    cert = await load();
  } catch (err) {
    throw new Error('cannot obtain the serving certificate', { cause: err });
  }
  const server = new WebhookServer({ log, metrics, inject: f.inject, certificate: cert });
  const listen = await server.listen(f.listen);
  const admin = f.adminAddr
    ? new AdminServer({
        metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
        notReady: () => undefined,
        table: () => EMPTY_TABLE,
      })
    : undefined;
  const adminAddress = admin && f.adminAddr ? await admin.listen(f.adminAddr.host, f.adminAddr.port) : undefined;
  await writeCaBundle(cert);

  const reconcile = async (): Promise<void> => {
    try {
      const next = await load();
      server.setCertificate(next);
      await writeCaBundle(next);
    } catch (err) {
      log.error({ err }, 'serving certificate not reloaded; keeping the current one');
    }
  };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => void reconcile().then(schedule), f.reconcileIntervalMs);
  };
  schedule();
  return {
    server,
    addresses: { listen, ...(adminAddress ? { admin: adminAddress } : {}) },
    reconcile,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.all([server.close(), admin?.close()]);
    },
  };
}

export async function runWebhook(args: string[], o: { version: string }): Promise<void> {
  const f = parseWebhookFlags(args);
  if (f.help) {
    process.stdout.write(WEBHOOK_USAGE);
    return;
  }
  const log = createLogger(f.logLevel);
  const webhook = await startWebhook(f, log.child({ component: 'webhook' }), createWebhookMetrics(o.version));
  log.info(
    { listen: webhook.addresses.listen, admin: webhook.addresses.admin, certificates: f.certificates.kind, image: f.inject.image, version: o.version },
    'wsgate webhook serving',
  );
  const onSignal = (signal: string): void => {
    log.info({ signal }, 'stopping');
    void webhook.stop().then(() => {
      log.flush();
      process.exitCode = 0;
    });
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}
