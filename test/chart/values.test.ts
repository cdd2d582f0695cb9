// values.yaml, values.schema.json and the ci/ scenarios, checked with the real helm: every value documented, the
// schema and values.yaml listing the same keys, typos rejected, `helm lint --strict` clean on every scenario.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMap, isScalar, parseDocument, type YAMLMap } from 'yaml';
import { chartDir, helm, helmBinary, helmPath, renderError, scenarios } from './helm.ts';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  description?: string;
}

const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as JsonSchema;
const valuesDoc = parseDocument(readFileSync(join(chartDir, 'values.yaml'), 'utf8'));

/** Every key path of values.yaml with its comment, stopping at maps the schema leaves to Kubernetes. */
function valueKeys(map: YAMLMap, node: JsonSchema | undefined, prefix: string, out: Map<string, string>): void {
  for (const [i, pair] of map.items.entries()) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const path = prefix === '' ? key : `${prefix}.${key}`;
    // The yaml parser gives the comment above a map's first key to the map itself.
    const comment = (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (i === 0 ? map.commentBefore : undefined) ?? '';
    out.set(path, comment);
    const child = node?.properties?.[key];
    if (isMap(pair.value) && child?.properties !== undefined) valueKeys(pair.value, child, path, out);
  }
}

/** Every property path of the schema, and whether each node is a closed object. */
function schemaKeys(node: JsonSchema, prefix: string, out: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    out.push(path);
    if (child.properties !== undefined) schemaKeys(child, path, out);
  }
}

function closedObjects(node: JsonSchema, path: string, out: string[]): void {
  if (node.properties !== undefined && node.additionalProperties !== false) out.push(path);
  for (const [key, child] of Object.entries(node.properties ?? {})) closedObjects(child, `${path}.${key}`, out);
}

describe('the chart: values', () => {
  it('is built with the pinned helm, which can be run', () => {
    const { version } = helmBinary();
    helmPath();
    assert.equal(helm(['version', '--short']).stdout.trim().replace(/\+.*$/, ''), version);
  });

  it('deploys the wsgate version package.json names by default (appVersion)', () => {
    const pkg = JSON.parse(readFileSync(join(chartDir, '..', '..', 'package.json'), 'utf8')) as { version: string };
    assert.match(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'), new RegExp(`^appVersion: "${pkg.version.replace(/\./g, '\\.')}"$`, 'm'));
  });

  it('documents every value in values.yaml with a "# --" comment', () => {
    assert.ok(isMap(valuesDoc.contents));
    const keys = new Map<string, string>();
    valueKeys(valuesDoc.contents, schema, '', keys);
    // A map whose keys are themselves values (image, controller, ...) is a group; its leaves carry the comments.
    const groups = [...keys.keys()].filter((k) => [...keys.keys()].some((other) => other.startsWith(`${k}.`)));
    const undocumented = [...keys].filter(([k, c]) => !groups.includes(k) && !/^ -- \S/m.test(c)).map(([k]) => k);
    assert.deepEqual(undocumented, []);
  });

  it('lists in values.schema.json exactly the keys of values.yaml (plus Helm\'s global)', () => {
    assert.ok(isMap(valuesDoc.contents));
    const fromValues = new Map<string, string>();
    valueKeys(valuesDoc.contents, schema, '', fromValues);
    const fromSchema: string[] = [];
    schemaKeys(schema, '', fromSchema);
    assert.deepEqual([...fromValues.keys()].sort(), fromSchema.filter((k) => k !== 'global').sort());
  });

  it('closes every object of the schema it describes (additionalProperties: false), so typos are errors', () => {
    const open: string[] = [];
    closedObjects(schema, '<root>', open);
    assert.deepEqual(open, []);
  });

  it('gives every value a type in the schema', () => {
    const untyped: string[] = [];
    const walk = (node: JsonSchema, path: string): void => {
      if (node.type === undefined) untyped.push(path);
      for (const [k, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${k}`);
    };
    walk(schema, '<root>');
    assert.deepEqual(untyped, []);
  });

  it('keeps the defaults of values.yaml valid for the schema (helm template with no values renders)', () => {
    assert.equal(helm(['template', 'wsgate', chartDir]).status, 0);
  });

  const typos: [string, Record<string, unknown>, RegExp][] = [
    ['a misspelt top-level key', { replica: 3 }, /additional properties 'replica' not allowed/],
    ['a misspelt nested key', { controller: { ingresClass: 'x' } }, /at '\/controller': additional properties 'ingresClass' not allowed/],
    ['an unknown kind', { kind: 'StatefulSet' }, /at '\/kind'/],
    ['a string where a number goes', { ports: { http: { containerPort: '8080' } } }, /at '\/ports\/http\/containerPort'/],
    ['a duration without a unit helm cannot pass on', { controller: { debounce: 'soon' } }, /at '\/controller\/debounce'/],
    ['a tunnel without a port', { tunnels: [{ name: 'mqtt' }] }, /at '\/tunnels\/0'.*port/],
    ['a misspelt sidecar injector key', { sidecarInjector: { enable: true } }, /at '\/sidecarInjector': additional properties 'enable' not allowed/],
    ['a webhook failure policy Kubernetes does not know', { sidecarInjector: { failurePolicy: 'ignore' } }, /at '\/sidecarInjector\/failurePolicy'/],
    ['a webhook timeout over the API server\'s 30 s', { sidecarInjector: { timeoutSeconds: 60 } }, /at '\/sidecarInjector\/timeoutSeconds'/],
    ['a sidecar memory limit that is not a quantity', { sidecarInjector: { sidecar: { memoryLimit: '1 GB' } } }, /at '\/sidecarInjector\/sidecar\/memoryLimit'/],
    ['the drain timeout as a duration instead of seconds', { controller: { drain: { timeoutSeconds: '30s' } } }, /at '\/controller\/drain\/timeoutSeconds'/],
    ['the drain timeout where it was before drain: {...} (controller.drainTimeoutSeconds)', { controller: { drainTimeoutSeconds: 30 } }, /at '\/controller': additional properties 'drainTimeoutSeconds' not allowed/],
    ['a tunnel name longer than a port name may be', { tunnels: [{ name: 'a-very-long-tunnel-name', port: 9000 }] }, /at '\/tunnels\/0\/name'/],
  ];
  for (const [what, values, message] of typos) {
    it(`rejects ${what}`, () => {
      assert.match(renderError({ values }), message);
    });
  }

  for (const { name, file } of scenarios()) {
    it(`passes helm lint --strict with ci/${name}-values.yaml`, () => {
      const r = helm(['lint', '--strict', chartDir, '--namespace', 'wsgate', '--values', file]);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/);
    });
  }

  it('has the four ci/ scenarios the issue asks for', () => {
    assert.deepEqual(scenarios().map((s) => s.name), ['all-options', 'daemonset', 'default', 'single-namespace']);
  });
});

