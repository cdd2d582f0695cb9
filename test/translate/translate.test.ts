// The translator's contract beyond what golden files show: purity, freezing, input shapes, and that one object
// that cannot be translated never takes the others down.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import { emptySnapshot } from '../../src/translate/snapshot.ts';
import { translate } from '../../src/translate/translate.ts';
import { endpointSlice, ingress, rule, service, tcpTunnel, webSocketRoute } from './fixtures.ts';

function isDeepFrozen(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('translate', () => {
  test('gives an empty table and no statuses for an empty snapshot', () => {
    const result = translate(emptySnapshot());
    assert.deepEqual(result, { table: { virtualHosts: [], certificates: [], tunnels: [] }, statuses: [] });
  });

  test('returns a deep-frozen table and statuses', () => {
    const result = translate(
      snapshotFromObjects([webSocketRoute('chat'), tcpTunnel('db', 5432), service('chat'), endpointSlice('chat', 8080, ['10.0.0.1'])]),
    );
    assert.equal(result.table.virtualHosts.length, 1);
    assert.equal(result.table.tunnels.length, 1);
    assert.ok(isDeepFrozen(result));
  });

  test('does not modify the objects it reads', () => {
    const objects = [
      webSocketRoute('chat', { hostnames: ['Chat.Example.com'], rules: [rule('/chat/')] }),
      service('chat'),
      endpointSlice('chat', 8080, ['10.0.0.2', '10.0.0.1']),
    ];
    const before = structuredClone(objects);
    translate(snapshotFromObjects(objects));
    assert.deepEqual(objects, before);
  });

  test('reads creationTimestamp as a Date (from the API client) the same as an ISO string (from YAML)', () => {
    const at = (ts: Date | string, other: Date | string) =>
      translate(
        snapshotFromObjects([
          webSocketRoute('b-older', { rules: [rule('/x')] }, { creationTimestamp: ts }),
          webSocketRoute('a-newer', { rules: [rule('/x')] }, { creationTimestamp: other }),
          service('chat'),
        ]),
      );
    const withDates = at(new Date('2024-01-01T00:00:00Z'), new Date('2024-06-01T00:00:00Z'));
    const withStrings = at('2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z');
    assert.deepEqual(withDates, withStrings);
    assert.equal(withDates.table.virtualHosts[0]?.routes[0]?.route, 'default/b-older');
  });

  test('gives a rule listed under several hostnames the same id in each virtual host, and every rule its own id', () => {
    const result = translate(
      snapshotFromObjects([
        webSocketRoute('chat', { hostnames: ['a.example.com', 'b.example.com'], rules: [rule('/one'), rule('/two')] }),
        service('chat'),
      ]),
    );
    const ids = result.table.virtualHosts.map((vh) => vh.routes.map((r) => r.id));
    assert.deepEqual(ids, [
      ['WebSocketRoute/default/chat#Prefix:/one', 'WebSocketRoute/default/chat#Prefix:/two'],
      ['WebSocketRoute/default/chat#Prefix:/one', 'WebSocketRoute/default/chat#Prefix:/two'],
    ]);
  });

  test('keeps every rule id when a rule is inserted before the others, so live counts and limits stay on their rule', () => {
    const idsOf = (paths: string[]): Map<string, string> => {
      const result = translate(snapshotFromObjects([webSocketRoute('chat', { rules: paths.map((p) => rule(p)) }), service('chat')]));
      return new Map(result.table.virtualHosts[0]!.routes.map((r) => [r.path, r.id]));
    };
    const before = idsOf(['/one', '/two']);
    const after = idsOf(['/zero', '/one', '/two']);
    assert.equal(after.get('/one'), before.get('/one'));
    assert.equal(after.get('/two'), before.get('/two'));
    assert.equal(new Set(after.values()).size, 3);
  });

  test('names a rule by its name when it has one, and refuses a second rule with the same name', () => {
    const result = translate(
      snapshotFromObjects([
        webSocketRoute('chat', {
          rules: [
            { ...rule('/one'), name: 'primary' },
            { ...rule('/two'), name: 'primary' },
            { ...rule('/three'), name: 'Not_A_Label' },
          ],
        }),
        service('chat'),
      ]),
    );
    assert.deepEqual(
      result.table.virtualHosts[0]!.routes.map((r) => r.id),
      ['WebSocketRoute/default/chat#primary'],
    );
    const messages = result.statuses[0]!.conditions.map((c) => c.message).join('\n');
    assert.match(messages, /spec\.rules\[1\]\.name: "primary" names an earlier rule too/);
    assert.match(messages, /spec\.rules\[2\]\.name: "Not_A_Label" must be a DNS label/);
  });

  test('serves the first of two unnamed rules with the same match and reports the second as conflicted', () => {
    const result = translate(
      snapshotFromObjects([webSocketRoute('chat', { rules: [rule('/same'), rule('/same')] }), service('chat')]),
    );
    assert.deepEqual(
      result.table.virtualHosts.map((vh) => vh.routes.map((r) => r.id)),
      [['WebSocketRoute/default/chat#Prefix:/same']],
    );
    const accepted = result.statuses[0]!.conditions.find((c) => c.type === 'Accepted');
    assert.equal(accepted?.reason, 'Conflicted');
  });

  test('keeps routes for every host in the `*` virtual host instead of copying them into named hosts', () => {
    const result = translate(
      snapshotFromObjects([
        webSocketRoute('named', { hostnames: ['chat.example.com'], rules: [rule('/chat')] }),
        webSocketRoute('everywhere', { rules: [rule('/health')] }),
        service('chat'),
      ]),
    );
    assert.deepEqual(
      result.table.virtualHosts.map((vh) => [vh.hostname, vh.routes.map((r) => r.path)]),
      [
        ['chat.example.com', ['/chat']],
        ['*', ['/health']],
      ],
    );
  });

  test('reports an object that breaks translation as Invalid while the other objects still serve', () => {
    const broken = ingress('broken', { ingressClassName: 'wsgate', rules: [null as never] });
    const result = translate(snapshotFromObjects([broken, webSocketRoute('chat'), service('chat')]));
    assert.equal(result.table.virtualHosts[0]?.routes[0]?.route, 'default/chat');
    const status = result.statuses.find((s) => s.name === 'broken');
    assert.equal(status?.conditions[0]?.status, 'False');
    assert.equal(status?.conditions[0]?.reason, 'Invalid');
  });

  test('sets observedGeneration on the status and on each condition, and no lastTransitionTime', () => {
    const route = webSocketRoute('chat');
    route.metadata.generation = 4;
    const [status] = translate(snapshotFromObjects([route, service('chat')])).statuses;
    assert.equal(status?.observedGeneration, 4);
    for (const c of status?.conditions ?? []) {
      assert.equal(c.observedGeneration, 4);
      assert.equal(c.lastTransitionTime, undefined);
    }
  });
});

describe('snapshotFromObjects', () => {
  test('groups objects by kind and opens List objects', () => {
    const s = snapshotFromObjects([
      { apiVersion: 'v1', kind: 'List', items: [service('a'), service('b')] },
      webSocketRoute('chat'),
      tcpTunnel('db', 5432),
      endpointSlice('a', 80, []),
    ]);
    assert.deepEqual(s.services.map((x) => x.metadata?.name), ['a', 'b']);
    assert.equal(s.webSocketRoutes.length, 1);
    assert.equal(s.tcpTunnels.length, 1);
    assert.equal(s.endpointSlices.length, 1);
    assert.equal(s.ingressClassName, 'wsgate');
  });

  test('leaves out unknown kinds, other API versions of a kind, and values that are not objects', () => {
    const s = snapshotFromObjects(
      [
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } },
        { apiVersion: 'extensions/v1beta1', kind: 'Ingress', metadata: { name: 'old' } },
        null,
        'text',
        [service('in-an-array')],
      ],
      'custom',
    );
    assert.deepEqual(s, { ...emptySnapshot('custom') });
  });
});

describe('rule paths in the form requests are normalised to', () => {
  const pathsOf = (paths: string[]): { table: string[]; messages: string } => {
    const result = translate(snapshotFromObjects([webSocketRoute('chat', { rules: paths.map((p) => rule(p)) }), service('chat')]));
    return {
      table: result.table.virtualHosts.flatMap((vh) => vh.routes.map((r) => r.path)),
      messages: result.statuses[0]!.conditions.map((c) => c.message).join('\n'),
    };
  };

  test('upper-cases escapes and decodes unreserved characters, as requests are', () => {
    assert.deepEqual(pathsOf(['/caf%c3%a9', '/%7Euser/x']).table.sort(), ['/caf%C3%A9', '/~user/x']);
  });

  for (const [path, why] of [
    ['/public/../admin', /has a "\." or "\.\." segment, which no request has once normalised: write "\/admin"/],
    ['/a/%2e%2e/b', /has a "\." or "\.\." segment/],
    ['/a\\b', /backslash/],
    ['/a%zz', /invalid percent-encoding/],
  ] as const) {
    test(`refuses the rule path ${path}, saying why`, () => {
      const r = pathsOf([path, '/ok']);
      assert.deepEqual(r.table, ['/ok']);
      assert.match(r.messages, why);
    });
  }
});
