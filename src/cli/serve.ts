// `wsgate serve --config PATH`: the data plane fed from YAML files.
//
// The start, in order (nothing listens before it can route):
//  1. load every file and translate. A first load with problems refuses to start (ConfigInvalidError, exit 2, every
//     problem listed) unless `allowInvalidConfig` says to serve the objects that are valid;
//  2. start the plane (ports checked, admin server up), apply the first table; the listeners bind with it.
//
// The numbered steps of a reload:
//  1. load every file (a parse error or an invalid object rejects the whole reload: the live table stays, as
//     `nginx -t` refuses a reload, and each problem is logged with file, kind, namespace/name and field). A load
//     that reads the same objects and problems as the last one is a no-op: not counted, logged at debug only;
//  2. translate (pure) into a table and statuses; statuses that are not all True are logged per object;
//  3. apply the table atomically; open connections keep what they were given.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createDataPlane, type PlaneOptions } from '../cluster/plane.ts';
import type { DataPlane } from '../dataplane.ts';
import { loadConfig, watchConfig, type ConfigProblem, type LoadResult } from '../sources/files.ts';
import { snapshotFromObjects } from '../translate/objects.ts';
import type { TranslateResult } from '../translate/snapshot.ts';
import { needsAttention } from '../translate/conditions.ts';
import { translate } from '../translate/translate.ts';

export interface ServeOptions extends PlaneOptions {
  readonly configPath: string;
  readonly ingressClass: string;
  /** [watchIngressWithoutClass=false] Serve Ingresses that name no class too. */
  readonly watchIngressWithoutClass?: boolean;
  /** Debounce of file changes (ms). */
  readonly debounceMs?: number;
  /**
   * [allowInvalidConfig=false] Start even when the first load has problems, serving the objects that are valid
   * (`--allow-invalid-config`). Without it such a start fails with ConfigInvalidError.
   */
  readonly allowInvalidConfig?: boolean;
}

export interface Server {
  readonly plane: DataPlane;
  /** Re-reads the configuration now; resolves when the result is live (or refused, or unchanged). */
  reload(): Promise<boolean>;
  stop(graceMs?: number): Promise<void>;
}

/** The first load has problems: nothing was started. `problems` are every one of them; the message lists them. */
export class ConfigInvalidError extends WsgateError {
  readonly problems: readonly ConfigProblem[];
  constructor(path: string, problems: readonly ConfigProblem[]) {
    super(
      ErrorCodes.CONFIG_INVALID,
      `${path}: ${problems.length} configuration problem${problems.length === 1 ? '' : 's'}; fix ${problems.length === 1 ? 'it' : 'them'}, ` +
        `or pass --allow-invalid-config to serve the objects that are valid:\n${problems.map((p) => `  ${describeProblem(p)}`).join('\n')}`,
    );
    this.name = 'ConfigInvalidError';
    this.problems = problems;
  }
}

/** `CODE file kind namespace/name field: message`, leaving out what is unknown. */
export function describeProblem(p: ConfigProblem): string {
  const who = p.namespace !== undefined && p.name !== undefined ? `${p.namespace}/${p.name}` : p.name;
  const where = [p.file, p.kind, who, p.field].filter((s) => s !== undefined && s !== '').join(' ');
  return `${p.code} ${where}: ${p.message}`;
}

/** What a load read, as far as it decides what a reload does. */
interface LoadState {
  readonly objects: unknown[];
  readonly problems: ConfigProblem[];
  readonly empty: boolean;
}

interface ReloadState {
  /** The last load that was acted on: a load that reads the same is a no-op. */
  last: LoadState | undefined;
}

function loadState(r: LoadResult): LoadState {
  return { objects: r.objects, problems: r.problems, empty: r.files.length === 0 && r.problems.length === 0 };
}

export async function serve(o: ServeOptions): Promise<Server> {
  const log = o.log.child({ component: 'serve' });
  // Start step 1.
  const first = await loadConfig(o.configPath);
  reportLoad(first, o.configPath, log);
  if (first.problems.length > 0 && o.allowInvalidConfig !== true) throw new ConfigInvalidError(o.configPath, first.problems);
  const result = translate(snapshotFromObjects(first.objects, o.ingressClass, o.watchIngressWithoutClass === true));
  logStatuses(result, log);
  // Start step 2.
  const plane = createDataPlane(o);
  try {
    await plane.start();
    await applyResult(plane, result, first.problems, log, o.metrics);
  } catch (err) {
    await plane.stop().catch(() => {});
    throw err;
  }
  const state: ReloadState = { last: loadState(first) };
  let reloading: Promise<boolean> = Promise.resolve(first.problems.length === 0);
  const reload = (): Promise<boolean> => {
    reloading = reloading.then(() => reloadOnce(o, plane, state, log, o.metrics));
    return reloading;
  };
  const watcher = watchConfig(o.configPath, () => void reload(), o.debounceMs === undefined ? {} : { debounceMs: o.debounceMs });
  return {
    plane,
    reload,
    async stop(graceMs = 0) {
      watcher.close();
      await reloading;
      await plane.stop(graceMs);
    },
  };
}

/** Problems at error level, each naming where it is; a directory without configuration files at warn. */
function reportLoad(r: LoadResult, path: string, log: Logger): void {
  for (const p of r.problems) log.error(p, 'invalid configuration');
  if (r.files.length === 0 && r.problems.length === 0) {
    log.warn({ directory: path }, 'no configuration file (*.yaml, *.yml) in the --config directory: serving no route');
  }
}

/** Applies a translated table and records the reload's result; problems (allowed at start only) make it a failure. */
async function applyResult(plane: DataPlane, result: TranslateResult, problems: readonly ConfigProblem[], log: Logger, metrics: Metrics): Promise<void> {
  const { certificateErrors } = await plane.apply(result.table);
  for (const e of certificateErrors) log.error(e, 'certificate not loaded');
  metrics.configReloads.inc({ result: problems.length > 0 ? 'failure' : 'success' });
  metrics.configLastReloadSuccessful.set(problems.length > 0 ? 0 : 1);
  if (problems.length === 0) metrics.configLastReloadSuccess.set(Date.now() / 1000);
  log.info({ virtualHosts: result.table.virtualHosts.length, tunnels: result.table.tunnels.length }, 'routing table applied');
}

async function reloadOnce(o: ServeOptions, plane: DataPlane, state: ReloadState, log: Logger, metrics: Metrics): Promise<boolean> {
  try {
    const loaded = await loadConfig(o.configPath);
    const now = loadState(loaded);
    if (state.last !== undefined && isDeepStrictEqual(now, state.last)) {
      log.debug('configuration unchanged: nothing to apply');
      return now.problems.length === 0;
    }
    reportLoad(loaded, o.configPath, log);
    if (loaded.problems.length > 0) {
      metrics.configReloads.inc({ result: 'failure' });
      metrics.configLastReloadSuccessful.set(0);
      log.error({ problems: loaded.problems.length }, 'configuration rejected; the last good configuration keeps serving');
      state.last = now;
      return false;
    }
    const result = translate(snapshotFromObjects(loaded.objects, o.ingressClass, o.watchIngressWithoutClass === true));
    logStatuses(result, log);
    await applyResult(plane, result, [], log, metrics);
    state.last = now;
    return true;
  } catch (err) {
    // Not recorded as read: the next change tries again.
    metrics.configReloads.inc({ result: 'failure' });
    metrics.configLastReloadSuccessful.set(0);
    log.error({ err }, 'reload failed; the last good configuration keeps serving');
    return false;
  }
}

/**
 * One line per object whose conditions are not all True, naming it and each failing condition; and one per
 * condition that is True with a warning (an unsupported annotation: nothing is ignored silently).
 */
export function logStatuses(result: TranslateResult, log: Logger): void {
  for (const s of result.statuses) {
    for (const c of s.conditions) {
      if (!needsAttention(c)) continue;
      log.warn(
        { kind: s.kind, namespace: s.namespace, name: s.name, condition: c.type, reason: c.reason, message: c.message },
        c.status === 'True' ? 'object accepted with warnings' : 'object not fully accepted',
      );
    }
  }
}

export function readPemFile(path: string): string {
  return readFileSync(path, 'utf8');
}
