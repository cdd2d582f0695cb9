// Table tests of the controller's pure parts: which changes matter, when a burst of changes fires, what status to
// write, the restart backoff, and the status queue's order of writes.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { CONTROLLER_NAME, type Condition, type RouteStatus } from '../../src/api/types.ts';
import { Debouncer, fireAt } from '../../src/controller/debounce.ts';
import { restartDelay } from '../../src/controller/informers.ts';
import { StatusQueue } from '../../src/controller/status-queue.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { converge } from '../helpers/l7-peers.ts';
import { isRelevant, referencesOf, type RelevanceView } from '../../src/controller/relevance.ts';
import { ingressStatusUpdate, publishedAddresses, routeStatusUpdate, warningEvents } from '../../src/controller/status.ts';
import { ObjectStore, type StoreEvent } from '../../src/controller/store.ts';
import type { WatchedKind } from '../../src/controller/kinds.ts';
import type { ObjectStatus } from '../../src/translate/snapshot.ts';

function obj(kind: WatchedKind, name: string, extra: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubernetesObject {
  return { kind, metadata: { name, namespace: 'prod', resourceVersion: '1', generation: 1, ...meta }, ...extra };
}
const added = (kind: WatchedKind, o: KubernetesObject): StoreEvent => ({ kind, type: 'added', new: o });
const updated = (kind: WatchedKind, a: KubernetesObject, b: KubernetesObject): StoreEvent => ({ kind, type: 'updated', old: a, new: b });
const deleted = (kind: WatchedKind, o: KubernetesObject): StoreEvent => ({ kind, type: 'deleted', old: o });

const route = obj('WebSocketRoute', 'chat', {
  spec: { tls: { secretName: 'chat-tls' }, rules: [{ backends: [{ service: 'chat', port: 80 }] }] },
});
const ourIngress = obj('Ingress', 'web', {
  spec: { ingressClassName: 'wsgate', rules: [{ http: { paths: [{ backend: { service: { name: 'web' } } }] } }] },
});
const otherIngress = obj('Ingress', 'nginx', {
  spec: { ingressClassName: 'nginx', rules: [{ http: { paths: [{ backend: { service: { name: 'other' } } }] } }] },
});

function view(extra: Partial<RelevanceView> = {}): RelevanceView {
  return {
    ...referencesOf({ ingresses: [ourIngress], webSocketRoutes: [route as never], tcpTunnels: [] }),
    ingressClassName: 'wsgate',
    ingressClasses: [],
    ...extra,
  };
}

describe('relevance', () => {
  const cases: { name: string; event: StoreEvent; relevant: boolean; view?: Partial<RelevanceView> }[] = [
    { name: 'a Secret no route references', event: added('Secret', obj('Secret', 'unrelated')), relevant: false },
    { name: 'a Secret a route references for TLS', event: added('Secret', obj('Secret', 'chat-tls')), relevant: true },
    { name: 'the same Secret name in another namespace', event: added('Secret', obj('Secret', 'chat-tls', {}, { namespace: 'dev' })), relevant: false },
    { name: 'a Service a route references', event: updated('Service', obj('Service', 'chat'), obj('Service', 'chat', {}, { resourceVersion: '2' })), relevant: true },
    { name: 'a Service an Ingress of ours references', event: deleted('Service', obj('Service', 'web')), relevant: true },
    { name: 'a Service only an Ingress of another class references', event: added('Service', obj('Service', 'other')), relevant: false },
    { name: 'the --publish-service', event: added('Service', obj('Service', 'lb')), relevant: true, view: { publishService: 'prod/lb' } },
    {
      name: "an EndpointSlice of a referenced Service",
      event: added('EndpointSlice', obj('EndpointSlice', 'chat-x', {}, { labels: { 'kubernetes.io/service-name': 'chat' } })),
      relevant: true,
    },
    {
      name: 'an EndpointSlice of an unrelated Service',
      event: added('EndpointSlice', obj('EndpointSlice', 'db-x', {}, { labels: { 'kubernetes.io/service-name': 'db' } })),
      relevant: false,
    },
    { name: 'an Ingress of another class', event: added('Ingress', otherIngress), relevant: false },
    { name: 'an Ingress of our class', event: added('Ingress', ourIngress), relevant: true },
    {
      name: 'an Ingress that moves from our class to another (it was ours)',
      event: updated('Ingress', ourIngress, obj('Ingress', 'web', { spec: { ingressClassName: 'nginx' } }, { resourceVersion: '2', generation: 2 })),
      relevant: true,
    },
    {
      name: 'a status-only update of our Ingress',
      event: updated('Ingress', ourIngress, { ...ourIngress, metadata: { ...ourIngress.metadata, resourceVersion: '2' }, status: { loadBalancer: {} } } as KubernetesObject),
      relevant: false,
    },
    {
      name: 'an annotation change on our Ingress',
      event: updated('Ingress', ourIngress, { ...ourIngress, metadata: { ...ourIngress.metadata, resourceVersion: '2', annotations: { 'wsgate.io/idle-timeout-seconds': '5' } } }),
      relevant: true,
    },
    { name: 'a new WebSocketRoute', event: added('WebSocketRoute', route), relevant: true },
    {
      name: 'a status-only update of a WebSocketRoute (wsgate writing status)',
      event: updated('WebSocketRoute', route, { ...route, metadata: { ...route.metadata, resourceVersion: '2' }, status: { conditions: [] } } as KubernetesObject),
      relevant: false,
    },
    {
      name: 'a spec change of a WebSocketRoute',
      event: updated('WebSocketRoute', route, { ...route, metadata: { ...route.metadata, resourceVersion: '2', generation: 2 }, spec: { rules: [] } } as KubernetesObject),
      relevant: true,
    },
    { name: 'a TCPTunnel deleted', event: deleted('TCPTunnel', obj('TCPTunnel', 'mqtt')), relevant: true },
    { name: 'an IngressClass of another controller', event: added('IngressClass', obj('IngressClass', 'nginx', { spec: { controller: 'k8s.io/ingress-nginx' } })), relevant: false },
    { name: 'our IngressClass', event: added('IngressClass', obj('IngressClass', 'wsgate', { spec: { controller: CONTROLLER_NAME } })), relevant: true },
  ];
  for (const c of cases) {
    it(`${c.relevant ? 'reacts to' : 'ignores'} ${c.name}`, () => {
      assert.equal(isRelevant(c.event, view(c.view)), c.relevant);
    });
  }

  it('treats an Ingress without a class as ours only when our IngressClass is the default', () => {
    const classless = obj('Ingress', 'plain', { spec: { rules: [] } });
    assert.equal(isRelevant(added('Ingress', classless), view()), false);
    const defaultClass = obj('IngressClass', 'wsgate', { spec: { controller: CONTROLLER_NAME } }, {
      annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' },
    });
    assert.equal(isRelevant(added('Ingress', classless), view({ ingressClasses: [defaultClass as never] })), true);
  });
});

describe('debounce', () => {
  const cases: { name: string; first: number; last: number; delay: number; max: number; at: number }[] = [
    { name: 'one trigger fires delay after it', first: 0, last: 0, delay: 100, max: 1000, at: 100 },
    { name: 'a burst fires delay after its last trigger', first: 0, last: 450, delay: 100, max: 1000, at: 550 },
    { name: 'a long burst fires at max delay after its first trigger', first: 0, last: 990, delay: 100, max: 1000, at: 1000 },
    { name: 'max delay shorter than delay counts as delay', first: 0, last: 0, delay: 100, max: 10, at: 100 },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(fireAt(c.first, c.last, c.delay, c.max), c.at));
  }

  it('runs once for a burst, and never two runs at once', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    try {
      let runs = 0;
      let release: () => void = () => {};
      const d = new Debouncer({
        delayMs: 100,
        maxDelayMs: 1000,
        run: () => {
          runs++;
          return new Promise<void>((resolve) => { release = resolve; });
        },
        onError: (err) => assert.fail(String(err)),
      });
      for (let i = 0; i < 5; i++) {
        d.trigger();
        mock.timers.tick(50);
      }
      assert.equal(runs, 0, 'the burst is still going');
      mock.timers.tick(100);
      assert.equal(runs, 1);
      d.trigger(); // during the run
      mock.timers.tick(500);
      assert.equal(runs, 1, 'no second run while the first is in progress');
      release();
      await new Promise((r) => setImmediate(r));
      mock.timers.tick(100);
      assert.equal(runs, 2, 'the trigger during the run fires after it');
      release();
      await d.stop();
    } finally {
      mock.timers.reset();
    }
  });
});

function computed(conditions: readonly Partial<Condition>[], generation = 3): ObjectStatus {
  return {
    kind: 'WebSocketRoute',
    namespace: 'prod',
    name: 'chat',
    observedGeneration: generation,
    conditions: conditions.map((c) => ({ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', ...c })),
  };
}

describe('status', () => {
  const t0 = new Date('2030-01-01T00:00:00.500Z');
  const t1 = new Date('2030-01-01T01:00:00Z');
  const ok = computed([{ type: 'Accepted' }, { type: 'ResolvedRefs', reason: 'ResolvedRefs' }]);

  it('writes conditions and observedGeneration to an object without status', () => {
    const s = routeStatusUpdate(undefined, ok, t0);
    assert.equal(s?.observedGeneration, 3);
    assert.deepEqual(s?.conditions?.map((c) => [c.type, c.status, c.observedGeneration, c.lastTransitionTime]), [
      ['Accepted', 'True', 3, '2030-01-01T00:00:00Z'],
      ['ResolvedRefs', 'True', 3, '2030-01-01T00:00:00Z'],
    ]);
  });

  it('writes nothing when the object already says it', () => {
    const current = routeStatusUpdate(undefined, ok, t0) as RouteStatus;
    assert.equal(routeStatusUpdate(structuredClone(current), ok, t1), undefined);
  });

  it('keeps lastTransitionTime when only the generation moves on', () => {
    const current = routeStatusUpdate(undefined, ok, t0) as RouteStatus;
    const next = routeStatusUpdate(current, computed([{ type: 'Accepted' }, { type: 'ResolvedRefs', reason: 'ResolvedRefs' }], 4), t1);
    assert.equal(next?.observedGeneration, 4);
    assert.deepEqual(next?.conditions?.map((c) => c.lastTransitionTime), ['2030-01-01T00:00:00Z', '2030-01-01T00:00:00Z']);
  });

  it('moves lastTransitionTime of the condition whose status changed, only', () => {
    const current = routeStatusUpdate(undefined, ok, t0) as RouteStatus;
    const bad = computed([{ type: 'Accepted' }, { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'no Service' }]);
    const next = routeStatusUpdate(current, bad, t1);
    assert.deepEqual(next?.conditions?.map((c) => [c.type, c.status, c.lastTransitionTime]), [
      ['Accepted', 'True', '2030-01-01T00:00:00Z'],
      ['ResolvedRefs', 'False', '2030-01-01T01:00:00Z'],
    ]);
  });

  it('publishes --publish-address over the Service, IPs as ip and names as hostname', () => {
    assert.deepEqual(publishedAddresses({ addresses: ['10.0.0.1', 'lb.example.com', 'fd00::1'] }), [
      { ip: '10.0.0.1' },
      { hostname: 'lb.example.com' },
      { ip: 'fd00::1' },
    ]);
  });

  it("publishes the Service's load balancer, else its external IPs, else its cluster IP", () => {
    assert.deepEqual(publishedAddresses({ service: { spec: { clusterIP: '10.96.0.10' }, status: { loadBalancer: { ingress: [{ hostname: 'x.elb' }] } } } }), [{ hostname: 'x.elb' }]);
    assert.deepEqual(publishedAddresses({ service: { spec: { clusterIP: '10.96.0.10', externalIPs: ['1.2.3.4'] } } }), [{ ip: '1.2.3.4' }]);
    assert.deepEqual(publishedAddresses({ service: { spec: { clusterIP: '10.96.0.10' } } }), [{ ip: '10.96.0.10' }]);
    assert.deepEqual(publishedAddresses({ service: { spec: { clusterIP: 'None' } } }), []);
    assert.deepEqual(publishedAddresses({}), []);
  });

  it('writes Ingress status only when the addresses differ', () => {
    assert.equal(ingressStatusUpdate({ loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } }, [{ ip: '1.2.3.4' }]), undefined);
    assert.deepEqual(ingressStatusUpdate({}, [{ ip: '1.2.3.4' }]), { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } });
    assert.deepEqual(ingressStatusUpdate({ loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } }, []), { loadBalancer: { ingress: [] } });
  });

  it('records one Warning Event per False condition, keyed by object, generation and problem', () => {
    const bad = computed([{ type: 'Accepted' }, { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'no Service' }]);
    const events = warningEvents(bad, 'uid-1');
    assert.equal(events.length, 1);
    assert.equal(events[0]?.reason, 'BackendNotFound');
    assert.equal(warningEvents(bad, 'uid-1')[0]?.key, events[0]?.key);
    assert.notEqual(warningEvents(computed(bad.conditions, 4), 'uid-1')[0]?.key, events[0]?.key);
    assert.deepEqual(warningEvents(ok, 'uid-1'), []);
  });
});

describe('store', () => {
  it('keeps a TLS Secret whole only while a route references it', () => {
    const wanted = new Set<string>();
    const store = new ObjectStore({ secretWanted: (k) => wanted.has(k) });
    const secret = obj('Secret', 'tls', { type: 'kubernetes.io/tls', data: { 'tls.crt': 'x', 'tls.key': 'y' } });
    store.upsert('Secret', secret);
    assert.equal(store.snapshot('wsgate').secrets.length, 0, 'unreferenced: no data in memory');
    assert.equal((store.get('Secret', 'prod/tls') as { data?: unknown }).data, undefined);
    wanted.add('prod/tls');
    assert.deepEqual(store.missingSecrets(wanted), ['prod/tls']);
    assert.equal(store.upsert('Secret', secret)?.type, 'updated', 'the same version, now with its data');
    assert.equal(store.snapshot('wsgate').secrets.length, 1);
    wanted.clear();
    store.pruneSecrets(wanted);
    assert.equal(store.snapshot('wsgate').secrets.length, 0);
  });

  it('reports a relist as the differences: deletions, additions, changes; nothing for the same versions', () => {
    const store = new ObjectStore({ secretWanted: () => false });
    store.replace('Service', [obj('Service', 'a'), obj('Service', 'b')]);
    const events = store.replace('Service', [obj('Service', 'b'), obj('Service', 'c'), obj('Service', 'a', {}, { resourceVersion: '2' })]);
    assert.deepEqual(
      events.map((e) => [e.type, e.new?.metadata?.name ?? e.old?.metadata?.name]).sort(),
      [['added', 'c'], ['updated', 'a']].sort(),
    );
    assert.deepEqual(store.replace('Service', [obj('Service', 'c')]).map((e) => [e.type, e.old?.metadata?.name]).sort(), [['deleted', 'a'], ['deleted', 'b']]);
  });
});

describe('restart backoff', () => {
  const cases: { attempt: number; random: number; ms: number }[] = [
    { attempt: 0, random: 0, ms: 250 },
    { attempt: 0, random: 1, ms: 500 },
    { attempt: 3, random: 0.5, ms: 3000 },
    { attempt: 10, random: 0, ms: 15_000 },
    { attempt: 10, random: 1, ms: 30_000 },
    { attempt: 1000, random: 1, ms: 30_000 },
  ];
  for (const c of cases) {
    it(`waits ${c.ms} ms before restart ${c.attempt} with jitter ${c.random}`, () => {
      assert.equal(restartDelay(c.attempt, {}, () => c.random), c.ms);
    });
  }
});

describe('status queue', () => {
  /** A queue whose writes record their key and value, and fail while `failing` holds that key. */
  function recorder(o: { active?: () => boolean } = {}) {
    const written: string[] = [];
    const failing = new Set<string>();
    let attempts = 0;
    const queue = new StatusQueue({ log: silentLogger(), active: o.active ?? (() => true), backoff: { baseMs: 5, maxMs: 20 } });
    const put = (key: string, value: string): void =>
      queue.enqueue(key, async () => {
        attempts++;
        await Promise.resolve();
        if (failing.has(key)) throw new Error(`injected failure of ${key}`);
        written.push(`${key}=${value}`);
      });
    return { queue, written, failing, put, attempts: () => attempts };
  }

  it('writes the latest value of a key once, keys in the order they were first queued', async () => {
    const r = recorder();
    r.put('a', '1');
    r.put('b', '1');
    r.put('b', '2');
    r.put('a', '2');
    r.put('c', '1');
    await r.queue.idle();
    // `a` was already in flight when its second value came: written twice, in order.
    assert.deepEqual(r.written, ['a=1', 'b=2', 'a=2', 'c=1']);
  });

  it('retries a failed write after a backoff until it succeeds, and a newer value replaces the one retried', async () => {
    const r = recorder();
    r.failing.add('a');
    r.put('a', '1');
    r.put('b', '1');
    await r.queue.idle();
    assert.deepEqual(r.written, ['b=1']);
    assert.equal(r.queue.size, 1, 'the failed write waits out its backoff');
    r.put('a', '2');
    r.failing.delete('a');
    // The newer value keeps the backoff; the queue wakes up for it by itself.
    await converge(() => r.written.length === 2, 'the retried write', 1, 5000);
    assert.deepEqual(r.written, ['b=1', 'a=2']);
  });

  it('writes nothing while not active (not the leader), and drops what was pending', async () => {
    let active = false;
    const r = recorder({ active: () => active });
    r.put('a', '1');
    await r.queue.idle();
    assert.deepEqual(r.written, []);
    assert.equal(r.queue.size, 0);
    active = true;
    r.put('b', '1');
    await r.queue.idle();
    assert.deepEqual(r.written, ['b=1']);
  });

  it('forgets a cancelled key, and writes nothing once stopped', async () => {
    const r = recorder();
    r.failing.add('a');
    r.put('a', '1');
    await r.queue.idle();
    r.queue.cancel('a');
    assert.equal(r.queue.size, 0);
    await r.queue.stop();
    r.put('b', '1');
    await r.queue.idle();
    assert.deepEqual(r.written, []);
    assert.equal(r.attempts(), 1);
  });
});
