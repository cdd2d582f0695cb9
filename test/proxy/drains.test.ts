// Closes wsgate makes on purpose, spread over time (issue 11): a route that leaves the table (onRemoval), an
// endpoint that leaves its route (endpointDrainSeconds), and rebalancing after endpoints are added. Real `ws`
// clients and backends on loopback; the tables are what translate would give after the same object changes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Backend, Policy, RoutingTable } from '../../src/model/table.ts';
import { hashOwner } from '../../src/proxy/balancer.ts';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { startGateway } from '../helpers/gateway.ts';
import { converge, openClient, roundTrip, startWsBackend, stopGateway, type Client, type WsBackend } from '../helpers/l7-peers.ts';

const ROUTE_ID = 'WebSocketRoute/default/chat#Prefix:/';

function chat(backends: Backend[], policy: Partial<Policy> = {}): RoutingTable {
  return table({ virtualHosts: [vhost('*', httpRoute({ route: 'default/chat', id: ROUTE_ID, backends, policy }))] });
}

function other(port: number): RoutingTable {
  return table({ virtualHosts: [vhost('other.test', httpRoute({ route: 'default/other', backends: [backend('o', port)] }))] });
}

/** Opens n clients (each proven by an echo) and records when and how each is closed. */
async function openMany(url: string, n: number, headers?: (i: number) => Record<string, string>): Promise<{ clients: Client[]; closed: Promise<{ code: number; at: number }>[] }> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i++) {
    const c = await openClient(url, [], headers ? { headers: headers(i) } : {});
    assert.equal((await roundTrip(c, `hi ${i}`)).data.toString(), `hi ${i}`);
    clients.push(c);
  }
  return { clients, closed: clients.map((c) => c.closed.then((r) => ({ code: r.code, at: performance.now() }))) };
}

let a: WsBackend;
let b: WsBackend;
let c: WsBackend;
before(async () => {
  [a, b, c] = [await startWsBackend(), await startWsBackend(), await startWsBackend()];
});
after(async () => {
  for (const s of [a, b, c]) await s.close();
});

describe('a route that leaves the table', () => {
  test('with onRemoval Close: its tunnels get 1001 spread over graceSeconds, counted as route_removed', async () => {
    // The deleted route's series are kept long enough to be read here (as they are for scrapes).
    const gw = await startGateway(chat([backend('a', a.port)], { onRemoval: { action: 'Close', graceSeconds: 2 } }), { pruneAfterMs: 60_000 });
    try {
      const { closed } = await openMany(gw.wsUrl, 20);
      await gw.gateway.apply(other(a.port));
      const results = await Promise.all(closed);
      assert.deepEqual([...new Set(results.map((r) => r.code))], [1001]);
      const times = results.map((r) => r.at).sort((x, y) => x - y);
      assert.ok(times.at(-1)! - times[0]! >= 1000, `closes spread over ${Math.round(times.at(-1)! - times[0]!)} ms, not at once`);
      await converge(async () => (await gw.metric('wsgate_connections_total', { route: 'default/chat', outcome: 'route_removed' })) === 20, '20 route_removed');
    } finally {
      await stopGateway(gw);
    }
  });

  test('with onRemoval Keep: its tunnels stay and keep working', async () => {
    const gw = await startGateway(chat([backend('a', a.port)], { onRemoval: { action: 'Keep', graceSeconds: 0 } }));
    try {
      const { clients } = await openMany(gw.wsUrl, 10);
      await gw.gateway.apply(other(a.port));
      assert.equal(gw.gateway.registry.scheduledCloses, 0);
      // Several sweeps later they still echo.
      for (let i = 0; i < 3; i++) gw.gateway.registry.sweep();
      for (const [i, cl] of clients.entries()) assert.equal((await roundTrip(cl, `still ${i}`)).data.toString(), `still ${i}`);
      assert.equal(gw.gateway.registry.size, 10);
    } finally {
      await stopGateway(gw);
    }
  });
});

describe('an endpoint that leaves its route', () => {
  test('has its tunnels closed with 1001 over endpointDrainSeconds; the others are untouched and take the reconnections', async () => {
    const three = [backend('a', a.port), backend('b', b.port), backend('c', c.port)];
    const gw = await startGateway(chat(three, { endpointDrainSeconds: 2 }));
    try {
      const { clients, closed } = await openMany(gw.wsUrl, 30);
      assert.deepEqual([...gw.gateway.registry.tunnelsByEndpoint(ROUTE_ID).values()], [10, 10, 10]);
      assert.equal(c.connections.length, 10);
      // c becomes terminating: translate leaves it out of the route. Its 10 tunnels are scheduled (the first goes
      // at once), no other is.
      await gw.gateway.apply(chat([backend('a', a.port), backend('b', b.port)], { endpointDrainSeconds: 2 }));
      assert.equal(gw.gateway.registry.scheduledCloses, 9);
      const closedClients = new Set<number>();
      closed.forEach((p, i) => void p.then(() => closedClients.add(i)));
      await converge(() => closedClients.size === 10 && gw.gateway.registry.scheduledCloses === 0, 'the 10 tunnels on c closed', 1, 10_000);
      for (const i of closedClients) assert.equal((await closed[i]!).code, 1001);
      // The others carry on, and nothing more is scheduled.
      for (const [i, cl] of clients.entries()) {
        if (!closedClients.has(i)) assert.equal((await roundTrip(cl, `on ${i}`)).data.toString(), `on ${i}`);
      }
      assert.equal(closedClients.size, 10);
      // Reconnections land on a and b.
      await openMany(gw.wsUrl, 10);
      assert.deepEqual([...gw.gateway.registry.tunnelsByEndpoint(ROUTE_ID).values()].sort(), [15, 15]);
      assert.equal(await gw.metric('wsgate_connections_total', { route: 'default/chat', outcome: 'endpoint_draining' }), 10);
    } finally {
      await stopGateway(gw);
    }
  });

  test('keeps the tunnels not yet closed when the endpoint comes back before its window ends', async () => {
    const two = [backend('a', a.port), backend('b', b.port)];
    const gw = await startGateway(chat(two, { endpointDrainSeconds: 60 }));
    try {
      const { clients } = await openMany(gw.wsUrl, 20);
      await gw.gateway.apply(chat([backend('a', a.port)], { endpointDrainSeconds: 60 }));
      assert.ok(gw.gateway.registry.scheduledCloses > 0);
      // b is ready again: what was scheduled is forgotten (the first close of the window went at once).
      await gw.gateway.apply(chat(two, { endpointDrainSeconds: 60 }));
      assert.equal(gw.gateway.registry.scheduledCloses, 0);
      let alive = 0;
      for (const cl of clients) if (cl.ws.readyState === cl.ws.OPEN) alive++;
      assert.ok(alive >= 19, `${alive} of 20 still open`);
    } finally {
      await stopGateway(gw);
    }
  });
});

describe('rebalancing after a scale-out', () => {
  /** Clients that reconnect when wsgate closes them with 1012, as a socket.io or graphql-ws client does. */
  async function reconnecting(url: string, n: number): Promise<{ live: Set<Client>; closes: () => number; stop: () => void }> {
    const live = new Set<Client>();
    let closes = 0;
    let stopped = false;
    const keep = (cl: Client): void => {
      live.add(cl);
      void cl.closed.then(async (r) => {
        live.delete(cl);
        if (stopped || r.code !== 1012) return;
        closes++;
        keep(await openClient(url));
      });
    };
    for (let i = 0; i < n; i++) keep(await openClient(url));
    return { live, closes: () => closes, stop: () => (stopped = true) };
  }

  test('moves 300 tunnels from one endpoint to about 100/100/100 when two are added, at no more than maxClosesPerSecond', { timeout: 90_000 }, async () => {
    const policy: Partial<Policy> = { rebalance: { enabled: true, tolerancePercent: 20, maxClosesPerSecond: 50 } };
    const gw = await startGateway(chat([backend('a', a.port)], policy), { sweepIntervalMs: 100 });
    const fleet = await reconnecting(gw.wsUrl, 300);
    try {
      assert.deepEqual([...gw.gateway.registry.tunnelsByEndpoint(ROUTE_ID).values()], [300]);
      const startedAt = performance.now();
      await gw.gateway.apply(chat([backend('a', a.port), backend('b', b.port), backend('c', c.port)], policy));
      // Within tolerance: each endpoint at most its share (100) × 1.2, every tunnel back.
      await converge(
        () => {
          const counts = [...gw.gateway.registry.tunnelsByEndpoint(ROUTE_ID).values()];
          return counts.length === 3 && counts.every((n) => n <= 120) && counts.reduce((x, y) => x + y, 0) === 300;
        },
        'spread within tolerance',
        3,
        60_000,
      );
      const seconds = (performance.now() - startedAt) / 1000;
      // At most maxClosesPerSecond: the budget accrues from the swap (one second's worth at most held over).
      assert.ok(fleet.closes() <= 50 * seconds + 50, `${fleet.closes()} closes in ${seconds.toFixed(1)} s`);
      assert.ok(fleet.closes() >= 160, `${fleet.closes()} tunnels moved off the first endpoint`);
      assert.equal(await gw.metric('wsgate_rebalance_closes_total', { route: 'default/chat' }), fleet.closes());
    } finally {
      fleet.stop();
      await stopGateway(gw);
    }
  });

  test('moves nothing when rebalancing is off (the default)', async () => {
    const gw = await startGateway(chat([backend('a', a.port)]), { sweepIntervalMs: 100 });
    try {
      const { clients } = await openMany(gw.wsUrl, 12);
      await gw.gateway.apply(chat([backend('a', a.port), backend('b', b.port), backend('c', c.port)]));
      for (let i = 0; i < 5; i++) gw.gateway.registry.sweep();
      assert.deepEqual([...gw.gateway.registry.tunnelsByEndpoint(ROUTE_ID).values()], [12]);
      for (const cl of clients) assert.equal(cl.ws.readyState, cl.ws.OPEN);
      assert.equal(await gw.metric('wsgate_rebalance_closes_total'), 0);
    } finally {
      await stopGateway(gw);
    }
  });

  test('with the affinity cookie (policy Cookie), moves nothing: a client closed would come back to its endpoint', async () => {
    const policy: Partial<Policy> = {
      loadBalancing: { policy: 'Cookie', cookie: { name: 'route', maxAgeSeconds: 0, path: '', sameSite: '', secure: false } },
      rebalance: { enabled: true, tolerancePercent: 20, maxClosesPerSecond: 100 },
    };
    const gw = await startGateway(chat([backend('a', a.port)], policy), { sweepIntervalMs: 100 });
    try {
      const { clients } = await openMany(gw.wsUrl, 12);
      await gw.gateway.apply(chat([backend('a', a.port), backend('b', b.port), backend('c', c.port)], policy));
      for (let i = 0; i < 5; i++) gw.gateway.registry.sweep();
      assert.deepEqual([...gw.gateway.registry.tunnelsByEndpoint(ROUTE_ID).values()], [12]);
      for (const cl of clients) assert.equal(cl.ws.readyState, cl.ws.OPEN);
      assert.equal(await gw.metric('wsgate_rebalance_closes_total'), 0);
    } finally {
      await stopGateway(gw);
    }
  });

  test('with ConsistentHash, moves only the tunnels whose key now belongs to the added endpoint', async () => {
    const policy: Partial<Policy> = {
      loadBalancing: { policy: 'ConsistentHash', hashOn: { kind: 'header', name: 'x-user' } },
      rebalance: { enabled: true, tolerancePercent: 20, maxClosesPerSecond: 100 },
    };
    const two = [backend('a', a.port), backend('b', b.port)];
    const three = [...two, backend('c', c.port)];
    const gw = await startGateway(chat(two, policy), { sweepIntervalMs: 100 });
    try {
      const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
      const { clients, closed } = await openMany(gw.wsUrl, 30, (i) => ({ 'X-User': users[i]! }));
      const movers = new Set(users.flatMap((u, i) => (hashOwner(u, three) === `127.0.0.1:${c.port}` ? [i] : [])));
      assert.ok(movers.size > 0 && movers.size < 30);
      await gw.gateway.apply(chat(three, policy));
      const moved = await Promise.all([...movers].map((i) => closed[i]!));
      for (const r of moved) assert.equal(r.code, 1012);
      // Everyone else stays where the hash put them.
      for (const [i, cl] of clients.entries()) if (!movers.has(i)) assert.equal(cl.ws.readyState, cl.ws.OPEN, `user-${i} stays`);
    } finally {
      await stopGateway(gw);
    }
  });
});

