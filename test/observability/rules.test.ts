// The alert rules with promtool (Debian's `prometheus` package): `check rules` on the rule file as the chart ships
// it, `test rules` on the unit tests in rules/, and a check that every alert has a test that makes it fire.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { PROMTOOL } from './prometheus.ts';
import { readRules, ROOT, RULES_PATH } from './promql.ts';

const TESTS_DIR = join(import.meta.dirname, 'rules');
const testFiles = readdirSync(TESTS_DIR)
  .filter((f) => f.endsWith('.test.yaml'))
  .map((f) => join(TESTS_DIR, f));

function promtool(args: string[]): string {
  try {
    return execFileSync(PROMTOOL, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

interface UnitTests {
  tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
}

describe('the Prometheus alert rules', () => {
  test('pass promtool check rules', () => {
    assert.match(promtool(['check', 'rules', RULES_PATH]), /SUCCESS: \d+ rules found/);
  });

  test('pass their promtool unit tests', () => {
    assert.ok(testFiles.length > 0);
    assert.match(promtool(['test', 'rules', ...testFiles]), /SUCCESS/);
  });

  test('each alert has a unit test in which it fires', () => {
    const fired = new Set<string>();
    for (const f of testFiles) {
      for (const t of (parse(readFileSync(f, 'utf8')) as UnitTests).tests) {
        for (const a of t.alert_rule_test ?? []) if ((a.exp_alerts ?? []).length > 0) fired.add(a.alertname);
      }
    }
    const alerts = readRules().groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    assert.ok(alerts.length >= 6);
    assert.deepEqual(alerts.filter((a) => !fired.has(a)), [], 'alerts no test makes fire');
  });

  test('each alert has a severity, a summary and a description', () => {
    for (const g of readRules().groups) {
      for (const r of g.rules) {
        const rule = r as typeof r & { annotations?: Record<string, string> };
        assert.match(rule.labels?.severity ?? '', /^(warning|critical)$/, `${r.alert} severity`);
        assert.ok(rule.annotations?.summary && rule.annotations.description, `${r.alert} summary and description`);
      }
    }
  });
});
