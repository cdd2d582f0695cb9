// `wsgate migrate`, run as a user runs it: the report in comments, WebSocketRoutes that kubectl would take, exit 1
// when an annotation in use is unsupported or bad, 0 when everything carries over, 2 for a bad flag.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { validateObject } from '../../src/api/validate.ts';

const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'wsgate-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'migrate', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const chat = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: chat
  namespace: apps
  annotations:
    nginx.ingress.kubernetes.io/proxy-read-timeout: "3600"
    nginx.ingress.kubernetes.io/proxy-send-timeout: "3600"
    nginx.ingress.kubernetes.io/affinity: cookie
    nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8
spec:
  ingressClassName: nginx
  tls: [{ hosts: [chat.example.com], secretName: chat-tls }]
  rules:
    - host: chat.example.com
      http:
        paths:
          - { path: /socket.io, pathType: Prefix, backend: { service: { name: chat, port: { number: 3000 } } } }
    - host: admin.example.com
      http:
        paths:
          - { path: /, pathType: Exact, backend: { service: { name: admin, port: { name: http } } } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: chat, namespace: apps }
`;
const snippets = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy
  namespace: apps
  annotations:
    kubernetes.io/ingress.class: other
    nginx.ingress.kubernetes.io/configuration-snippet: |
      more_set_headers "X-Frame-Options: DENY";
spec:
  rules: [{ host: legacy.example.com, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: legacy, port: { number: 80 } } } }] } }]
`;
writeFileSync(join(dir, 'chat.yaml'), chat);
writeFileSync(join(dir, 'legacy.yml'), snippets);
writeFileSync(join(dir, 'notes.txt'), 'not YAML: skipped');

describe('wsgate migrate', { timeout: 60_000 }, () => {
  test('reports every annotation and prints WebSocketRoutes that validate, one per host, and exits 0 when all carry over', () => {
    const r = run('-f', join(dir, 'chat.yaml'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# Ingress apps\/chat: 4 ingress-nginx annotations, all carried over$/m);
    assert.match(r.stdout, /honoured {6}nginx\.ingress\.kubernetes\.io\/proxy-read-timeout: "3600" -> idleTimeoutSeconds: 3600/);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, unknown> | null).filter((d) => d !== null);
    assert.deepEqual(docs.map((d) => (d['metadata'] as { name: string }).name), ['chat-chat-example-com', 'chat-admin-example-com']);
    for (const d of docs) assert.deepEqual(validateObject(d), []);
    const [first] = docs as { spec: { tls?: { secretName: string }; policy: Record<string, unknown> } }[];
    assert.deepEqual(first?.spec.tls, { secretName: 'chat-tls' });
    assert.equal(first?.spec.policy['idleTimeoutSeconds'], 3600);
    assert.deepEqual(first?.spec.policy['allowedSourceRanges'], ['10.0.0.0/8']);
    assert.deepEqual(first?.spec.policy['httpsRedirect'], { mode: 'IfTLS' });
  });

  test('exits 1 and names the Ingress when an annotation in use is unsupported (a snippet)', () => {
    const r = run('-f', dir);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /UNSUPPORTED {3}nginx\.ingress\.kubernetes\.io\/configuration-snippet: \(multi-line\) -> not supported by wsgate: ignored/);
    assert.match(r.stderr, /2 Ingresses; 1 with unsupported or bad annotations: apps\/legacy/);
  });

  test('keeps to one class with --ingress-class, by field or by the legacy annotation', () => {
    const nginx = run('-f', dir, '--ingress-class', 'nginx');
    assert.equal(nginx.code, 0);
    assert.doesNotMatch(nginx.stdout, /apps\/legacy/);
    const other = run('-f', dir, '--ingress-class', 'other');
    assert.equal(other.code, 1);
    assert.doesNotMatch(other.stdout, /apps\/chat/);
  });

  test('exits 2 without exactly one source', () => {
    assert.equal(run().code, 2);
    assert.equal(run('-f', dir, '--from-cluster').code, 2);
  });
});
