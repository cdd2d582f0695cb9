// Two controller replicas on one real API server: both serve traffic, only the leader (a coordination.k8s.io Lease)
// writes status, and stopping the leader moves leadership to the other, which then writes status.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../helpers/kube.ts';
import { apis, condition, eventually, readRoute, startTestController, webSocketRoute, type Apis, type TestController } from './harness.ts';

const NS = 'leader';
const WSR = { group: 'wsgate.io', version: 'v1alpha1', namespace: NS, plural: 'websocketroutes' };

describe('leader election between two controller replicas', () => {
  let cp: ControlPlane;
  let api: Apis;
  let one: TestController;
  let two: TestController;

  before(async () => {
    cp = await startControlPlane();
    api = apis(cp.kubeConfig());
    await api.core.createNamespace({ body: { metadata: { name: NS } } });
    one = await startTestController(cp.kubeConfig(), { leaseName: 'wsgate-leader', identity: 'replica-one' });
    two = await startTestController(cp.kubeConfig(), { leaseName: 'wsgate-leader', identity: 'replica-two' });
    await eventually('both ready, exactly one leader', () =>
      one.controller.gateway.notReady() === undefined &&
      two.controller.gateway.notReady() === undefined &&
      Number(one.controller.isLeader) + Number(two.controller.isLeader) === 1
        ? true
        : undefined,
    );
  });

  after(async () => {
    await one?.controller.stop();
    await two?.controller.stop();
    await cp?.stop();
  });

  it('lets only the leader write status; the other replica serves the same table', async () => {
    const [leader, follower] = one.controller.isLeader ? [one, two] : [two, one];
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'first', { host: 'first.test', service: 'missing' }) });
    await eventually('status from the leader', async () => (condition(await readRoute(api, NS, 'first'), 'ResolvedRefs')?.status === 'False' ? true : undefined), { times: 1 });
    await eventually('both replicas to have the route in their table', () =>
      [leader, follower].every((r) => r.controller.lastResult?.statuses.some((s) => s.name === 'first')) ? true : undefined,
    );
    assert.ok(leader.controller.statusWrites > 0);
    assert.equal(follower.controller.statusWrites, 0, 'the follower wrote no status');
    assert.equal(await metricOf(leader), 1);
    assert.equal(await metricOf(follower), 0);
  });

  it('moves leadership when the leader stops, and the new leader writes status', async () => {
    const [leader, follower] = one.controller.isLeader ? [one, two] : [two, one];
    await leader.controller.stop();
    await eventually('the other replica to lead', () => (follower.controller.isLeader ? true : undefined), { timeoutMs: 10_000 });
    const coordination = cp.kubeConfig().makeApiClient(CoordinationV1Api);
    const l = await coordination.readNamespacedLease({ namespace: 'default', name: 'wsgate-leader' });
    assert.equal(l.spec?.holderIdentity, follower.controller.identity);
    await api.custom.createNamespacedCustomObject({ ...WSR, body: webSocketRoute(NS, 'second', { host: 'second.test', service: 'missing' }) });
    await eventually('status from the new leader', async () => (condition(await readRoute(api, NS, 'second'), 'ResolvedRefs')?.status === 'False' ? true : undefined), { times: 1 });
    assert.ok(follower.controller.statusWrites > 0);
  });
});

async function metricOf(t: TestController): Promise<number> {
  return (await t.metrics.leader.get()).values[0]?.value ?? 0;
}
