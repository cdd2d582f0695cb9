// Two controller replicas on one real API server: both serve traffic, only the leader (a coordination.k8s.io Lease)
// writes status, and leadership moves when the leader goes: at once when it stops (it releases the Lease), and
// when the Lease expires when it crashes (Controller.abandon(): no release, renewals just stop). The two scenarios
// use different Leases and namespaces and run concurrently (each in order inside: node:test's concurrency is
// inherited): the crash one spends most of its time waiting for the 15 s Lease.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { apis, condition, eventually, readRoute, startTestController, webSocketRoute, type Apis, type TestController } from './harness.ts';

const WSR = { group: 'wsgate.io', version: 'v1alpha1', plural: 'websocketroutes' };
/** The production defaults (controller.md): the crash scenario is the "within the lease duration (15 s)". */
const PRODUCTION_LEASE = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

describe('leader election between two controller replicas', { concurrency: true }, () => {
  let cp: ControlPlane;
  let api: Apis;
  let coordination: CoordinationV1Api;

  before(async () => {
    cp = await startControlPlane();
    api = apis(cp.kubeConfig());
    coordination = cp.kubeConfig().makeApiClient(CoordinationV1Api);
  });

  after(async () => {
    await cp?.stop();
  });

  /**
   * Two replicas on the Lease `leaseName` watching only `namespace` (so that the scenarios, which run at the same
   * time, do not write each other's status), once both are ready and exactly one leads.
   */
  async function startPair(namespace: string, leaseName: string, leaseTiming?: typeof PRODUCTION_LEASE): Promise<[TestController, TestController]> {
    await api.core.createNamespace({ body: { metadata: { name: namespace } } });
    const kc = cp.kubeConfig();
    const pair = await Promise.all(['one', 'two'].map((n) =>
      startTestController(kc, { namespace, leaseName, identity: `${leaseName}-${n}`, ...(leaseTiming ? { leaseTiming } : {}) })));
    const [one, two] = pair as [TestController, TestController];
    await eventually('both ready, exactly one leader', () =>
      one.controller.gateway.notReady() === undefined &&
      two.controller.gateway.notReady() === undefined &&
      Number(one.controller.isLeader) + Number(two.controller.isLeader) === 1
        ? true
        : undefined,
    { timeoutMs: 30_000 });
    return one.controller.isLeader ? [one, two] : [two, one];
  }

  const statusSays = (namespace: string, name: string) => async () =>
    (condition(await readRoute(api, namespace, name), 'ResolvedRefs')?.status === 'False' ? true : undefined);
  const createRoute = (namespace: string, name: string) =>
    api.custom.createNamespacedCustomObject({ ...WSR, namespace, body: webSocketRoute(namespace, name, { host: `${name}.test`, service: 'missing' }) });

  describe('when the leader stops', { concurrency: 1 }, () => {
    const NS = 'leader-stop';
    let leader: TestController;
    let follower: TestController;

    before(async () => {
      [leader, follower] = await startPair(NS, 'wsgate-leader');
    });

    after(async () => {
      await leader?.controller.stop();
      await follower?.controller.stop();
    });

    it('lets only the leader write status; the other replica serves the same table', async () => {
      await createRoute(NS, 'first');
      await eventually('status from the leader', statusSays(NS, 'first'), { times: 1 });
      await eventually('both replicas to have the route in their table', () =>
        [leader, follower].every((r) => r.controller.lastResult?.statuses.some((s) => s.name === 'first')) ? true : undefined,
      );
      assert.ok(leader.controller.statusWrites > 0);
      assert.equal(follower.controller.statusWrites, 0, 'the follower wrote no status');
      assert.equal(await metricOf(leader), 1);
      assert.equal(await metricOf(follower), 0);
    });

    it('moves leadership at once (the Lease is released), and the new leader writes status', async () => {
      await leader.controller.stop();
      // Released: the follower need not wait out the 3 s Lease; its next try (every 200 ms) takes it.
      await eventually('the other replica to lead', () => (follower.controller.isLeader ? true : undefined), { timeoutMs: 2_000, times: 1 });
      const l = await coordination.readNamespacedLease({ namespace: 'default', name: 'wsgate-leader' });
      assert.equal(l.spec?.holderIdentity, follower.controller.identity);
      await createRoute(NS, 'second');
      await eventually('status from the new leader', statusSays(NS, 'second'), { times: 1 });
      assert.ok(follower.controller.statusWrites > 0);
    });
  });

  describe('when the leader crashes (the Lease is not released)', { concurrency: 1 }, () => {
    const NS = 'leader-crash';
    let leader: TestController;
    let follower: TestController;

    before(async () => {
      [leader, follower] = await startPair(NS, 'wsgate-leader-crash', PRODUCTION_LEASE);
    });

    after(async () => {
      await leader?.controller.stop();
      await follower?.controller.stop();
    });

    it('lets the other replica take over once the 15 s Lease expires, and it writes status', async (ctx) => {
      const lease = (): Promise<V1Lease> => coordination.readNamespacedLease({ namespace: 'default', name: 'wsgate-leader-crash' });
      const writesBefore = leader.controller.statusWrites;
      await leader.controller.abandon();
      const last = await lease();
      assert.equal(last.spec?.holderIdentity, leader.controller.identity, 'the crashed leader still holds the Lease');
      const lastRenewal = new Date(last.spec?.renewTime ?? 0).getTime();
      const transitions = last.spec?.leaseTransitions ?? 0;
      // Made after the crash: nobody may write its status until the follower leads.
      await createRoute(NS, 'crash');

      const { leaseDurationMs, retryPeriodMs } = PRODUCTION_LEASE;
      // The follower takes over at its first try after the Lease has not changed for its duration (by its own
      // clock, from when it first saw the last renewal): between 15 s and 15 s + two retry periods (2 s + 20%
      // jitter each: one to see the last renewal, one to try after expiry) after that renewal.
      const latest = leaseDurationMs + 2 * retryPeriodMs * 1.2 + 1_000;
      const tookOver = await eventually('the follower to lead', () => {
        if (follower.controller.isLeader) return Date.now() - lastRenewal;
        assert.equal(follower.controller.statusWrites, 0, 'the follower wrote status before it led');
        return undefined;
      }, { times: 1, everyMs: 50, timeoutMs: latest + 5_000 });
      ctx.diagnostic(`took over ${tookOver} ms after the last renewal`);
      assert.ok(tookOver >= leaseDurationMs, `took over ${tookOver} ms after the last renewal: not before the Lease expired`);
      assert.ok(tookOver <= latest, `took over ${tookOver} ms after the last renewal (at most ${latest})`);

      const now = await lease();
      assert.equal(now.spec?.holderIdentity, follower.controller.identity);
      assert.equal(now.spec?.leaseTransitions, transitions + 1);
      await eventually('status from the new leader', statusSays(NS, 'crash'), { times: 1 });
      // The API server answers the PATCH after storing it: the write can be read before the writer has counted it.
      await eventually('the new leader counts its write', () => (follower.controller.statusWrites > 0 ? true : undefined), { times: 1 });
      assert.equal(leader.controller.statusWrites, writesBefore, 'the crashed replica wrote nothing more');
    });
  });
});

async function metricOf(t: TestController): Promise<number> {
  return (await t.metrics.leader.get()).values[0]?.value ?? 0;
}
