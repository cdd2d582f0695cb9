// The file source: `wsgate serve --config PATH` reads the objects a cluster would hold from YAML, and watches
// PATH for changes. PATH is one file, or a directory whose `*.yaml`/`*.yml` files (not recursive, not hidden) are
// read in name order. Each file holds any number of YAML documents; a document is one object or a `kind: List`.
//
// Bad input is data (see docs/errors.md): a file that is not YAML is one WSGATE_ERR_CONFIG_PARSE problem and
// contributes nothing; an object that does not validate is one WSGATE_ERR_CONFIG_INVALID problem and is skipped
// while the others load. The caller decides what to do with problems (e.g. keep the last good configuration).
import { statSync, watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ErrorCodes } from '../errors.ts';
import { CLUSTER_SCOPED_KINDS, validateObject } from '../api/validate.ts';

export interface ConfigProblem {
  /** The file the problem is in (the path as given, or joined to the directory given). */
  file: string;
  kind?: string;
  namespace?: string;
  name?: string;
  /** Path of the offending field, e.g. `spec.rules[0].backends[1].port`. */
  field?: string;
  message: string;
  code: typeof ErrorCodes.CONFIG_PARSE | typeof ErrorCodes.CONFIG_INVALID;
}

export interface LoadResult {
  /**
   * The valid objects in file order, with `metadata.namespace` defaulted to "default" (namespaced kinds) and
   * `metadata.creationTimestamp` a Date: as given, or else the epoch plus one second per object in file order,
   * so that an object earlier in the configuration counts as older (precedence ties go to the oldest).
   */
  objects: unknown[];
  problems: ConfigProblem[];
  /** The files read: the path itself, or the configuration files of the directory (none in an empty one). */
  files: string[];
}

export const DEFAULT_NAMESPACE = 'default';

/** Documents a single file may hold, and YAML aliases a document may expand: bounds on what a file can cost. */
const MAX_DOCUMENTS_PER_FILE = 10_000;
const MAX_ALIAS_COUNT = 100;

/** Reads the configuration at `path` (a file or a directory). Never rejects: every failure is a problem. */
export async function loadConfig(path: string): Promise<LoadResult> {
  const result: LoadResult = { objects: [], problems: [], files: [] };
  let files: string[];
  try {
    files = await configFiles(path);
  } catch (err) {
    result.problems.push({ file: path, message: `cannot read: ${errorMessage(err)}`, code: ErrorCodes.CONFIG_PARSE });
    return result;
  }
  result.files = files;
  const seen = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      result.problems.push({ file, message: `cannot read: ${errorMessage(err)}`, code: ErrorCodes.CONFIG_PARSE });
      continue;
    }
    const docs = parseFile(file, text, result.problems);
    for (const doc of docs) {
      for (const { obj, where } of flattenList(doc)) addObject(file, obj, where, seen, result);
    }
  }
  return result;
}

/** The files a configuration path stands for, in the order they are read. */
async function configFiles(path: string): Promise<string[]> {
  const st = await stat(path);
  if (!st.isDirectory()) return [path];
  const names = (await readdir(path))
    .filter(isConfigFileName)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)); // code-unit order, independent of locale
  const files: string[] = [];
  for (const name of names) {
    const file = join(path, name);
    // stat follows symlinks: a ConfigMap volume's files are symlinks into its `..data` directory.
    const s = await stat(file).catch(() => undefined);
    if (s?.isFile() === true) files.push(file);
  }
  return files;
}

/** A name in a configuration directory that is read: `*.yaml` or `*.yml`, not hidden. */
export function isConfigFileName(name: string): boolean {
  return !name.startsWith('.') && (name.endsWith('.yaml') || name.endsWith('.yml'));
}

/**
 * A change in a configuration directory that may change what is read: a configuration file, or `..data`, the
 * symlink a ConfigMap or Secret volume swaps to publish new files at once (its `*.yaml` names are symlinks through
 * it and see no event of their own). Unknown (null) counts. Anything else (a log file, an editor's swap file, a
 * temporary name before its rename) does not.
 */
export function isConfigChange(filename: string | Buffer | null): boolean {
  if (filename === null) return true;
  const name = filename.toString();
  return name === '..data' || isConfigFileName(name);
}

/** The file's documents as plain values, or none at all when any of it is not YAML. */
function parseFile(file: string, text: string, problems: ConfigProblem[]): unknown[] {
  const docs = parseAllDocuments(text); // prettyErrors (the default) sets linePos
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err !== undefined) {
      const at = err.linePos?.[0];
      const where = at === undefined ? '' : ` at line ${at.line}, column ${at.col}`;
      const what = firstLine(err.message).replace(/ at line \d+, column \d+:?$/, '');
      problems.push({ file, message: `YAML syntax error${where}: ${what}`, code: ErrorCodes.CONFIG_PARSE });
      return [];
    }
  }
  if (list.length > MAX_DOCUMENTS_PER_FILE) {
    problems.push({ file, message: `more than ${MAX_DOCUMENTS_PER_FILE} documents`, code: ErrorCodes.CONFIG_PARSE });
    return [];
  }
  const values: unknown[] = [];
  for (const doc of list) {
    try {
      const value: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      if (value !== null && value !== undefined) values.push(value); // an empty document (`---` alone) is nothing
    } catch (err) {
      problems.push({ file, message: `YAML error: ${firstLine(errorMessage(err))}`, code: ErrorCodes.CONFIG_PARSE });
      return [];
    }
  }
  return values;
}

/** A `kind: List` document stands for its items; `where` prefixes field paths so that errors point into it. */
function flattenList(doc: unknown): Array<{ obj: unknown; where: string }> {
  if (!isRecord(doc) || doc.kind !== 'List' || !Array.isArray(doc.items)) return [{ obj: doc, where: '' }];
  return (doc.items as unknown[]).map((obj, i) => ({ obj, where: `items[${i}]` }));
}

function addObject(file: string, obj: unknown, where: string, seen: Map<string, string>, result: LoadResult): void {
  const id = identity(obj);
  const errors = validateObject(obj);
  if (errors.length > 0) {
    for (const e of errors) {
      const field = [where, e.field].filter((s) => s !== '').join('.');
      const problem: ConfigProblem = { file, ...id, message: e.message, code: ErrorCodes.CONFIG_INVALID };
      if (field !== '') problem.field = field;
      result.problems.push(problem);
    }
    return;
  }
  // Valid, so a record with a known kind and a metadata.name; copy before defaulting, never change the input.
  const copy = structuredClone(obj) as { kind: string; metadata: { name: string; namespace?: string; creationTimestamp?: unknown } };
  const meta = copy.metadata;
  if (!CLUSTER_SCOPED_KINDS.has(copy.kind) && meta.namespace === undefined) meta.namespace = DEFAULT_NAMESPACE;
  const key = `${copy.kind}/${meta.namespace ?? ''}/${meta.name}`;
  const first = seen.get(key);
  if (first !== undefined) {
    result.problems.push({
      file,
      ...identity(copy),
      field: where === '' ? 'metadata.name' : `${where}.metadata.name`,
      message: `duplicate object: already defined in ${first}; the first definition is used`,
      code: ErrorCodes.CONFIG_INVALID,
    });
    return;
  }
  seen.set(key, file);
  const ts = meta.creationTimestamp;
  meta.creationTimestamp =
    ts instanceof Date ? ts : typeof ts === 'string' ? new Date(ts) : new Date(result.objects.length * 1000);
  result.objects.push(copy);
}

/** kind/namespace/name of whatever `obj` is, as far as they are strings, for naming it in a problem. */
function identity(obj: unknown): Pick<ConfigProblem, 'kind' | 'namespace' | 'name'> {
  const id: Pick<ConfigProblem, 'kind' | 'namespace' | 'name'> = {};
  if (!isRecord(obj)) return id;
  if (typeof obj.kind === 'string') id.kind = obj.kind;
  const meta = obj.metadata;
  if (isRecord(meta)) {
    if (typeof meta.namespace === 'string') id.namespace = meta.namespace;
    else if (id.kind !== undefined && !CLUSTER_SCOPED_KINDS.has(id.kind)) id.namespace = DEFAULT_NAMESPACE;
    if (typeof meta.name === 'string') id.name = meta.name;
  }
  return id;
}

export interface WatchOptions {
  /** [debounceMs=200] Quiet time, in milliseconds, after the last change before onChange is called. */
  debounceMs?: number;
  /** [maxDelayMs=2000] Longest time, in milliseconds, from a first change to onChange, however busy the files. */
  maxDelayMs?: number;
}

/**
 * Calls `onChange` after `path` (a file or a directory of files) changes, once per burst of changes.
 *
 * fs.watch follows inodes, and both editors (write a temporary file, rename it over the original) and
 * ConfigMap volumes (swap a symlinked directory) replace the inode under the name. So:
 *  1. The parent directory is watched, filtered to `basename(path)`: it sees a file written, replaced, deleted
 *     or created, and a directory at `path` being replaced.
 *  2. When `path` is a directory, it is watched as well, for its configuration files only (isConfigChange): a log
 *     file written next to them is no change. That watcher is re-armed on every parent event, so that a directory
 *     that was removed and made again is watched anew.
 *  3. A watcher that fails (or a parent directory that does not exist yet) is retried every maxDelayMs; the
 *     failure, and a successful re-arm, each count as a change.
 * onChange is not told what changed: the caller reloads everything, which is what keeps reloads simple (and skips
 * the apply when the objects read are the same as last time).
 */
export function watchConfig(path: string, onChange: () => void, opts: WatchOptions = {}): { close(): void } {
  const debounceMs = opts.debounceMs ?? 200;
  const maxDelayMs = opts.maxDelayMs ?? 2000;
  const parentDir = dirname(path);
  const name = basename(path);
  let closed = false;
  let parentWatcher: FSWatcher | undefined;
  let innerWatcher: FSWatcher | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let firstChangeAt = 0;

  function changed(): void {
    if (closed) return;
    const now = Date.now();
    if (debounceTimer === undefined) firstChangeAt = now;
    else clearTimeout(debounceTimer);
    const delay = Math.max(0, Math.min(debounceMs, firstChangeAt + maxDelayMs - now));
    debounceTimer = setTimeout(fire, delay);
  }

  function fire(): void {
    debounceTimer = undefined;
    if (!closed) onChange();
  }

  function parentOnEvent(_event: string, filename: string | Buffer | null): void {
    if (filename !== null && filename.toString() !== name) return;
    armInner();
    changed();
  }

  function armInner(): void {
    innerWatcher?.close();
    innerWatcher = undefined;
    if (closed || !isDirectory(path)) return;
    try {
      const w = watch(path, (_event, filename) => {
        if (isConfigChange(filename)) changed();
      });
      w.on('error', () => watcherOnError(w));
      innerWatcher = w;
    } catch {
      // Gone again between the stat and the watch: the parent watcher sees it come back.
    }
  }

  function armParent(): void {
    parentWatcher?.close();
    parentWatcher = undefined;
    if (closed) return;
    try {
      const w = watch(parentDir, parentOnEvent);
      w.on('error', () => watcherOnError(w));
      parentWatcher = w;
    } catch {
      scheduleRetry();
    }
  }

  function watcherOnError(w: FSWatcher): void {
    w.close();
    if (w === parentWatcher) parentWatcher = undefined;
    if (w === innerWatcher) innerWatcher = undefined;
    changed();
    scheduleRetry();
  }

  function scheduleRetry(): void {
    if (closed || retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (parentWatcher === undefined) armParent(); // on failure, schedules the next retry
      if (parentWatcher === undefined) return;
      armInner();
      changed(); // whatever happened while unwatched
    }, maxDelayMs);
  }

  armParent();
  armInner();

  return {
    close(): void {
      closed = true;
      clearTimeout(debounceTimer);
      clearTimeout(retryTimer);
      parentWatcher?.close();
      innerWatcher?.close();
      parentWatcher = undefined;
      innerWatcher = undefined;
    },
  };
}

/** Synchronous, but only on a watch event or a retry: one stat of a local path. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? s;
}
