// `wsgate serve --config PATH`: the data plane fed from YAML files. The numbered steps of a reload:
//  1. load every file (a parse error or an invalid object rejects the whole reload: the live table stays, as
//     `nginx -t` refuses a reload, and each problem is logged with file, kind, namespace/name and field);
//  2. translate (pure) into a table and statuses; statuses that are not all True are logged per object;
//  3. apply the table atomically; open connections keep what they were given.
import { readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createDataPlane, type PlaneOptions } from '../cluster/plane.ts';
import type { DataPlane } from '../dataplane.ts';
import { loadConfig, watchConfig } from '../sources/files.ts';
import { snapshotFromObjects } from '../translate/objects.ts';
import type { TranslateResult } from '../translate/snapshot.ts';
import { translate } from '../translate/translate.ts';

export interface ServeOptions extends PlaneOptions {
  readonly configPath: string;
  readonly ingressClass: string;
  /** Debounce of file changes (ms). */
  readonly debounceMs?: number;
}

export interface Server {
  readonly plane: DataPlane;
  /** Re-reads the configuration now; resolves when the result is live (or refused). */
  reload(): Promise<boolean>;
  stop(graceMs?: number): Promise<void>;
}

export async function serve(o: ServeOptions): Promise<Server> {
  const log = o.log.child({ component: 'serve' });
  const plane = createDataPlane(o);
  await plane.start();
  let reloading: Promise<boolean> = Promise.resolve(true);
  const state = { applied: false };
  const reload = (): Promise<boolean> => {
    reloading = reloading.then(() => reloadOnce(o, plane, state, log, o.metrics));
    return reloading;
  };
  await reload();
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

async function reloadOnce(
  o: ServeOptions,
  plane: DataPlane,
  state: { applied: boolean },
  log: Logger,
  metrics: Metrics,
): Promise<boolean> {
  try {
    const { objects, problems } = await loadConfig(o.configPath);
    if (problems.length > 0) {
      for (const p of problems) log.error(p, 'invalid configuration');
      // The first load has no last good configuration to keep: serve what is valid rather than nothing.
      if (state.applied) {
        metrics.configReloads.inc({ result: 'failure' });
        metrics.configLastReloadSuccessful.set(0);
        log.error({ problems: problems.length }, 'configuration rejected; the last good configuration keeps serving');
        return false;
      }
    }
    const result = translate(snapshotFromObjects(objects, o.ingressClass));
    logStatuses(result, log);
    const { certificateErrors } = await plane.apply(result.table);
    state.applied = true;
    for (const e of certificateErrors) log.error(e, 'certificate not loaded');
    metrics.configReloads.inc({ result: problems.length > 0 ? 'failure' : 'success' });
    metrics.configLastReloadSuccessful.set(problems.length > 0 ? 0 : 1);
    if (problems.length === 0) metrics.configLastReloadSuccess.set(Date.now() / 1000);
    log.info(
      { virtualHosts: result.table.virtualHosts.length, tunnels: result.table.tunnels.length },
      'routing table applied',
    );
    return problems.length === 0;
  } catch (err) {
    metrics.configReloads.inc({ result: 'failure' });
    metrics.configLastReloadSuccessful.set(0);
    log.error({ err }, 'reload failed; the last good configuration keeps serving');
    return false;
  }
}

/** One line per object whose conditions are not all True, naming it and each failing condition. */
export function logStatuses(result: TranslateResult, log: Logger): void {
  for (const s of result.statuses) {
    for (const c of s.conditions) {
      if (c.status === 'True') continue;
      log.warn(
        { kind: s.kind, namespace: s.namespace, name: s.name, condition: c.type, reason: c.reason, message: c.message },
        'object not fully accepted',
      );
    }
  }
}

export function readPemFile(path: string): string {
  return readFileSync(path, 'utf8');
}
