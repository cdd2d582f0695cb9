// Order never leaks in: the same objects in any order translate to the same rendered result.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import { renderResult } from '../../src/translate/render.ts';
import { translate } from '../../src/translate/translate.ts';
import { loadCases } from './cases.ts';
import { prng } from '../helpers/prng.ts';


function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const PERMUTATIONS = 50;
// The cases where precedence, conflicts and merging decide the most.
const ORDER_SENSITIVE = [
  'element-wise-prefix',
  'gateway-attachment-and-grants',
  'gateway-hostnames',
  'gateway-precedence',
  'gateway-tls-tcp',
  'host-path-conflict',
  'ingress-default-backend',
  'ingress-rules-and-tls',
  'named-target-port',
  'tie-by-age-then-name',
  'tls-valid',
  'tunnel-plain-vs-sni',
  'tunnel-sni-conflict',
  'wildcard-and-exact-hosts',
];

const cases = loadCases().filter((c) => ORDER_SENSITIVE.includes(c.name));

test('every order-sensitive case is present', () => {
  assert.deepEqual(cases.map((c) => c.name), ORDER_SENSITIVE);
});

for (const c of cases) {
  test(`${c.name}: ${PERMUTATIONS} shuffles of the input objects render the same result`, () => {
    const expected = renderResult(translate(snapshotFromObjects(c.objects)));
    const random = prng(0x5eed + c.name.length);
    for (let i = 0; i < PERMUTATIONS; i++) {
      const objects = shuffled(c.objects, random);
      const rendered = renderResult(translate(snapshotFromObjects(objects)));
      assert.equal(rendered, expected, `permutation ${i} of ${c.name} differs`);
    }
  });
}
