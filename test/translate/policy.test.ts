// Policy layering beyond what the golden files show: nested knobs merge member by member, lists replace, every field
// of the CRD's policy schema reaches the routing table, and inspectFrames false never holds with a knob that needs frames.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { webSocketRouteSchema } from '../../src/api/schema.ts';
import type { PolicySpec, WebSocketRouteRule } from '../../src/api/types.ts';
import { DEFAULT_POLICY, type HttpRoute, type Policy } from '../../src/model/table.ts';
import { ANNOTATIONS, policyFromAnnotations } from '../../src/translate/annotations.ts';
import { snapshotFromObjects } from '../../src/translate/objects.ts';
import { applyPolicySpec, framesNeededBy } from '../../src/translate/policy.ts';
import { translate } from '../../src/translate/translate.ts';
import { ingress, rule, service, tcpTunnel, webSocketRoute } from './fixtures.ts';

/** A rule on `path` with the given policy. */
function ruleWith(path: string, policy?: PolicySpec): WebSocketRouteRule {
  return { ...rule(path), ...(policy ? { policy } : {}) };
}

/** Translates one WebSocketRoute with a route policy and rules; returns its routes by path and its status. */
function translateRoute(routePolicy: PolicySpec | undefined, rules: WebSocketRouteRule[]) {
  const route = webSocketRoute('chat', { rules });
  if (routePolicy) route.spec.policy = routePolicy;
  const result = translate(snapshotFromObjects([route, service('chat')]));
  const routes = new Map<string, HttpRoute>((result.table.virtualHosts[0]?.routes ?? []).map((r) => [r.path, r]));
  const accepted = result.statuses[0]?.conditions.find((c) => c.type === 'Accepted');
  return { routes, accepted };
}

function policyOf(routes: Map<string, HttpRoute>, path: string): Policy {
  const r = routes.get(path);
  assert.ok(r, `no route for ${path}`);
  return r.policy;
}

function isDeepFrozen(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('policy layering: rule over route over defaults', () => {
  test("a rule's keepalive overrides only the members it sets", () => {
    const { routes } = translateRoute({ keepalive: { intervalSeconds: 15, timeoutSeconds: 5 } }, [
      ruleWith('/inherit'),
      ruleWith('/to-backend', { keepalive: { toBackend: true } }),
      ruleWith('/slower', { keepalive: { intervalSeconds: 60 } }),
    ]);
    assert.deepEqual(policyOf(routes, '/inherit').keepalive, { intervalSeconds: 15, timeoutSeconds: 5, toBackend: false });
    assert.deepEqual(policyOf(routes, '/to-backend').keepalive, { intervalSeconds: 15, timeoutSeconds: 5, toBackend: true });
    assert.deepEqual(policyOf(routes, '/slower').keepalive, { intervalSeconds: 60, timeoutSeconds: 5, toBackend: false });
  });

  test("a rule's onRemoval and rebalance override only the members they set", () => {
    const { routes } = translateRoute(
      { onRemoval: { action: 'Keep' }, rebalance: { enabled: true, maxClosesPerSecond: 2 } },
      [ruleWith('/a', { onRemoval: { graceSeconds: 5 }, rebalance: { tolerancePercent: 50 } })],
    );
    const p = policyOf(routes, '/a');
    assert.deepEqual(p.onRemoval, { action: 'Keep', graceSeconds: 5 });
    assert.deepEqual(p.rebalance, { enabled: true, tolerancePercent: 50, maxClosesPerSecond: 2 });
  });

  test('a knob set nowhere takes DEFAULT_POLICY, and the defaults are those the issues give', () => {
    const { routes } = translateRoute(undefined, [ruleWith('/')]);
    assert.deepEqual(policyOf(routes, '/'), DEFAULT_POLICY);
    assert.equal(DEFAULT_POLICY.inspectFrames, true);
    assert.deepEqual(DEFAULT_POLICY.keepalive, { intervalSeconds: 30, timeoutSeconds: 30, toBackend: false });
    assert.deepEqual(
      [DEFAULT_POLICY.maxMessageBytes, DEFAULT_POLICY.maxBackendMessageBytes, DEFAULT_POLICY.maxMessagesPerSecond],
      [0, 0, 0],
    );
    assert.deepEqual([DEFAULT_POLICY.onExceed, DEFAULT_POLICY.strict, DEFAULT_POLICY.endpointDrainSeconds], ['Throttle', true, 10]);
    assert.deepEqual(DEFAULT_POLICY.onRemoval, { action: 'Close', graceSeconds: 60 });
    assert.deepEqual(DEFAULT_POLICY.rebalance, { enabled: false, tolerancePercent: 20, maxClosesPerSecond: 5 });
  });

  test('DEFAULT_POLICY and every translated policy are deep-frozen, nested knobs included', () => {
    assert.ok(isDeepFrozen(DEFAULT_POLICY));
    const { routes } = translateRoute({ keepalive: { toBackend: true } }, [ruleWith('/a', { rebalance: { enabled: true } })]);
    assert.ok(isDeepFrozen(policyOf(routes, '/a')));
  });

  test('does not change the base policy it lays a spec over', () => {
    const route = applyPolicySpec(DEFAULT_POLICY, { keepalive: { intervalSeconds: 5 } }, 'spec.policy');
    assert.ok(route.errors === undefined);
    const base = route.policy;
    const before = structuredClone(base);
    const rule = applyPolicySpec(base, { keepalive: { toBackend: true }, onRemoval: { action: 'Keep' } }, 'spec.rules[0].policy');
    assert.deepEqual(rule.errors, undefined);
    assert.deepEqual(base, before);
  });

  // Each field of the CRD's PolicySpec, with a valid value other than the default: a field added to the schema
  // without reaching the table fails here, as does one forgotten in this list.
  const samples: Record<keyof PolicySpec, { spec: unknown; read: (p: Policy) => unknown; want: unknown }> = {
    idleTimeoutSeconds: { spec: 7, read: (p) => p.idleTimeoutSeconds, want: 7 },
    connectTimeoutSeconds: { spec: 2, read: (p) => p.connectTimeoutSeconds, want: 2 },
    responseHeaderTimeoutSeconds: { spec: 9, read: (p) => p.responseHeaderTimeoutSeconds, want: 9 },
    maxConnections: { spec: 3, read: (p) => p.maxConnections, want: 3 },
    maxConnectionsPerClient: { spec: 4, read: (p) => p.maxConnectionsPerClient, want: 4 },
    allowedOrigins: { spec: ['https://a.example'], read: (p) => p.allowedOrigins, want: ['https://a.example'] },
    subprotocols: { spec: ['v1'], read: (p) => p.subprotocols, want: ['v1'] },
    loadBalancing: { spec: { policy: 'RoundRobin' }, read: (p) => p.loadBalancing, want: { policy: 'RoundRobin' } },
    inspectFrames: { spec: false, read: (p) => p.inspectFrames, want: false },
    keepalive: { spec: { intervalSeconds: 0 }, read: (p) => p.keepalive.intervalSeconds, want: 0 },
    maxMessageBytes: { spec: 1_048_576, read: (p) => p.maxMessageBytes, want: 1_048_576 },
    maxBackendMessageBytes: { spec: 16_777_216, read: (p) => p.maxBackendMessageBytes, want: 16_777_216 },
    maxMessagesPerSecond: { spec: 100, read: (p) => p.maxMessagesPerSecond, want: 100 },
    onExceed: { spec: 'Close', read: (p) => p.onExceed, want: 'Close' },
    strict: { spec: false, read: (p) => p.strict, want: false },
    endpointDrainSeconds: { spec: 0, read: (p) => p.endpointDrainSeconds, want: 0 },
    onRemoval: { spec: { action: 'Keep' }, read: (p) => p.onRemoval.action, want: 'Keep' },
    rebalance: { spec: { enabled: true }, read: (p) => p.rebalance.enabled, want: true },
    allowedSourceRanges: { spec: ['10.0.0.0/8', '2001:DB8::/32'], read: (p) => p.allowedSourceRanges, want: ['10.0.0.0/8', '2001:db8::/32'] },
    deniedSourceRanges: { spec: ['192.0.2.7'], read: (p) => p.deniedSourceRanges, want: ['192.0.2.7/32'] },
    httpsRedirect: { spec: { mode: 'Always', statusCode: 301 }, read: (p) => p.httpsRedirect, want: { mode: 'Always', statusCode: 301, webSocket: 'Reject' } },
    hsts: { spec: { maxAgeSeconds: 600 }, read: (p) => p.hsts.maxAgeSeconds, want: 600 },
    rateLimit: { spec: { requestsPerSecond: 5 }, read: (p) => p.rateLimit, want: { requestsPerSecond: 5, burst: 5 } },
    externalAuth: { spec: { url: 'http://auth.test/check' }, read: (p) => p.externalAuth.url, want: 'http://auth.test/check' },
    backendTLS: { spec: { sni: 'chat.test' }, read: (p) => [p.backendTLS.enabled, p.backendTLS.sni], want: [true, 'chat.test'] },
    maxRequestBodyBytes: { spec: 1024, read: (p) => p.maxRequestBodyBytes, want: 1024 },
    cors: { spec: { allowOrigins: ['https://App.test'] }, read: (p) => p.cors.allowOrigins, want: ['https://app.test'] },
  };

  test('covers every field of the policy schema with a sample', () => {
    const policySchema = webSocketRouteSchema().properties?.['spec']?.properties?.['policy'];
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(policySchema?.properties ?? {}).sort());
  });

  for (const [key, s] of Object.entries(samples)) {
    test(`carries ${key} from a rule's policy into the table, and not into a sibling rule`, () => {
      const { routes, accepted } = translateRoute(undefined, [ruleWith('/set', { [key]: s.spec }), ruleWith('/unset')]);
      assert.equal(accepted?.status, 'True', accepted?.message);
      assert.deepEqual(s.read(policyOf(routes, '/set')), s.want);
      assert.notDeepEqual(s.read(policyOf(routes, '/unset')), s.want);
    });
  }
});

describe('inspectFrames false and the knobs that need frames', () => {
  test('needs frames for a message limit, or for a keepalive that is on and not the default', () => {
    const needs = (o: Partial<Policy>) => framesNeededBy({ ...DEFAULT_POLICY, ...o });
    assert.deepEqual(needs({}), []);
    assert.deepEqual(needs({ keepalive: { intervalSeconds: 0, timeoutSeconds: 5, toBackend: true } }), []);
    assert.deepEqual(needs({ strict: false, onExceed: 'Close' }), []);
    assert.deepEqual(needs({ keepalive: { intervalSeconds: 30, timeoutSeconds: 30, toBackend: true } }), ['keepalive']);
    assert.deepEqual(
      needs({ maxMessageBytes: 1, maxBackendMessageBytes: 1, maxMessagesPerSecond: 1 }),
      ['maxMessageBytes', 'maxBackendMessageBytes', 'maxMessagesPerSecond'],
    );
  });

  test('accepts inspectFrames false with the default keepalive, keepalive off, strict false and onExceed Close', () => {
    const { routes, accepted } = translateRoute(undefined, [
      ruleWith('/a', { inspectFrames: false }),
      ruleWith('/b', { inspectFrames: false, keepalive: { intervalSeconds: 0, toBackend: true }, strict: false, onExceed: 'Close' }),
    ]);
    assert.equal(accepted?.status, 'True', accepted?.message);
    assert.equal(policyOf(routes, '/a').inspectFrames, false);
    assert.equal(policyOf(routes, '/b').inspectFrames, false);
  });

  test("does not serve a rule that turns inspection off under a route's limit, names inspectFrames, and serves the others", () => {
    const { routes, accepted } = translateRoute({ maxMessageBytes: 1024 }, [
      ruleWith('/pipe', { inspectFrames: false }),
      ruleWith('/pipe-without-limit', { inspectFrames: false, maxMessageBytes: 0 }),
      ruleWith('/framed'),
    ]);
    assert.deepEqual([...routes.keys()].sort(), ['/framed', '/pipe-without-limit']);
    assert.equal(accepted?.status, 'False');
    assert.equal(accepted?.reason, 'Invalid');
    assert.match(accepted?.message ?? '', /^spec\.rules\[0\]\.policy\.inspectFrames: .*maxMessageBytes 1024.*\(spec\.rules\[0\] is not served\)$/);
  });

  test("names the knob a rule sets when the route's policy turned inspection off", () => {
    const { routes, accepted } = translateRoute({ inspectFrames: false }, [
      ruleWith('/limited', { maxMessagesPerSecond: 10 }),
      ruleWith('/pipe'),
    ]);
    assert.deepEqual([...routes.keys()], ['/pipe']);
    assert.match(accepted?.message ?? '', /^spec\.rules\[0\]\.policy\.maxMessagesPerSecond: 10 needs frame inspection, but inspectFrames is false in the route's policy/);
  });

  test('does not serve a route whose own policy holds both, and says so for the route', () => {
    const { routes, accepted } = translateRoute({ inspectFrames: false, keepalive: { intervalSeconds: 5 } }, [ruleWith('/')]);
    assert.equal(routes.size, 0);
    assert.match(accepted?.message ?? '', /^spec\.policy\.keepalive: .* needs frame inspection.*\(the route is not served\)$/);
  });

  test('an Ingress with inspect-frames "false" and a limit keeps inspection on and the limit, and says which annotations conflict', () => {
    const { policy, problems } = policyFromAnnotations({
      'wsgate.io/inspect-frames': 'false',
      'wsgate.io/max-backend-message-bytes': '4096',
      'wsgate.io/keepalive-interval-seconds': '10',
    });
    assert.equal(policy.inspectFrames, true);
    assert.equal(policy.maxBackendMessageBytes, 4096);
    assert.equal(policy.keepalive.intervalSeconds, 10);
    assert.deepEqual(problems, [
      'annotation wsgate.io/inspect-frames: "false" (a plain byte pipe) conflicts with wsgate.io/max-backend-message-bytes, ' +
        'wsgate.io/keepalive-interval-seconds: they need frame inspection; remove one or the other (using the default true)',
    ]);
  });
});

describe('annotations and tunnels', () => {
  test('an Ingress reads booleans and numbers as YAML gives them unquoted, and "true"/"false" only', () => {
    const { policy, problems } = policyFromAnnotations({
      'wsgate.io/keepalive-to-backend': true,
      'wsgate.io/max-message-bytes': 2048,
      'wsgate.io/rebalance': 'TRUE',
    });
    assert.equal(policy.keepalive.toBackend, true);
    assert.equal(policy.maxMessageBytes, 2048);
    assert.equal(policy.rebalance.enabled, false);
    assert.deepEqual(problems, ['annotation wsgate.io/rebalance: "TRUE" is not "true" or "false" (using the default false)']);
  });

  test('an Ingress path gets the annotations on top of the defaults, nested knobs whole', () => {
    const ing = ingress('chat', {
      ingressClassName: 'wsgate',
      rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] } }],
    });
    ing.metadata = { ...ing.metadata, annotations: { 'wsgate.io/removal-grace-seconds': '5', 'wsgate.io/rebalance-tolerance-percent': '50' } };
    const result = translate(snapshotFromObjects([ing, service('chat')]));
    const p = result.table.virtualHosts[0]?.routes[0]?.policy;
    assert.deepEqual(p?.onRemoval, { action: 'Close', graceSeconds: 5 });
    assert.deepEqual(p?.rebalance, { enabled: false, tolerancePercent: 50, maxClosesPerSecond: 5 });
  });

  test("a TCPTunnel without drain knobs gets DEFAULT_POLICY's, and onRemoval merges member by member", () => {
    const plain = tcpTunnel('plain', 5432);
    const keep = tcpTunnel('keep', 5433);
    keep.spec.onRemoval = { graceSeconds: 3 };
    keep.spec.endpointDrainSeconds = 0;
    const result = translate(snapshotFromObjects([plain, keep, service('chat')]));
    const [a, b] = result.table.tunnels;
    assert.deepEqual([a?.endpointDrainSeconds, a?.onRemoval], [10, { action: 'Close', graceSeconds: 60 }]);
    assert.deepEqual([b?.endpointDrainSeconds, b?.onRemoval], [0, { action: 'Close', graceSeconds: 3 }]);
    assert.ok(isDeepFrozen(result.table.tunnels));
  });
});

describe('the configuration reference', () => {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

  test('the README names every annotation an Ingress can carry', () => {
    const missing = Object.values(ANNOTATIONS).filter((a) => !readme.includes(`\`${a}\``));
    assert.deepEqual(missing, []);
  });

  test("the README's WebSocketRoute block names every field of the policy schema", () => {
    const block = readme.slice(readme.indexOf('### WebSocketRoute'), readme.indexOf('### TCPTunnel'));
    const fields = Object.keys(webSocketRouteSchema().properties?.['spec']?.properties?.['policy']?.properties ?? {});
    assert.ok(fields.length > 10);
    assert.deepEqual(fields.filter((f) => !new RegExp(`^\\s+${f}:`, 'm').test(block)), []);
  });
});
