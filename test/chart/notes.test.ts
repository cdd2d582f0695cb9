// What `helm install` prints after installing (templates/NOTES.txt): how to reach the metrics and the dashboard,
// for the values that change the answer. NOTES.txt is rendered only by install and upgrade, which need a cluster;
// here a copy of the chart holds it as a named template included into a ConfigMap (helm template output must be
// YAML), which `helm template` renders with the same values and capabilities. dry-run.test.ts renders the real
// NOTES against kube-apiserver.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartDir, helm } from './helm.ts';

const scratch = mkdtempSync(join(tmpdir(), 'wsgate-notes-'));
const chart = join(scratch, 'wsgate');
cpSync(chartDir, chart, { recursive: true });
const notesTemplate = readFileSync(join(chartDir, 'templates', 'NOTES.txt'), 'utf8');
rmSync(join(chart, 'templates', 'NOTES.txt'));
writeFileSync(join(chart, 'templates', '_notes-under-test.tpl'), `{{- define "notes-under-test" -}}\n${notesTemplate}{{- end -}}\n`);
writeFileSync(
  join(chart, 'templates', 'notes-under-test.yaml'),
  'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n{{ include "notes-under-test" . | indent 4 }}\n',
);
after(() => rmSync(scratch, { recursive: true, force: true }));

let files = 0;
function notes(values: Record<string, unknown>, apiVersions: string[] = []): string {
  const file = join(scratch, `values-${++files}.json`);
  writeFileSync(file, JSON.stringify(values));
  const r = helm([
    'template', 'wsgate', chart, '--namespace', 'wsgate', '--values', file, '--show-only', 'templates/notes-under-test.yaml',
    ...apiVersions.flatMap((a) => ['--api-versions', a]),
  ]);
  assert.equal(r.status, 0, r.stderr);
  return (parse(r.stdout) as { data: { notes: string } }).data.notes;
}

describe('NOTES.txt', () => {
  test('says how to reach the metrics through the metrics Service, and where Prometheus scrapes them', () => {
    const text = notes({});
    assert.match(text, /^ {2}kubectl -n wsgate port-forward service\/wsgate-metrics 9090$/m);
    assert.match(text, /^ {2}curl -s localhost:9090\/metrics \| grep \^wsgate_connections$/m);
    assert.match(text, /scrape http:\/\/wsgate-metrics\.wsgate\.svc:9090\/metrics \(or set metrics\.serviceMonitor\.enabled=true/);
  });

  test('names the ServiceMonitor when one is created', () => {
    const text = notes({ metrics: { serviceMonitor: { enabled: true } } }, ['monitoring.coreos.com/v1']);
    assert.match(text, /\(the ServiceMonitor\s+wsgate does\)/);
  });

  test('says to use the pod admin port when there is no metrics Service', () => {
    const text = notes({ metrics: { service: { enabled: false } } });
    assert.doesNotMatch(text, /wsgate-metrics/);
    assert.match(text, /curl -s localhost:9090\/metrics/);
  });

  test('says how to import the dashboard when the chart does not create it', () => {
    const text = notes({});
    assert.match(text, /^Dashboard \(Grafana, "wsgate", uid wsgate/m);
    assert.match(text, /import deploy\/dashboards\/wsgate\.json .* or set metrics\.dashboard\.enabled=true/);
  });

  test("names the dashboard ConfigMap, its namespace and the label Grafana's sidecar looks for, when it is created", () => {
    const text = notes({ metrics: { dashboard: { enabled: true, namespace: 'monitoring' } } });
    assert.match(text, /ConfigMap monitoring\/wsgate-dashboard holds it/);
    assert.match(text, /labelled grafana_dashboard: "1" from the namespaces it watches/);
  });
});
