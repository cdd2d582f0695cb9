import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadConfig, watchConfig, type ConfigProblem } from '../../src/sources/files.ts';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-files-'));
  roots.push(dir);
  return dir;
}

/** Writes `docs` as one multi-document YAML file and returns its path. */
function writeYaml(dir: string, name: string, ...docs: unknown[]): string {
  const path = join(dir, name);
  writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
  return path;
}

function service(name: string, namespace?: string): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Service', metadata: namespace === undefined ? { name } : { name, namespace }, spec: { ports: [{ port: 80 }] } };
}

function tunnel(name: string, port: unknown = 5432): Record<string, unknown> {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'TCPTunnel',
    metadata: { name, namespace: 'db' },
    spec: { port: 5432, backends: [{ service: 'postgres', port }] },
  };
}

function names(objects: unknown[]): string[] {
  return objects.map((o) => {
    const { kind, metadata } = o as { kind: string; metadata: { namespace?: string; name: string } };
    return `${kind}/${metadata.namespace ?? ''}/${metadata.name}`;
  });
}

function timestamps(objects: unknown[]): number[] {
  return objects.map((o) => ((o as { metadata: { creationTimestamp: Date } }).metadata.creationTimestamp).getTime());
}

describe('loadConfig', () => {
  it('loads every document of a multi-document file, in order', async () => {
    const file = writeYaml(tempDir(), 'a.yaml', service('a'), tunnel('b'), service('c', 'web'));
    const { objects, problems } = await loadConfig(file);
    assert.deepEqual(problems, []);
    assert.deepEqual(names(objects), ['Service/default/a', 'TCPTunnel/db/b', 'Service/web/c']);
  });

  it('reads the *.yaml and *.yml files of a directory in name order, skipping other and hidden files', async () => {
    const dir = tempDir();
    writeYaml(dir, 'b.yml', service('from-b'));
    writeYaml(dir, 'a.yaml', service('from-a'));
    writeYaml(dir, 'c.json', service('from-json'));
    writeYaml(dir, '.#a.yaml', service('from-lock-file'));
    mkdirSync(join(dir, 'sub.yaml'));
    writeYaml(join(dir, 'sub.yaml'), 'nested.yaml', service('from-subdirectory'));
    const { objects, problems } = await loadConfig(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(names(objects), ['Service/default/from-a', 'Service/default/from-b']);
  });

  it('defaults metadata.namespace to "default" for namespaced kinds only', async () => {
    const ingressClass = { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'wsgate' }, spec: { controller: 'wsgate.io/ingress-controller' } };
    const file = writeYaml(tempDir(), 'a.yaml', service('a'), ingressClass);
    const { objects } = await loadConfig(file);
    assert.deepEqual(names(objects), ['Service/default/a', 'IngressClass//wsgate']);
  });

  it('gives objects without a creationTimestamp one that makes earlier objects older', async () => {
    const dir = tempDir();
    writeYaml(dir, 'a.yaml', service('first'), service('second'));
    writeYaml(dir, 'b.yaml', service('third'));
    const first = await loadConfig(dir);
    const again = await loadConfig(dir);
    const ts = timestamps(first.objects);
    assert.deepEqual(ts, [...ts].sort((x, y) => x - y));
    assert.equal(new Set(ts).size, 3);
    assert.deepEqual(timestamps(again.objects), ts, 'the same files give the same timestamps');
  });

  it('keeps a creationTimestamp the file gives, as a Date', async () => {
    const svc = service('a');
    (svc.metadata as Record<string, unknown>).creationTimestamp = '2024-05-01T10:00:00Z';
    const { objects } = await loadConfig(writeYaml(tempDir(), 'a.yaml', svc));
    assert.deepEqual(timestamps(objects), [Date.parse('2024-05-01T10:00:00Z')]);
  });

  it('reports a YAML syntax error with the file name and line, and loads the other files', async () => {
    const dir = tempDir();
    const bad = join(dir, 'a.yaml');
    writeFileSync(bad, `${stringify(service('in-bad-file'))}---\nkind: Service\nmetadata: {name: [oops\n`);
    writeYaml(dir, 'b.yaml', service('good'));
    const { objects, problems } = await loadConfig(dir);
    assert.deepEqual(names(objects), ['Service/default/good'], 'nothing of a file that is not YAML loads');
    assert.equal(problems.length, 1);
    const [p] = problems as [ConfigProblem];
    assert.equal(p.file, bad);
    assert.equal(p.code, 'WSGATE_ERR_CONFIG_PARSE');
    assert.match(p.message, /YAML syntax error at line \d+, column \d+/);
  });

  it('reports an invalid object with its file, kind, namespace, name and field, and loads the others', async () => {
    const file = writeYaml(tempDir(), 'a.yaml', service('before'), tunnel('broken', 70000), service('after'));
    const { objects, problems } = await loadConfig(file);
    assert.deepEqual(names(objects), ['Service/default/before', 'Service/default/after']);
    assert.deepEqual(problems, [
      {
        file,
        kind: 'TCPTunnel',
        namespace: 'db',
        name: 'broken',
        field: 'spec.backends[0].port',
        message: 'invalid value 70000: must be less than or equal to 65535',
        code: 'WSGATE_ERR_CONFIG_INVALID',
      },
    ]);
  });

  it('skips an object of an unknown kind with a problem', async () => {
    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: {} };
    const file = writeYaml(tempDir(), 'a.yaml', configMap, service('a'));
    const { objects, problems } = await loadConfig(file);
    assert.deepEqual(names(objects), ['Service/default/a']);
    assert.equal(problems.length, 1);
    assert.deepEqual(
      [problems[0]?.kind, problems[0]?.name, problems[0]?.field, problems[0]?.code],
      ['ConfigMap', 'cm', 'kind', 'WSGATE_ERR_CONFIG_INVALID'],
    );
  });

  it('loads the items of a kind: List, pointing problems into the list', async () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [service('a'), tunnel('t', 0)] };
    const file = writeYaml(tempDir(), 'a.yaml', list);
    const { objects, problems } = await loadConfig(file);
    assert.deepEqual(names(objects), ['Service/default/a']);
    assert.deepEqual(problems.map((p) => p.field), ['items[1].spec.backends[0].port']);
  });

  it('ignores empty documents', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.yaml'), `---\n# only a comment\n---\n${stringify(service('a'))}---\n`);
    const { objects, problems } = await loadConfig(join(dir, 'a.yaml'));
    assert.deepEqual(problems, []);
    assert.deepEqual(names(objects), ['Service/default/a']);
  });

  it('keeps the first of two objects with the same kind, namespace and name, with a problem', async () => {
    const dir = tempDir();
    const first = writeYaml(dir, 'a.yaml', service('a'));
    const second = writeYaml(dir, 'b.yaml', service('a', 'default'));
    const { objects, problems } = await loadConfig(dir);
    assert.equal(objects.length, 1);
    assert.deepEqual(
      problems.map((p) => [p.file, p.name, p.code]),
      [[second, 'a', 'WSGATE_ERR_CONFIG_INVALID']],
    );
    assert.match(problems[0]?.message ?? '', new RegExp(`already defined in ${first}`));
  });

  it('refuses YAML that expands aliases without bound', async () => {
    const dir = tempDir();
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    writeFileSync(join(dir, 'bomb.yaml'), `${lines.join('\n')}\n`);
    const { objects, problems } = await loadConfig(dir);
    assert.deepEqual(objects, []);
    assert.deepEqual(problems.map((p) => p.code), ['WSGATE_ERR_CONFIG_PARSE']);
  });

  it('lists the files it read, and none for a directory without configuration files', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'README.txt'), 'not configuration');
    assert.deepEqual(await loadConfig(dir), { objects: [], problems: [], files: [] });
    const file = writeYaml(dir, 'a.yaml', service('a'));
    assert.deepEqual((await loadConfig(dir)).files, [file]);
    assert.deepEqual((await loadConfig(file)).files, [file]);
  });

  it('reports a path that does not exist as a problem, not an exception', async () => {
    const missing = join(tempDir(), 'nope.yaml');
    const { objects, problems } = await loadConfig(missing);
    assert.deepEqual(objects, []);
    assert.deepEqual(problems.map((p) => [p.file, p.code]), [[missing, 'WSGATE_ERR_CONFIG_PARSE']]);
  });

  it('does not change the objects it was given between loads', async () => {
    const file = writeYaml(tempDir(), 'a.yaml', service('a'));
    const before = readFileSync(file, 'utf8');
    await loadConfig(file);
    assert.equal(readFileSync(file, 'utf8'), before);
  });
});

/** Counts onChange calls and lets a test wait for the next one (or for the n-th) without sleeping. */
function changeRecorder(): { onChange: () => void; count: () => number; next: () => Promise<number> } {
  let calls = 0;
  let waiters: Array<(n: number) => void> = [];
  return {
    onChange() {
      calls++;
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve(calls);
    },
    count: () => calls,
    next: () => new Promise((resolve) => waiters.push(resolve)),
  };
}

describe('watchConfig', { timeout: 20_000 }, () => {
  it('calls onChange once for a burst of 20 writes', async (t) => {
    const dir = tempDir();
    const file = writeYaml(dir, 'config.yaml', service('v0'));
    const rec = changeRecorder();
    const w = watchConfig(file, rec.onChange, { debounceMs: 300, maxDelayMs: 60_000 });
    t.after(() => w.close());
    const first = rec.next();
    for (let i = 1; i <= 20; i++) await writeFile(file, stringify(service(`v${i}`)));
    assert.equal(await first, 1);
    // Quiet check: a later change of ours is the second call, so the burst made no call after the first.
    const second = rec.next();
    await writeFile(file, stringify(service('marker')));
    assert.equal(await second, 2);
    assert.equal(rec.count(), 2);
  });

  it('calls onChange at least every maxDelayMs while writes never stop', async (t) => {
    const dir = tempDir();
    const file = writeYaml(dir, 'config.yaml', service('v0'));
    const rec = changeRecorder();
    const w = watchConfig(file, rec.onChange, { debounceMs: 60_000, maxDelayMs: 200 });
    t.after(() => w.close());
    let called = false;
    void rec.next().then(() => (called = true));
    let writes = 0;
    // Pacing, not synchronisation: the loop ends on the call, and fails if it never comes.
    while (!called) {
      assert.ok(writes < 1000, 'no call while writes kept coming');
      await writeFile(file, stringify(service(`v${++writes}`)));
      await delay(10);
    }
    assert.equal(rec.count(), 1);
  });

  it('keeps watching a file that an editor replaces by renaming a new one over it', async (t) => {
    const dir = tempDir();
    const file = writeYaml(dir, 'config.yaml', service('v0'));
    const rec = changeRecorder();
    const w = watchConfig(file, rec.onChange, { debounceMs: 50 });
    t.after(() => w.close());
    const replaced = rec.next();
    writeYaml(dir, '.config.yaml.swp', service('v1'));
    renameSync(join(dir, '.config.yaml.swp'), file);
    await replaced;
    const written = rec.next();
    await writeFile(file, stringify(service('v2')), { flag: 'w' });
    await written;
  });

  it('ignores changes to other files next to a watched file', async (t) => {
    const dir = tempDir();
    const file = writeYaml(dir, 'config.yaml', service('v0'));
    const rec = changeRecorder();
    const w = watchConfig(file, rec.onChange, { debounceMs: 50 });
    t.after(() => w.close());
    const next = rec.next();
    writeYaml(dir, 'other.yaml', service('elsewhere'));
    // The marker: a change to the watched file comes after the unrelated one and must be the first call.
    await writeFile(file, stringify(service('v1')));
    assert.equal(await next, 1);
  });

  it('sees files added to a watched directory, and a directory removed and made again', async (t) => {
    const parent = tempDir();
    const dir = join(parent, 'conf.d');
    mkdirSync(dir);
    const rec = changeRecorder();
    const w = watchConfig(dir, rec.onChange, { debounceMs: 50 });
    t.after(() => w.close());
    const added = rec.next();
    writeYaml(dir, 'a.yaml', service('a'));
    await added;
    const rewritten = rec.next();
    rmSync(dir, { recursive: true });
    mkdirSync(dir);
    await rewritten;
    // The new directory is watched: a file written into it is seen.
    const inNewDir = rec.next();
    writeYaml(dir, 'b.yaml', service('b'));
    await inNewDir;
  });

  it('starts watching a path whose directory does not exist yet once it appears', async (t) => {
    const parent = tempDir();
    const dir = join(parent, 'later');
    const rec = changeRecorder();
    const w = watchConfig(join(dir, 'config.yaml'), rec.onChange, { debounceMs: 20, maxDelayMs: 100 });
    t.after(() => w.close());
    const appeared = rec.next();
    mkdirSync(dir);
    await appeared;
    const written = rec.next();
    writeYaml(dir, 'config.yaml', service('a'));
    await written;
  });

  it('ignores files in a watched directory that are not configuration: a log file written 20 times is no change', async (t) => {
    const dir = tempDir();
    writeYaml(dir, 'config.yaml', service('v0'));
    const log = join(dir, 'wsgate.log');
    writeFileSync(log, '');
    const rec = changeRecorder();
    const w = watchConfig(dir, rec.onChange, { debounceMs: 10 });
    t.after(() => w.close());
    // The quiet check: a watcher of the log file itself with a longer debounce fires after the last write; had the
    // directory's watcher counted the writes, it would have fired first.
    const control = changeRecorder();
    const c = watchConfig(log, control.onChange, { debounceMs: 200 });
    t.after(() => c.close());
    const seen = control.next();
    for (let i = 0; i < 20; i++) appendFileSync(log, `line ${i}\n`);
    writeFileSync(join(dir, '.config.yaml.swp'), 'an editor swap file');
    writeFileSync(join(dir, 'notes.txt'), 'not configuration');
    await seen;
    assert.equal(rec.count(), 0, 'a file that is not configuration triggered onChange');
    // A configuration file is still seen.
    const next = rec.next();
    writeYaml(dir, 'more.yml', service('v1'));
    assert.equal(await next, 1);
  });

  it('sees a ConfigMap volume update: the ..data symlink swapped to a new directory of files', async (t) => {
    const dir = tempDir();
    // The kubelet's atomic writer: timestamped directories, `..data` pointing at the current one, and each key a
    // symlink through `..data`. An update writes a new directory and renames a new `..data_tmp` over `..data`.
    mkdirSync(join(dir, '..v1'));
    writeYaml(join(dir, '..v1'), 'config.yaml', service('v1'));
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/config.yaml', join(dir, 'config.yaml'));
    const rec = changeRecorder();
    const w = watchConfig(dir, rec.onChange, { debounceMs: 10 });
    t.after(() => w.close());
    const swapped = rec.next();
    mkdirSync(join(dir, '..v2'));
    writeYaml(join(dir, '..v2'), 'config.yaml', service('v2'));
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await swapped;
    assert.deepEqual(names((await loadConfig(dir)).objects), ['Service/default/v2']);
  });

  it('makes no call after close', async (t) => {
    const dir = tempDir();
    const file = writeYaml(dir, 'config.yaml', service('v0'));
    let closedCalls = 0;
    const closed = watchConfig(file, () => closedCalls++, { debounceMs: 10 });
    closed.close();
    // A live watcher with a longer debounce is the quiet check: had `closed` fired, it would have fired first.
    const control = changeRecorder();
    const w = watchConfig(file, control.onChange, { debounceMs: 200 });
    t.after(() => w.close());
    const next = control.next();
    await writeFile(file, stringify(service('v1')));
    await next;
    assert.equal(closedCalls, 0, 'a closed watcher called onChange');
  });
});
