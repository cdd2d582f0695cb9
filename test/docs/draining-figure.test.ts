// docs/draining-timeline.svg is drawn by scripts/docs/draining-figure.ts from the chart's drain defaults: the
// committed figure must be what the script draws, and its numbers the ones values.yaml and the proxy use.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { drawFigure, FIGURE } from '../../scripts/docs/draining-figure.ts';
import { CLOSE_HANDSHAKE_TIMEOUT_MS } from '../../src/proxy/ws-session.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('the draining timeline figure', () => {
  test('is committed as the script draws it (run node scripts/docs/draining-figure.ts)', () => {
    assert.equal(readFileSync(join(ROOT, 'docs', 'draining-timeline.svg'), 'utf8'), drawFigure());
  });

  test("shows the chart's drain defaults, the proxy's close-handshake cut and the chart's computed grace period", () => {
    const values = parse(readFileSync(join(ROOT, 'charts', 'wsgate', 'values.yaml'), 'utf8')) as {
      controller: { drain: { delaySeconds: number; timeoutSeconds: number } };
    };
    assert.equal(FIGURE.delay, values.controller.drain.delaySeconds);
    assert.equal(FIGURE.timeout, values.controller.drain.timeoutSeconds);
    assert.equal(FIGURE.closeHandshake * 1000, CLOSE_HANDSHAKE_TIMEOUT_MS);
    // The chart's grace period with its defaults (test/chart/render.test.ts pins 50).
    assert.match(drawFigure(), /grace period 50 s/);
    assert.equal(FIGURE.delay + FIGURE.timeout + FIGURE.closeHandshake + FIGURE.margin, 50);
  });
});
