// What the observability tests need to know about PromQL, Grafana and the exposition format: the metric names a
// query selects, the queries of a dashboard with Grafana's variables replaced by concrete values, and the names a
// /metrics page exposes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DASHBOARD_PATH = 'charts/wsgate/dashboards/wsgate.json';
export const RULES_PATH = 'charts/wsgate/rules/wsgate-rules.yaml';

// Words that can stand where a metric name can but are not one.
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. Strings, label matchers (`{...}`), ranges (`[...]`), grouping
 * lists (`by (...)`), Grafana variables and numbers (durations included) are removed first; what is left and is
 * not a keyword or a function name (an identifier followed by `(`) is a metric name.
 */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/\d[\w.]*|[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    if (/^\d/.test(word) || KEYWORDS.has(word.toLowerCase())) continue;
    if (s.slice(m.index + word.length).trimStart().startsWith('(')) continue;
    names.add(word);
  }
  return [...names];
}

export interface DashboardQuery {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

export interface Dashboard {
  readonly schemaVersion: number;
  readonly uid: string;
  readonly title: string;
  readonly panels: Array<Record<string, unknown> & { id: number; type: string; title: string }>;
  readonly templating: { list: Array<Record<string, unknown> & { name: string; type: string }> };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(join(ROOT, DASHBOARD_PATH), 'utf8')) as Dashboard;
}

/** Every query of every panel (rows have none). */
export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of d.panels) {
    for (const t of (p.targets as Array<{ refId: string; expr: string }> | undefined) ?? []) {
      out.push({ panel: p.title, refId: t.refId, expr: t.expr });
    }
  }
  return out;
}

/** The metric of each `label_values(metric, label)` variable query. */
export function variableMetrics(d: Dashboard): string[] {
  const out: string[] = [];
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = (v.query as { query: string }).query;
    const m = /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*[A-Za-z_]\w*\s*\)$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: not a label_values(metric, label) query: ${q}`);
    out.push(m[1]!);
  }
  return out;
}

/**
 * A dashboard query as Grafana sends it: `$route` replaced by the route regex (`.*` for All, or `(a|b)` with
 * regex-escaped values) and the interval variables by a window.
 */
export function substitute(expr: string, o: { route: string; window: string }): string {
  return expr
    .replaceAll('$__rate_interval', o.window)
    .replaceAll('$__interval', o.window)
    .replaceAll('$__range', o.window)
    .replaceAll('$route', o.route);
}

/** Grafana's regex formatting of a multi-value variable. */
export function routeRegex(values: readonly string[]): string {
  const escaped = values.map((v) => v.replace(/[\\^$.*+?()[\]{}|/]/g, (c) => `\\\\${c}`));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

export interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }> }>;
}

export function readRules(): RuleFile {
  return parse(readFileSync(join(ROOT, RULES_PATH), 'utf8')) as RuleFile;
}

/**
 * The metric names a Prometheus text exposition offers to queries: every sample's name, and for each `# TYPE`
 * line the names of that type's samples (a histogram's `_bucket`, `_sum`, `_count`), so that a metric declared but
 * without samples yet (a labelled counter nothing has incremented) still counts as exported.
 */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      else if (kind === 'summary') for (const s of ['', '_sum', '_count']) names.add(name + s);
      else names.add(name);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample) names.add(sample[1]!);
  }
  return names;
}
