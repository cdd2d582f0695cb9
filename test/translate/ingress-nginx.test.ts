// ingress-nginx's annotations beyond what the golden files show: every annotation of the table has a golden case and
// a row in the migration guide, no value crashes translation, --ingress-class nginx and --watch-ingress-without-class
// select the Ingresses ingress-nginx would, and `wsgate migrate`'s WebSocketRoutes translate to the policy the
// Ingress itself gets.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { validateObject } from '../../src/api/validate.ts';
import type { HttpRoute } from '../../src/model/table.ts';
import { NGINX_ANNOTATIONS, NGINX_PREFIX } from '../../src/translate/ingress-nginx.ts';
import { migrateIngress } from '../../src/translate/migrate.ts';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import { translate } from '../../src/translate/translate.ts';
import { loadCases, TESTDATA } from './cases.ts';
import { ingress, service } from './fixtures.ts';

const goldenInputs = readdirSync(TESTDATA)
  .filter((f) => f.startsWith('ingress-nginx-') && f.endsWith('.in.yaml'))
  .map((f) => readFileSync(join(TESTDATA, f), 'utf8'))
  .join('\n');
const guide = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'migrating-from-ingress-nginx.md'), 'utf8');

describe('the annotation table', () => {
  test('has a golden case for every annotation it honours or approximates', () => {
    assert.deepEqual(NGINX_ANNOTATIONS.filter((a) => !goldenInputs.includes(`${NGINX_PREFIX}${a.name}:`)).map((a) => a.name), []);
  });

  test('is in the migration guide, row by row, with its support', () => {
    const missing = NGINX_ANNOTATIONS.filter((a) => !new RegExp(`^\\| \`${a.name}\` \\| ${a.support} \\|`, 'm').test(guide)).map((a) => a.name);
    assert.deepEqual(missing, []);
  });
});

function ingressWith(annotations: Record<string, string>) {
  const ing = ingress('chat', {
    ingressClassName: 'wsgate',
    tls: [{ hosts: ['chat.example.com'], secretName: 'chat-tls' }],
    rules: [{ host: 'chat.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] } }],
  });
  return { ...ing, metadata: { ...ing.metadata, annotations } };
}

describe('bad values', () => {
  const weird = ['', ' ', '\n', 'null', '-0', '1e309', '0x10', '9'.repeat(400), '∞', '$', '/', ',,,', 'true false', '{"a":1}'];
  test('never crash translation: each is a condition, and the Ingress still serves', () => {
    for (const a of NGINX_ANNOTATIONS) {
      for (const value of weird) {
        const result = translate(snapshotFromObjects([ingressWith({ [`${NGINX_PREFIX}${a.name}`]: value, [`${NGINX_PREFIX}affinity`]: 'cookie', [`${NGINX_PREFIX}enable-cors`]: 'true' }), service('chat')]));
        const accepted = result.statuses[0]?.conditions.find((c) => c.type === 'Accepted');
        assert.doesNotMatch(accepted?.message ?? '', /could not be translated/, `${a.name}: ${JSON.stringify(value)}`);
        assert.equal(result.table.virtualHosts[0]?.routes.length, 1, `${a.name}: ${JSON.stringify(value)} stopped the Ingress serving`);
      }
    }
  });
});

describe('taking over a class during a migration', () => {
  const ofClass = (name: string, cls: string | undefined, legacy?: string) => {
    const ing = ingress(name, {
      ...(cls !== undefined ? { ingressClassName: cls } : {}),
      rules: [{ host: `${name}.example.com`, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] } }],
    });
    return legacy === undefined ? ing : { ...ing, metadata: { ...ing.metadata, annotations: { 'kubernetes.io/ingress.class': legacy } } };
  };
  const objects = [ofClass('nginx-field', 'nginx'), ofClass('nginx-legacy', undefined, 'nginx'), ofClass('classless', undefined), ofClass('other', 'traefik'), service('chat')];
  const served = (cls: string, withoutClass: boolean): string[] =>
    translate(snapshotFromObjects(objects, cls, withoutClass)).statuses.map((s) => s.name);

  test('--ingress-class nginx serves the Ingresses of class nginx, by field and by the legacy annotation', () => {
    assert.deepEqual(served('nginx', false), ['nginx-field', 'nginx-legacy']);
  });
  test('--watch-ingress-without-class adds the Ingresses that name no class', () => {
    assert.deepEqual(served('nginx', true), ['classless', 'nginx-field', 'nginx-legacy']);
    assert.deepEqual(served('wsgate', true), ['classless']);
  });
});

describe('wsgate migrate', () => {
  const cases = loadCases().filter((c) => c.name.startsWith('ingress-nginx-'));

  test('writes WebSocketRoutes that validate, and translate to the policy the Ingress gets, path by path', () => {
    let compared = 0;
    for (const c of cases) {
      const others = c.objects.filter((o) => (o as { kind?: string }).kind !== 'Ingress');
      for (const o of c.objects.filter((x) => (x as { kind?: string }).kind === 'Ingress')) {
        const ing = o as Parameters<typeof migrateIngress>[0];
        const m = migrateIngress(ing);
        for (const r of m.routes) assert.deepEqual(validateObject(r), [], `${c.name} ${m.ingress}: ${r.metadata.name}`);
        const byIngress = routesByPath(translate(snapshotFromObjects([ing, ...others])).table.virtualHosts.flatMap((vh) => vh.routes.map((r) => [vh.hostname, r] as const)));
        const byRoutes = routesByPath(translate(snapshotFromObjects([...m.routes, ...others])).table.virtualHosts.flatMap((vh) => vh.routes.map((r) => [vh.hostname, r] as const)));
        for (const [key, route] of byIngress) {
          const twin = byRoutes.get(key);
          assert.ok(twin, `${c.name} ${m.ingress}: no WebSocketRoute serves ${key}`);
          // limit-rpm's fraction is rounded up in the CRD's whole requests per second: said in the table.
          const rate = (p: HttpRoute['policy']) => ({ ...p, rateLimit: { ...p.rateLimit, requestsPerSecond: Math.ceil(p.rateLimit.requestsPerSecond) } });
          assert.deepEqual(rate(twin.policy), rate(route.policy), `${c.name} ${m.ingress} ${key}`);
          compared++;
        }
      }
    }
    assert.ok(compared >= 20, `only ${compared} paths compared`);
  });

  test('blocks an Ingress whose annotations in use are unsupported or bad, and not one that carries over', () => {
    assert.equal(migrateIngress(ingressWith({ [`${NGINX_PREFIX}proxy-read-timeout`]: '3600', [`${NGINX_PREFIX}affinity`]: 'cookie' })).blocked, false);
    assert.equal(migrateIngress(ingressWith({ [`${NGINX_PREFIX}configuration-snippet`]: 'deny all;' })).blocked, true);
    assert.equal(migrateIngress(ingressWith({ [`${NGINX_PREFIX}proxy-read-timeout`]: '1h' })).blocked, true);
  });
});

function routesByPath(routes: readonly (readonly [string, HttpRoute])[]): Map<string, HttpRoute> {
  return new Map(routes.map(([host, r]) => [`${host} ${r.pathType} ${r.path}`, r]));
}
