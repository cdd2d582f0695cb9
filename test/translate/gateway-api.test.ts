// [issue 14] The Gateway API translator beyond its golden cases: hostname intersection as a table, durations, the
// Gateway a translation serves, Programmed from what the controller observes, and input no schema checked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { intersectHostnames } from '../../src/translate/gateway-hostnames.ts';
import { parseDuration } from '../../src/translate/gateway-httproute.ts';
import { selectorMatches } from '../../src/translate/gateway-listeners.ts';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import type { Snapshot } from '../../src/translate/snapshot.ts';
import { translate } from '../../src/translate/translate.ts';

const CLASS = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'wsgate' }, spec: { controllerName: 'wsgate.io/gateway-controller' } };

function gateway(name: string, port: number): object {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'apps', generation: 2, creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port, protocol: 'HTTP' }] },
  };
}

function httpRoute(name: string, gateway: string, extra: object = {}): object {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'apps' },
    spec: { parentRefs: [{ name: gateway }], rules: [{ backendRefs: [{ name: 'web', port: 80 }] }], ...extra },
  };
}

const SERVICE = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'apps' }, spec: { ports: [{ port: 80 }] } };

describe('hostname intersection (listener × route)', () => {
  const cases: [string | undefined, string[], string[]][] = [
    [undefined, [], ['*']],
    ['a.example.com', [], ['a.example.com']],
    [undefined, ['a.example.com'], ['a.example.com']],
    ['*.example.com', ['a.example.com', 'a.b.example.com', 'example.com'], ['a.example.com', 'a.b.example.com']],
    ['*.example.com', ['*.b.example.com'], ['*.b.example.com']],
    ['*.b.example.com', ['*.example.com'], ['*.b.example.com']],
    ['a.example.com', ['*.example.com'], ['a.example.com']],
    ['a.example.com', ['b.example.com'], []],
    ['*.example.com', ['*.example.org'], []],
  ];
  for (const [listener, route, expected] of cases) {
    test(`${listener ?? 'any'} × [${route.join(', ')}] → [${expected.join(', ')}]`, () => {
      assert.deepEqual(intersectHostnames(listener, route), expected);
    });
  }
});

test('Gateway API durations: h, m, s and ms parts, and nothing else', () => {
  assert.equal(parseDuration('500ms'), 0.5);
  assert.equal(parseDuration('1h2m3s'), 3723);
  assert.equal(parseDuration('0s'), 0);
  assert.equal(parseDuration('1.5s'), undefined);
  assert.equal(parseDuration('10'), undefined);
  assert.equal(parseDuration(10), undefined);
});

test('label selectors: matchLabels and every expression operator', () => {
  const labels = { team: 'a', tier: 'web' };
  assert.ok(selectorMatches({ matchLabels: { team: 'a' } }, labels));
  assert.ok(!selectorMatches({ matchLabels: { team: 'b' } }, labels));
  assert.ok(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }] }, labels));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['web'] }] }, labels));
  assert.ok(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, labels));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, labels));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: 'team', operator: 'Bogus' }] }, labels));
});

describe('which Gateways a translation serves', () => {
  const objects = [CLASS, gateway('one', 80), gateway('two', 8080), httpRoute('r1', 'one'), httpRoute('r2', 'two'), SERVICE];
  const ports = (s: Snapshot): number[] => (translate(s).table.listeners ?? []).map((l) => l.port);

  test('every Gateway by default (serve, translate)', () => {
    assert.deepEqual(ports(snapshotFromObjects(objects)), [80, 8080]);
  });

  test('only its own in a provisioned proxy, while statuses still cover every Gateway', () => {
    const result = translate({ ...snapshotFromObjects(objects), gatewayServed: { namespace: 'apps', name: 'two' } });
    assert.deepEqual((result.table.listeners ?? []).map((l) => l.port), [8080]);
    assert.deepEqual(result.gatewayAPI?.gateways.map((g) => g.name), ['one', 'two']);
  });

  test('none in the controller that writes status', () => {
    assert.deepEqual(ports({ ...snapshotFromObjects(objects), gatewayServed: 'none' }), []);
  });

  test('two Gateways on one port in one process share it only with the same protocol', () => {
    const tcp = {
      ...gateway('tcp', 80),
      metadata: { name: 'tcp', namespace: 'apps', creationTimestamp: '2030-01-01T00:00:00Z' },
      spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'tcp', port: 80, protocol: 'TCP' }] },
    };
    const result = translate(snapshotFromObjects([...objects, tcp]));
    const status = result.gatewayAPI?.gateways.find((g) => g.name === 'tcp')?.status;
    assert.equal(status?.listeners[0]?.conditions.find((c) => c.type === 'Conflicted')?.reason, 'ProtocolConflict');
  });
});

describe('Programmed in a cluster follows the provisioned proxies', () => {
  const base = snapshotFromObjects([CLASS, gateway('one', 80)]);
  const programmed = (s: Snapshot): { status: string; reason: string; addresses: string[] } => {
    const g = translate(s).gatewayAPI?.gateways[0]?.status;
    const c = g?.conditions.find((x) => x.type === 'Programmed');
    return { status: c?.status ?? '', reason: c?.reason ?? '', addresses: (g?.addresses ?? []).map((a) => a.value) };
  };

  test('Pending until provisioned, AddressNotAssigned without an address, Pending until a proxy is ready', () => {
    assert.deepEqual(programmed({ ...base, gatewayInfrastructure: new Map() }), { status: 'False', reason: 'Pending', addresses: [] });
    const infra = (addresses: string[], ready: boolean): Snapshot => ({
      ...base,
      gatewayInfrastructure: new Map([['apps/one', { addresses: addresses.map((value) => ({ type: 'IPAddress' as const, value })), ready }]]),
    });
    assert.deepEqual(programmed(infra([], true)), { status: 'False', reason: 'AddressNotAssigned', addresses: [] });
    assert.deepEqual(programmed(infra(['198.51.100.9'], false)), { status: 'False', reason: 'Pending', addresses: ['198.51.100.9'] });
    assert.deepEqual(programmed(infra(['198.51.100.9'], true)), { status: 'True', reason: 'Programmed', addresses: ['198.51.100.9'] });
  });
});

describe('input no schema checked', () => {
  const garbage = [
    { ...gateway('odd', 81), spec: { gatewayClassName: 'wsgate', listeners: 'not a list' } },
    { ...gateway('odder', 82), spec: { gatewayClassName: 'wsgate', listeners: [null, 7, { name: 'x', port: 'eighty', protocol: 'HTTP', tls: 'yes', allowedRoutes: { kinds: 'all' } }] } },
    httpRoute('weird', 'one', { hostnames: 'x', rules: [{ matches: 'all', filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: 'x' } }], backendRefs: [7] }] }),
    httpRoute('weirder', 'one', { parentRefs: [null, { name: 'one', sectionName: 5 }], rules: 'none' }),
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'ReferenceGrant', metadata: { name: 'g', namespace: 'apps' }, spec: { from: 'x', to: [null] } },
  ];

  test('translates without throwing, and the well-formed objects still serve', () => {
    const result = translate(snapshotFromObjects([CLASS, gateway('one', 80), httpRoute('fine', 'one'), SERVICE, ...garbage]));
    const port80 = result.table.listeners?.find((l) => l.port === 80);
    assert.ok(port80?.virtualHosts.some((vh) => vh.routes.some((r) => r.route === 'apps/fine')), 'the well-formed route serves');
    assert.equal(result.gatewayAPI?.gateways.find((g) => g.name === 'odd')?.status.listeners.length, 0);
  });
});
