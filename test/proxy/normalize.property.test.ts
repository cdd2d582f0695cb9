// Properties of normalizeTarget over random targets built from the pieces that make paths tricky (dots, escapes of
// dots and slashes, backslashes, parameters, double slashes, bad escapes), under every combination of options.
// Seeded, so a failure names a seed and an input that replay.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeTarget, type NormalizeOptions } from '../../src/proxy/normalize.ts';
import { prng } from '../helpers/prng.ts';

const PIECES = [
  '/', '/', '/', '//', '.', '..', '...', '%2e', '%2E', '.%2e', '%2e%2e', '..;', '..;x=1', '.;', ';', 'a', 'B', 'c.d',
  '%41', '%7e', '%2f', '%2F', '%5c', '%5C', '\\', '%25', '2e', '%252e', '%c0%ae', '%C3%A9', '%20', '%', '%g1', '%00',
  '~', '-', '_', ':', '@', '!', '$', "'", '(', '*', '+', ',', '=', '|', '"',
];
const QUERY_PIECES = ['', '?', '?a=1', '?x=/../y', '?%2f%5c', '?a=%G1&b=\\'];

function randomTarget(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 12);
  let path = rand() < 0.9 ? '/' : '';
  for (let i = 0; i < n; i++) path += PIECES[Math.floor(rand() * PIECES.length)]!;
  const query = QUERY_PIECES[Math.floor(rand() * QUERY_PIECES.length)]!;
  if (rand() < 0.1) return `http://Host.Test:8080${path.startsWith('/') ? path : '/' + path}${query}`;
  return path + query;
}

const OPTION_SETS: NormalizeOptions[] = [];
for (const escapedSlashes of ['reject', 'keep', 'decode'] as const) {
  for (const backslash of ['reject', 'slash'] as const) {
    for (const mergeSlashes of [false, true]) OPTION_SETS.push({ escapedSlashes, backslash, mergeSlashes });
  }
}

const RUNS = 3000;

describe('normalizeTarget properties', () => {
  for (const options of OPTION_SETS) {
    test(`with ${JSON.stringify(options)}: idempotent, no dot segments, only valid escapes, query untouched`, () => {
      const seed = 0x5eed + OPTION_SETS.indexOf(options);
      const rand = prng(seed);
      let accepted = 0;
      for (let run = 0; run < RUNS; run++) {
        const target = randomTarget(rand);
        const where = `seed ${seed} run ${run} target ${JSON.stringify(target)}`;
        const r = normalizeTarget(target, options);
        if (!r.ok) {
          assert.equal(r.status, 400, where);
          continue;
        }
        accepted++;
        const { path, query } = r;
        assert.ok(path.startsWith('/'), `${where}: ${path}`);
        for (const seg of path.split('/')) {
          assert.ok(seg !== '.' && seg !== '..' && !seg.startsWith('.;') && !seg.startsWith('..;'), `${where}: ${path}`);
        }
        assert.ok(!path.includes('\\'), `${where}: ${path}`);
        assert.ok(/^(?:[^%]|%[0-9A-F]{2})*$/.test(path), `${where}: escapes must be valid and upper-case: ${path}`);
        assert.ok(!/%(?:2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)/.test(path), `${where}: unreserved left encoded: ${path}`);
        if (options.escapedSlashes !== 'keep') assert.ok(!/%2F|%5C/.test(path), `${where}: ${path}`);
        if (options.mergeSlashes) assert.ok(!path.includes('//'), `${where}: ${path}`);
        const q = target.indexOf('?');
        assert.equal(query, q < 0 ? '' : target.slice(q), where);
        assert.equal(r.changed, r.form === 'absolute' || path + query !== target, where);

        const again = normalizeTarget(path + query, options);
        assert.deepEqual(again, { ok: true, path, query, form: 'origin', changed: false }, `${where}: not idempotent`);
      }
      // The generator must exercise both outcomes, or the properties above say little.
      assert.ok(accepted > RUNS / 10 && accepted < RUNS, `accepted ${accepted} of ${RUNS}`);
    });
  }

  test('never throws on arbitrary strings, and refuses only with 400', () => {
    const rand = prng(0xf022);
    for (let run = 0; run < 20000; run++) {
      const len = Math.floor(rand() * 24);
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(rand() < 0.9 ? 0x20 + Math.floor(rand() * 0x60) : Math.floor(rand() * 0x100));
      const r = normalizeTarget(rand() < 0.5 ? '/' + s : s, OPTION_SETS[run % OPTION_SETS.length]);
      if (!r.ok) assert.equal(r.status, 400);
    }
  });
});
