// deploy/ is rendered from the chart by scripts/helm/render-deploy.sh and never edited by hand: rendering again into
// a temp dir must give the committed bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { helmPath, parseManifests, repoRoot } from './helm.ts';

const RENDERED = ['wsgate.yaml', 'dashboards/wsgate.json', 'prometheus/wsgate-rules.yaml', 'prometheus/prometheus-operator.yaml'];

describe('deploy/: the plain manifests', () => {
  const out = mkdtempSync(join(tmpdir(), 'wsgate-deploy-'));
  after(() => rmSync(out, { recursive: true, force: true }));
  execFileSync(join(repoRoot, 'scripts', 'helm', 'render-deploy.sh'), [out], {
    env: { ...process.env, WSGATE_HELM: helmPath() },
    stdio: ['ignore', 'ignore', 'pipe'],
  });

  for (const file of RENDERED) {
    it(`deploy/${file} is what scripts/helm/render-deploy.sh renders from the chart (run it after changing the chart)`, () => {
      assert.equal(readFileSync(join(repoRoot, 'deploy', file), 'utf8'), readFileSync(join(out, file), 'utf8'));
    });
  }

  it('puts nothing at the top of deploy/ but wsgate.yaml, so that kubectl apply -f deploy/ applies exactly it', () => {
    const manifests = readdirSync(join(repoRoot, 'deploy')).filter((f) => /\.(ya?ml|json)$/.test(f));
    assert.deepEqual(manifests, ['wsgate.yaml']);
  });

  it('makes deploy/wsgate.yaml self-contained: the namespace first, then the CRDs of deploy/crds/, then the chart', () => {
    const ms = parseManifests(readFileSync(join(repoRoot, 'deploy', 'wsgate.yaml'), 'utf8'));
    assert.deepEqual([ms[0]?.kind, ms[0]?.metadata.name], ['Namespace', 'wsgate']);
    const crds = ms.filter((m) => m.kind === 'CustomResourceDefinition');
    const committed = readdirSync(join(repoRoot, 'deploy', 'crds')).map((f) => parse(readFileSync(join(repoRoot, 'deploy', 'crds', f), 'utf8')) as unknown);
    assert.deepEqual(
      crds.map((c) => c.metadata.name).sort(),
      committed.map((c) => (c as { metadata: { name: string } }).metadata.name).sort(),
    );
    for (const c of crds) assert.deepEqual(c, committed.find((x) => (x as { metadata: { name: string } }).metadata.name === c.metadata.name));
    assert.deepEqual(ms.slice(1, 1 + crds.length).map((m) => m.kind), crds.map(() => 'CustomResourceDefinition'));
    assert.ok(ms.some((m) => m.kind === 'Deployment' && m.metadata.namespace === 'wsgate'));
  });
});
