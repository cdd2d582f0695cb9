// Golden files: each testdata/<case>.in.yaml, translated and rendered, must equal <case>.out.yaml.
// `npm run golden` (WSGATE_UPDATE_GOLDEN=1) rewrites the .out files; review them as a diff: they are the spec.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import { renderResult } from '../../src/translate/render.ts';
import { translate } from '../../src/translate/translate.ts';
import { loadCases } from './cases.ts';

const update = process.env['WSGATE_UPDATE_GOLDEN'] === '1';
const cases = loadCases();

test('there are golden cases to check', () => {
  assert.ok(cases.length >= 18, `only ${cases.length} cases`);
});

for (const c of cases) {
  test(`${c.name}: ${c.description}`, () => {
    const rendered = renderResult(translate(snapshotFromObjects(c.objects)));
    if (update) {
      writeFileSync(c.outPath, rendered);
      return;
    }
    assert.ok(existsSync(c.outPath), `${c.outPath} is missing; run npm run golden`);
    assert.equal(rendered, readFileSync(c.outPath, 'utf8'));
  });
}
