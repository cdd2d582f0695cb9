// `wsgate migrate -f FILE|DIR` or `wsgate migrate --from-cluster`: for each Ingress, every ingress-nginx annotation
// with what wsgate does with it, and the equivalent WebSocketRoutes, as YAML that `kubectl apply -f` takes (the
// report is in comments). Exits 1 when an annotation in use is unsupported or has a bad value. Loaded by main.ts only
// when this command runs; the Kubernetes client only with --from-cluster.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import type { Ingress } from '../api/types.ts';
import { ErrorCodes, WsgateError } from '../errors.ts';
import { isConfigFileName } from '../sources/files.ts';
import { LEGACY_CLASS_ANNOTATION } from '../translate/ingress.ts';
import { NGINX_ANNOTATIONS } from '../translate/ingress-nginx.ts';
import { migrateIngress, type Migration } from '../translate/migrate.ts';
import { BadFlagError, parseFlags, parseName } from './flags.ts';

const MIGRATE_OPTIONS = {
  file: { type: 'string', short: 'f' },
  'from-cluster': { type: 'boolean' },
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  'ingress-class': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const MIGRATE_USAGE = `Usage: wsgate migrate -f PATH [flags]
       wsgate migrate --from-cluster [--kubeconfig PATH] [--namespace NS] [flags]

For each Ingress written for ingress-nginx, prints every nginx.ingress.kubernetes.io/* annotation with what wsgate
does with it (honoured, approximated with the difference, unsupported, or a bad value) and the equivalent
WebSocketRoutes, as YAML that kubectl apply -f takes (the report is in comments). An Ingress can also move
unchanged: wsgate reads the same annotations (docs/migrating-from-ingress-nginx.md).
Exit code 1 when an annotation in use is unsupported or has a bad value; 0 when everything carries over.

Flags:
  -f, --file PATH            YAML file or directory of them (other kinds are skipped)
  --from-cluster             read the Ingresses of the cluster instead
  --kubeconfig PATH          kubeconfig for --from-cluster (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespace NS             only this namespace (--from-cluster)
  --ingress-class NAME       only Ingresses of this class (spec.ingressClassName or kubernetes.io/ingress.class)

Example: wsgate migrate -f k8s/ingresses/ --ingress-class nginx > websocketroutes.yaml
`;

export async function runMigrate(args: string[]): Promise<void> {
  const v = parseFlags(args, MIGRATE_OPTIONS, 'migrate');
  if (v.help) {
    process.stdout.write(MIGRATE_USAGE);
    return;
  }
  if ((v.file === undefined) === (v['from-cluster'] !== true)) {
    throw new BadFlagError('migrate needs exactly one of -f PATH (YAML files) or --from-cluster');
  }
  const ingressClass = v['ingress-class'] === undefined ? undefined : parseName('ingress-class', v['ingress-class']);
  const namespace = v.namespace === undefined ? undefined : parseName('namespace', v.namespace);
  const all = v.file !== undefined ? readIngresses(v.file) : await clusterIngresses(v.kubeconfig, namespace);
  const ingresses = all.filter((ing) => ingressClass === undefined || classOf(ing) === ingressClass);
  const migrations = ingresses.map(migrateIngress);
  process.stdout.write(renderMigrations(migrations));
  const blocked = migrations.filter((m) => m.blocked);
  process.stderr.write(
    `${migrations.length} Ingress${migrations.length === 1 ? '' : 'es'}; ` +
      (blocked.length === 0 ? 'every annotation carries over\n' : `${blocked.length} with unsupported or bad annotations: ${blocked.map((m) => m.ingress).join(', ')}\n`),
  );
  if (blocked.length > 0) process.exitCode = 1;
}

function classOf(ing: Ingress): string | undefined {
  return ing.spec?.ingressClassName ?? ing.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
}

/** The Ingresses in a file or a directory's *.yaml/*.yml files (List objects opened, other kinds skipped). */
export function readIngresses(path: string): Ingress[] {
  if (!existsSync(path)) throw new WsgateError(ErrorCodes.CONFIG_PARSE, `-f ${path}: no such file or directory`);
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter(isConfigFileName)
        .sort()
        .map((f) => join(path, f))
    : [path];
  const out: Ingress[] = [];
  const add = (o: unknown): void => {
    if (o === null || typeof o !== 'object') return;
    const obj = o as { kind?: unknown; apiVersion?: unknown; items?: unknown };
    if (obj.kind === 'List' && Array.isArray(obj.items)) obj.items.forEach(add);
    else if (obj.kind === 'Ingress' && obj.apiVersion === 'networking.k8s.io/v1') out.push(o);
  };
  for (const file of files) {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'));
    for (const d of Array.isArray(docs) ? docs : [docs]) {
      if (d.errors.length > 0) throw new WsgateError(ErrorCodes.CONFIG_PARSE, `${file}: ${d.errors[0]!.message}`);
      add(d.toJS());
    }
  }
  return out;
}

async function clusterIngresses(kubeconfig: string | undefined, namespace: string | undefined): Promise<Ingress[]> {
  const { KubeConfig, NetworkingV1Api } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (kubeconfig !== undefined) {
    if (!existsSync(kubeconfig)) throw new BadFlagError(`--kubeconfig=${kubeconfig}: no such file`);
    kc.loadFromFile(kubeconfig);
  } else {
    kc.loadFromDefault();
  }
  const api = kc.makeApiClient(NetworkingV1Api);
  const list = namespace === undefined ? await api.listIngressForAllNamespaces() : await api.listNamespacedIngress({ namespace });
  return list.items;
}

const LABEL: Readonly<Record<string, string>> = {
  honoured: 'honoured    ',
  approximated: 'approximated',
  unsupported: 'UNSUPPORTED ',
  invalid: 'BAD VALUE   ',
};

/** The report (comments) and the WebSocketRoutes of every Ingress, as one YAML stream. */
export function renderMigrations(migrations: readonly Migration[]): string {
  const differences = new Map(NGINX_ANNOTATIONS.map((a) => [a.name, a.difference]));
  let out = '';
  for (const m of migrations) {
    const unsupported = m.annotations.filter((a) => a.status === 'unsupported').length;
    const invalid = m.annotations.filter((a) => a.status === 'invalid').length + m.problems.length;
    out += `# Ingress ${m.ingress}: ${m.annotations.length} ingress-nginx annotation${m.annotations.length === 1 ? '' : 's'}`;
    out += unsupported + invalid === 0 ? ', all carried over\n' : `, ${unsupported} unsupported, ${invalid} with bad values\n`;
    for (const a of m.annotations) {
      const value = a.value.includes('\n') ? '(multi-line)' : JSON.stringify(a.value.length > 60 ? `${a.value.slice(0, 57)}...` : a.value);
      out += `#   ${LABEL[a.status]}  ${a.annotation}: ${value} -> ${a.detail}\n`;
      const diff = differences.get(a.annotation.slice(a.annotation.lastIndexOf('/') + 1));
      if (a.status === 'approximated' && diff !== undefined) out += `#                 difference: ${diff}\n`;
    }
    for (const p of m.problems) out += `#   BAD VALUE     ${p}\n`;
    for (const n of m.notes) out += `#   note: ${n}\n`;
    for (const r of m.routes) out += `---\n${stringify(r, { lineWidth: 0 })}`;
    if (m.routes.length === 0) out += '#   (no WebSocketRoute: the Ingress has no Service backend)\n';
  }
  return out;
}
