// The chart tests' access to helm (built from the upstream Go module by scripts/helm/build.sh, never mocked) and to
// what it renders. A missing binary is a failure that says how to build it, never a skip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const chartDir = join(repoRoot, 'charts', 'wsgate');
export const ciDir = join(chartDir, 'ci');

/** The version in scripts/helm/versions.env and where build.sh caches it (or $WSGATE_HELM). */
export function helmBinary(): { version: string; path: string } {
  const env = readFileSync(join(repoRoot, 'scripts', 'helm', 'versions.env'), 'utf8');
  const version = /^HELM_VERSION=(\S+)$/m.exec(env)?.[1];
  if (version === undefined) throw new Error('scripts/helm/versions.env: no HELM_VERSION line');
  const cache = process.env.WSGATE_CACHE ?? join(homedir(), '.cache', 'wsgate');
  return { version, path: process.env.WSGATE_HELM ?? join(cache, 'helm', version, 'helm') };
}

/** The helm binary's path; throws when it has not been built. */
export function helmPath(): string {
  const { version, path } = helmBinary();
  if (!existsSync(path)) throw new Error(`helm ${version} not found at ${path}: run scripts/helm/build.sh`);
  return path;
}

/**
 * Runs helm; the exit status and both outputs, whatever the status. Each call gets fresh, empty helm cache, config
 * and data directories: no repository, plugin or cached API discovery from another run leaks in.
 */
export function helm(args: readonly string[]): { status: number; stdout: string; stderr: string } {
  const home = mkdtempSync(join(tmpdir(), 'wsgate-helm-home-'));
  try {
    const env = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
    const r = spawnSync(helmPath(), args, { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw r.error;
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A Kubernetes object as rendered: only what the assertions read is typed. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RenderOptions {
  /** Values, as a values file would give them (merged after `valuesFiles`). */
  readonly values?: Record<string, unknown>;
  /** Values files, e.g. a ci/ scenario. */
  readonly valuesFiles?: readonly string[];
  /** `--api-versions`: APIs the rendered-for cluster has beyond helm's built-in list. */
  readonly apiVersions?: readonly string[];
  readonly release?: string;
  readonly namespace?: string;
  readonly includeCrds?: boolean;
}

function templateArgs(o: RenderOptions, dir: string): string[] {
  const args = ['template', o.release ?? 'wsgate', chartDir, '--namespace', o.namespace ?? 'wsgate'];
  for (const f of o.valuesFiles ?? []) args.push('--values', f);
  if (o.values !== undefined) {
    const file = join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(o.values));
    args.push('--values', file);
  }
  for (const a of o.apiVersions ?? []) args.push('--api-versions', a);
  if (o.includeCrds === true) args.push('--include-crds');
  return args;
}

/** `helm template` with these values; throws with helm's message when it fails. */
export function renderText(o: RenderOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-chart-'));
  try {
    const r = helm(templateArgs(o, dir));
    if (r.status !== 0) throw new Error(`helm template failed (exit ${r.status}): ${r.stderr.trim()}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` parsed: every non-empty document. */
export function render(o: RenderOptions = {}): Manifest[] {
  return parseManifests(renderText(o));
}

/** helm's stderr when rendering fails; throws when it renders. */
export function renderError(o: RenderOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-chart-'));
  try {
    const r = helm(templateArgs(o, dir));
    if (r.status === 0) throw new Error('helm template succeeded; expected it to fail');
    return r.stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function parseManifests(text: string): Manifest[] {
  const docs = parseAllDocuments(text);
  const out: Manifest[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message ?? ''}`);
    const v = d.toJS({ maxAliasCount: -1 }) as Manifest | null;
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

/** The one object of this kind (and name, when given); throws when there is not exactly one. */
export function one(ms: readonly Manifest[], kind: string, name?: string): Manifest {
  const found = ms.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length} (${ms.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')})`);
  }
  return found[0]!;
}

export function kinds(ms: readonly Manifest[]): string[] {
  return ms.map((m) => m.kind);
}

/** The ci/*-values.yaml scenarios, by name (`default`, `all-options`, ...). */
export function scenarios(): { name: string; file: string }[] {
  return readdirSync(ciDir)
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => ({ name: f.replace(/-values\.yaml$/, ''), file: join(ciDir, f) }));
}

// Typed views of the workload, for assertions.
export interface Container {
  name: string;
  image: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  securityContext: Record<string, unknown>;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  volumeMounts?: { name: string; mountPath: string }[];
}
export interface PodSpec {
  serviceAccountName: string;
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  containers: Container[];
  affinity?: { podAntiAffinity?: Record<string, unknown> };
  volumes?: { name: string; secret?: { secretName: string } }[];
}

export function podSpec(m: Manifest): PodSpec {
  return (m.spec as { template: { spec: PodSpec } }).template.spec;
}

export function container(m: Manifest): Container {
  const c = podSpec(m).containers.find((x) => x.name === 'wsgate');
  if (c === undefined) throw new Error(`${m.kind} has no wsgate container`);
  return c;
}

/** The value of `--flag=value` in the container's args; undefined when absent. */
export function flag(m: Manifest, name: string): string | undefined {
  const prefix = `--${name}=`;
  return container(m).args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}
