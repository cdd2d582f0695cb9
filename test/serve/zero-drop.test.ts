// The key guarantee of `wsgate serve`: rewriting the configuration never drops an open connection. 200 WebSockets
// over three routes stay open and keep echoing while the config directory is rewritten 50 times, with routes
// added, changed and removed around them. Each version is awaited until /debug/routes shows exactly its hosts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { roundTrip, startWsBackend, type Client, type WsBackend } from '../helpers/l7-peers.ts';
import {
  awaitMetric,
  backendService,
  createConfigDir,
  endpointSlice,
  handshakeStatus,
  openWithHost,
  service,
  startServe,
  webSocketRoute,
  type ConfigDir,
  type Obj,
  type ServeHarness,
} from '../helpers/serve-harness.ts';

const VERSIONS = 50;
const CONNECTIONS = 200;
/** How many versions a churn route lives: churn-k is in versions k .. k+CHURN_LIFETIME-1. */
const CHURN_LIFETIME = 3;
const LB_POLICIES: Obj[] = [
  { policy: 'LeastConnections' },
  { policy: 'RoundRobin' },
  { policy: 'ConsistentHash', hashOn: { clientIP: true } },
];

/** The carried routes: each long-lived client connects with this Host and path. */
const CARRIED = [
  { route: 'default/alpha', host: 'alpha.test', path: '/ws/a' },
  { route: 'default/beta', host: 'beta.test', path: '/ws' },
  { route: 'default/gamma', host: 'c.gamma.test', path: '/live' },
] as const;

let a: WsBackend;
let b: WsBackend;
let c: WsBackend;
let dir: ConfigDir;
let h: ServeHarness;

interface Tracked {
  readonly client: Client;
  readonly label: string;
}
const carried: Tracked[] = [];
/** Clients opened on churn routes (onRemoval: Keep), kept open past their route's removal: index = churn number. */
const held = new Map<number, Client>();
/** Closes the test did not ask for: must stay empty. */
const unexpectedCloses: string[] = [];
/** Clients the test closes itself. */
const closedByTest = new WeakSet<Client>();
let closing = false;

function churnRange(version: number): number[] {
  const ks: number[] = [];
  for (let k = Math.max(1, version - CHURN_LIFETIME + 1); k <= version; k++) ks.push(k);
  return ks;
}

function servicesFor(version: number): Obj[] {
  const cSlice = endpointSlice('svc-c', c.port);
  if (version % 4 === 0) {
    // An endpoint that is not ready: never chosen, but the slice object changes.
    (cSlice.endpoints as Obj[]).push({ addresses: ['127.0.0.2'], conditions: { ready: false } });
  }
  return [
    ...backendService('svc-a', a.port),
    ...backendService('svc-b', b.port),
    service('svc-c'),
    cSlice,
    // A second Service on backend C: the "extra backend" alpha gains on odd versions.
    ...backendService('svc-extra', c.port),
  ];
}

function carriedRoutesFor(version: number): Obj[] {
  const odd = version % 2 === 1;
  return [
    webSocketRoute('alpha', {
      hostnames: ['alpha.test'],
      rules: [
        {
          path: '/ws',
          backends: [{ service: 'svc-a', weight: (version % 3) + 1 }, ...(odd ? [{ service: 'svc-extra', weight: 1 }] : [])],
        },
      ],
      policy: { loadBalancing: LB_POLICIES[version % LB_POLICIES.length]!, idleTimeoutSeconds: odd ? 0 : 3600 },
    }),
    webSocketRoute('beta', {
      hostnames: odd ? ['beta.test'] : ['beta.test', 'beta-alt.test'],
      rules: [{ path: '/ws', backends: [{ service: 'svc-b' }], policy: { maxConnectionsPerClient: odd ? 0 : 1000 } }],
    }),
    webSocketRoute('gamma', {
      hostnames: ['*.gamma.test'],
      rules: [
        { path: '/live', pathType: 'Exact', backends: [{ service: 'svc-c' }] },
        ...(version % 5 === 0 ? [{ path: '/other', backends: [{ service: 'svc-c' }] }] : []),
      ],
    }),
  ];
}

function churnRoutesFor(version: number): Obj[] {
  return churnRange(version).map((k) =>
    // onRemoval Keep: the tunnels of a churn route outlive its removal (the default, Close, would close them, spread
    // over graceSeconds; test/proxy/drains.test.ts covers that).
    webSocketRoute(`churn-${k}`, {
      hostnames: [`churn-${k}.test`],
      rules: [{ path: '/', backends: [{ service: 'svc-c' }] }],
      policy: { onRemoval: { action: 'Keep' } },
    }),
  );
}

function markerFor(version: number): Obj[] {
  return [webSocketRoute('marker', { hostnames: [`v${version}.marker.test`], rules: [{ path: '/', backends: [{ service: 'svc-c' }] }] })];
}

function expectedHosts(version: number): string[] {
  const hosts = ['alpha.test', 'beta.test', '*.gamma.test', `v${version}.marker.test`, ...churnRange(version).map((k) => `churn-${k}.test`)];
  if (version % 2 === 0) hosts.push('beta-alt.test');
  return hosts.sort();
}

/**
 * Writes one version of the configuration. The churn routes move between two files from one version to the next:
 * the file that loses objects is written first, so that no intermediate state defines an object twice. The marker
 * is written last.
 */
function writeVersion(version: number): void {
  dir.write('00-services.yaml', servicesFor(version));
  const together = version % 2 === 0;
  if (together) {
    dir.remove('20-churn.yaml');
    dir.write('10-routes.yaml', [...carriedRoutesFor(version), ...churnRoutesFor(version)]);
  } else {
    dir.write('10-routes.yaml', carriedRoutesFor(version));
    dir.write('20-churn.yaml', churnRoutesFor(version));
  }
  dir.write('99-marker.yaml', markerFor(version));
}

function track(client: Client, label: string): void {
  client.ws.once('close', (code, reason) => {
    if (!closing && !closedByTest.has(client)) unexpectedCloses.push(`${label}: closed with ${code} ${reason.toString()}`);
  });
}

async function echoRound(version: number): Promise<void> {
  await Promise.all(
    carried.map(async ({ client, label }, i) => {
      const payload = `v${version} ${label} #${i}`;
      const m = await roundTrip(client, payload);
      assert.equal(m.data.toString(), payload, `echo on ${label}`);
    }),
  );
}

before(async () => {
  [a, b, c] = await Promise.all([startWsBackend(), startWsBackend(), startWsBackend()]);
  dir = createConfigDir();
  // Version 0: the carried routes and nothing else, in the split layout of odd versions.
  dir.write('00-services.yaml', servicesFor(0));
  dir.write('10-routes.yaml', carriedRoutesFor(0));
  dir.write('20-churn.yaml', []);
  dir.write('99-marker.yaml', markerFor(0));
  h = await startServe(dir.path);
});

after(async () => {
  closing = true;
  for (const t of carried) t.client.ws.terminate();
  for (const cl of held.values()) cl.ws.terminate();
  await h?.close();
  await Promise.all([a?.close(), b?.close(), c?.close()]);
  dir?.dispose();
});

describe('zero-drop reconfiguration through wsgate serve', { timeout: 180_000 }, () => {
  test(`keeps ${CONNECTIONS} WebSockets open and echoing across ${VERSIONS} rewrites of the config directory`, async () => {
    await h.awaitTable((hosts) => hosts.includes('v0.marker.test'), 'version 0 live');
    // 1. Open the carried connections, spread over the three routes.
    for (let start = 0; start < CONNECTIONS; start += 50) {
      const batch: Promise<void>[] = [];
      for (let i = start; i < Math.min(CONNECTIONS, start + 50); i++) {
        const r = CARRIED[i % CARRIED.length]!;
        batch.push(
          openWithHost(`${h.wsUrl}${r.path}`, r.host).then((client) => {
            track(client, r.route);
            carried.push({ client, label: r.route });
          }),
        );
      }
      await Promise.all(batch);
    }
    await echoRound(0);

    // 2. Rewrite the directory, one version at a time; each version is awaited until it is exactly what is live.
    for (let v = 1; v <= VERSIONS; v++) {
      writeVersion(v);
      const want = expectedHosts(v);
      await h.awaitTable((hosts) => JSON.stringify([...hosts].sort()) === JSON.stringify(want), `version ${v} live: ${want.join(', ')}`);
      assert.deepEqual(unexpectedCloses, [], `connections closed by the reload to version ${v}`);
      await echoRound(v);

      // A route added by this version takes handshakes; keep its connection open past the route's removal.
      const added = await openWithHost(`${h.wsUrl}/x`, `churn-${v}.test`);
      track(added, `churn-${v}`);
      held.set(v, added);
      assert.equal((await roundTrip(added, `new on churn-${v}`)).data.toString(), `new on churn-${v}`);

      // The route this version removed takes no new handshake, and its open tunnel carries on.
      const removed = v - CHURN_LIFETIME;
      if (removed >= 1) {
        assert.equal(await handshakeStatus(`${h.wsUrl}/x`, `churn-${removed}.test`), 404, `churn-${removed} removed in version ${v}`);
        const old = held.get(removed)!;
        assert.equal((await roundTrip(old, `still here ${removed}`)).data.toString(), `still here ${removed}`);
        // Close it ourselves: the close is clean and is ours.
        held.delete(removed);
        closingOne(old);
        old.ws.close(1000, 'done');
        assert.equal((await old.closed).code, 1000);
      }
    }

    // 3. Nothing was dropped: every carried connection is open and echoes, and the metrics agree.
    assert.deepEqual(unexpectedCloses, []);
    for (const t of carried) assert.equal(t.client.ws.readyState, t.client.ws.OPEN, `${t.label} still open`);
    await echoRound(VERSIONS + 1);
    for (const [k, cl] of held) {
      closingOne(cl);
      cl.ws.close(1000, 'done');
      await cl.closed;
      held.delete(k);
    }
    await awaitMetric(h, 'wsgate_connections_active', {}, (n) => n === CONNECTIONS, `wsgate_connections_active = ${CONNECTIONS}`);
    for (const r of CARRIED) {
      const expected = Math.floor(CONNECTIONS / CARRIED.length) + (CARRIED.indexOf(r) < CONNECTIONS % CARRIED.length ? 1 : 0);
      assert.equal(await h.metric('wsgate_connections_active', { route: r.route }), expected, `active on ${r.route}`);
    }
    // Each version was seen live before the next was written, so each was applied by a reload of its own.
    assert.ok((await h.metric('wsgate_config_reloads_total', { result: 'success' })) >= VERSIONS + 1);
    assert.equal(await h.metric('wsgate_config_reloads_total', { result: 'failure' }), 0);
    assert.equal(await h.metric('wsgate_connections_total', { outcome: 'shutdown' }), 0);
  });
});

/** Marks a client whose close the test asks for (its close event is then expected). */
function closingOne(cl: Client): void {
  closedByTest.add(cl);
}
