// The oldest Kubernetes the chart supports is said in one place, Chart.yaml's kubeVersion, and the documentation
// repeats it: every "Kubernetes 1.N+" or "Kubernetes 1.N or newer" in the README, docs/ and the chart's README must
// name that same N, so that a reader is never told a version the chart would refuse.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = ['README.md', join('charts', 'wsgate', 'README.md'), ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

describe("the chart's minimum Kubernetes version", () => {
  const kubeVersion = (parse(readFileSync(join(ROOT, 'charts', 'wsgate', 'Chart.yaml'), 'utf8')) as { kubeVersion: string }).kubeVersion;
  const minor = /^>=1\.(\d+)\.0-0$/.exec(kubeVersion)?.[1];

  test('is a lower bound in Chart.yaml (">=1.N.0-0", pre-releases such as EKS builds included)', () => {
    assert.ok(minor !== undefined, `kubeVersion ${kubeVersion}`);
  });

  test('is the version every document names', () => {
    const mentions: string[] = [];
    for (const file of DOCS) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/Kubernetes (1\.\d+)(\+| or newer)/g)) mentions.push(`${file}: ${m[0]}`);
      for (const m of text.matchAll(/kubeVersion: "([^"]+)"/g)) {
        assert.equal(m[1], kubeVersion, `${file} quotes kubeVersion ${m[1]}`);
      }
    }
    assert.ok(mentions.length >= 3, `found only: ${mentions.join('; ')}`);
    for (const mention of mentions) assert.match(mention, new RegExp(`Kubernetes 1\\.${minor}(\\+| or newer)$`), mention);
  });
});
