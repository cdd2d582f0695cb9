// `wsgate sidecar` in front of a real WebSocket app (a `ws` server): what a pod gets from the injected sidecar.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { BadFlagError } from '../../src/cli/flags.ts';
import { DEFAULT_POLICY } from '../../src/model/table.ts';
import { parseSidecarFlags, SIDECAR_OPTIONS } from '../../src/sidecar/cli.ts';
import { converge, openClient, roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { freePort, killAll, runWsgate, startSidecarProcess, type SidecarProcess } from './process.ts';

after(killAll);

describe('wsgate sidecar in front of an app', { timeout: 60_000 }, () => {
  let app: WsBackend;
  let sidecar: SidecarProcess;

  before(async () => {
    app = await startWsBackend();
    sidecar = await startSidecarProcess(app.port, [
      '--name', 'chat',
      '--allowed-origin', 'https://app.example.com',
      '--max-connections', '3',
      '--max-connections-per-client', '2',
      '--drain-delay', '0s',
      '--drain-timeout', '0s',
    ]);
    await converge(async () => (await sidecar.admin('/readyz')).code === 200, 'sidecar ready', 2, 15_000);
  });

  after(async () => {
    sidecar?.child.kill('SIGTERM');
    await sidecar?.exited;
    await app?.close();
  });

  const allowed = { origin: 'https://app.example.com' };

  test('passes messages both ways between a client and the app, with the client\'s headers', async () => {
    const client = await openClient(`${sidecar.url}/chat?room=1`, [], allowed);
    const conn = await app.connections.shift();
    assert.equal(conn.req.url, '/chat?room=1');
    assert.equal(conn.req.headers.origin, 'https://app.example.com');
    assert.equal(conn.req.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal((await roundTrip(client, 'hello app')).data.toString(), 'hello app');
    assert.equal((await conn.messages.shift()).data.toString(), 'hello app');
    const big = Buffer.alloc(256 * 1024, 7);
    assert.deepEqual((await roundTrip(client, big)).data, big);
    client.ws.close(1000, 'bye');
    assert.deepEqual(await conn.closed, { code: 1000, reason: 'bye' });
  });

  test('refuses a handshake whose Origin is not allowed, with 403, without reaching the app', async () => {
    // Handshakes that reached the app (TCP connections would also count the sidecar's readiness probe of its port).
    const before = app.connections.length;
    await assert.rejects(openClient(sidecar.url, [], { origin: 'https://evil.example.com' }), /unexpected response 403/);
    await assert.rejects(openClient(sidecar.url), /unexpected response 403/);
    assert.equal(app.connections.length, before);
  });

  test('refuses connections over --max-connections-per-client and --max-connections with 429', async () => {
    // All clients are 127.0.0.1: the per-client limit (2) is reached first.
    const a = await openClient(sidecar.url, [], allowed);
    const b = await openClient(sidecar.url, [], allowed);
    await assert.rejects(openClient(sidecar.url, [], allowed), /unexpected response 429/);
    // From another loopback address the per-client count starts again, but the route's limit (3) holds.
    const c = await openClient(sidecar.url, [], { ...allowed, localAddress: '127.0.0.2' });
    await assert.rejects(openClient(sidecar.url, [], { ...allowed, localAddress: '127.0.0.3' }), /unexpected response 429/);
    for (const x of [a, b, c]) x.ws.close();
    await Promise.all([a.closed, b.closed, c.closed]);
    // Limits are released when tunnels end.
    await converge(async () => (await sidecar.metric('wsgate_connections_active', { route: 'chat' })) === 0, 'no live tunnel');
    const d = await openClient(sidecar.url, [], allowed);
    d.ws.close();
    await d.closed;
  });

  test('counts connections and rejections in metrics under the --name route label', async () => {
    const completedBefore = await sidecar.metric('wsgate_connections_total', { route: 'chat', layer: 'l7', outcome: 'completed' });
    const client = await openClient(sidecar.url, [], allowed);
    await converge(async () => (await sidecar.metric('wsgate_connections_active', { route: 'chat', layer: 'l7' })) === 1, 'active 1');
    assert.equal((await roundTrip(client, 'counted')).data.toString(), 'counted');
    client.ws.close(1000);
    await client.closed;
    await converge(
      async () => (await sidecar.metric('wsgate_connections_total', { route: 'chat', layer: 'l7', outcome: 'completed' })) === completedBefore + 1,
      'one more completed connection',
    );
    assert.equal(await sidecar.metric('wsgate_connections_active', { route: 'chat' }), 0);
    assert.ok((await sidecar.metric('wsgate_handshake_rejections_total', { route: 'chat', reason: 'origin_not_allowed' })) >= 2);
    assert.ok((await sidecar.metric('wsgate_handshake_rejections_total', { route: 'chat', reason: 'over_limit' })) >= 2);
    assert.ok((await sidecar.metric('wsgate_tunnel_bytes_total', { route: 'chat', direction: 'upstream' })) > 0);
  });
});

describe('wsgate sidecar readiness follows the app', { timeout: 60_000 }, () => {
  test('is not ready while the app\'s port refuses, ready once it listens, and not ready again when it stops', async () => {
    const appPort = await freePort();
    const sidecar = await startSidecarProcess(appPort, ['--drain-delay', '0s', '--drain-timeout', '0s']);
    try {
      await converge(async () => {
        const r = await sidecar.admin('/readyz');
        return r.code === 503 && r.body.includes(`upstream 127.0.0.1:${appPort} not accepting connections`);
      }, '/readyz 503 while the app is down', 3, 15_000);
      // Clients that arrive anyway get a clean 502, not a hang.
      await assert.rejects(openClient(sidecar.url), /unexpected response 502/);

      const app = new WebSocketServer({ host: '127.0.0.1', port: appPort });
      await once(app, 'listening');
      app.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
      await converge(async () => (await sidecar.admin('/readyz')).code === 200, '/readyz 200 once the app listens', 3, 15_000);
      const client = await openClient(sidecar.url);
      assert.equal((await roundTrip(client, 'up')).data.toString(), 'up');
      client.ws.close();
      await client.closed;

      for (const ws of app.clients) ws.terminate();
      await new Promise<void>((resolve) => app.close(() => resolve()));
      await converge(async () => (await sidecar.admin('/readyz')).code === 503, '/readyz 503 after the app stops', 3, 15_000);
      const logs = sidecar.logs().map((l) => l.msg);
      const down = logs.indexOf('upstream not accepting connections: not ready');
      const up = logs.indexOf('upstream accepting connections: ready');
      assert.ok(down >= 0 && up > down, `logs say down, then up: ${JSON.stringify(logs)}`);
      assert.ok(logs.lastIndexOf('upstream not accepting connections: not ready') > up);
    } finally {
      sidecar.child.kill('SIGTERM');
      const exit = await sidecar.exited;
      assert.equal(exit.code, 0, exit.stderr);
    }
  });

  test('takes its route label from POD_NAME when --name is not given', async () => {
    const app = await startWsBackend();
    const sidecar = await startSidecarProcess(app.port, ['--drain-delay', '0s'], { POD_NAME: 'chat-7d9f-abcde' });
    try {
      await converge(async () => (await sidecar.admin('/readyz')).code === 200, 'ready', 2, 15_000);
      const client = await openClient(sidecar.url);
      client.ws.close();
      await client.closed;
      await converge(async () => (await sidecar.metric('wsgate_connections_total', { route: 'chat-7d9f-abcde' })) === 1, 'counted under POD_NAME');
    } finally {
      sidecar.child.kill('SIGTERM');
      await sidecar.exited;
      await app.close();
    }
  });
});

describe('wsgate sidecar flags', { timeout: 30_000 }, () => {
  const cases: { name: string; args: string[]; stderr: RegExp }[] = [
    { name: 'without --upstream', args: [], stderr: /--upstream HOST:PORT/ },
    { name: 'with an --upstream that is not HOST:PORT', args: ['--upstream', 'app'], stderr: /--upstream=app/ },
    { name: 'with --upstream off', args: ['--upstream', 'off'], stderr: /--upstream=off/ },
    { name: 'with an --allowed-origin that is not scheme://host', args: ['--upstream', ':80', '--allowed-origin', 'example.com'], stderr: /--allowed-origin=example\.com/ },
    { name: 'with a --subprotocol that is not a token', args: ['--upstream', ':80', '--subprotocol', 'a b'], stderr: /--subprotocol=a b/ },
    { name: 'with a negative --max-connections', args: ['--upstream', ':80', '--max-connections=-1'], stderr: /--max-connections=-1/ },
    { name: 'with a bad --drain-delay', args: ['--upstream', ':80', '--drain-delay', 'soon'], stderr: /--drain-delay=soon/ },
    { name: 'with an unknown flag', args: ['--upstream', ':80', '--bogus'], stderr: /--bogus/ },
    { name: 'with an --on-exceed other than Throttle or Close', args: ['--upstream', ':80', '--on-exceed', 'drop'], stderr: /--on-exceed=drop: expected Throttle or Close/ },
    {
      name: 'with --no-inspect-frames and a flag that needs frames',
      args: ['--upstream', ':80', '--no-inspect-frames', '--max-message-bytes', '1048576', '--keepalive-to-backend'],
      stderr: /--no-inspect-frames .* cannot apply --max-message-bytes=1048576, --keepalive-to-backend: remove them, or --no-inspect-frames/,
    },
  ];
  for (const c of cases) {
    test(`exits 2 ${c.name}, naming what to change`, async () => {
      const r = await runWsgate('sidecar', ...c.args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, c.stderr);
      assert.equal(r.stdout, '');
    });
  }
});

describe('wsgate sidecar frame flags (issue 10)', () => {
  /** The policy the flags give, after the required --upstream. */
  const policyFrom = (...args: string[]) => {
    const flags = parseSidecarFlags(['--upstream', '127.0.0.1:8080', ...args], {});
    assert.ok(!flags.help);
    return flags.policy;
  };

  test('gives the route defaults when no frame flag is set', () => {
    const p = policyFrom();
    assert.deepEqual(
      [p.inspectFrames, p.keepalive, p.maxMessageBytes, p.maxBackendMessageBytes, p.maxMessagesPerSecond, p.onExceed, p.strict],
      [true, DEFAULT_POLICY.keepalive, 0, 0, 0, 'Throttle', true],
    );
  });

  test('sets every frame knob from its flag', () => {
    const p = policyFrom(
      '--keepalive-interval', '10s',
      '--keepalive-timeout', '2m',
      '--keepalive-to-backend',
      '--max-message-bytes', '1048576',
      '--max-backend-message-bytes', '16777216',
      '--max-messages-per-second', '50',
      '--on-exceed', 'Close',
      '--no-strict',
    );
    assert.deepEqual(p.keepalive, { intervalSeconds: 10, timeoutSeconds: 120, toBackend: true });
    assert.deepEqual([p.maxMessageBytes, p.maxBackendMessageBytes, p.maxMessagesPerSecond], [1_048_576, 16_777_216, 50]);
    assert.deepEqual([p.onExceed, p.strict, p.inspectFrames], ['Close', false, true]);
  });

  test('turns frame inspection off with --no-inspect-frames, alone or with keepalive off', () => {
    assert.equal(policyFrom('--no-inspect-frames').inspectFrames, false);
    const p = policyFrom('--no-inspect-frames', '--keepalive-interval', '0', '--no-strict');
    assert.deepEqual([p.inspectFrames, p.keepalive.intervalSeconds, p.strict], [false, 0, false]);
    assert.equal(policyFrom('--inspect-frames', '--strict').inspectFrames, true);
  });

  // The same BadFlagError the process turns into exit 2 (two of them run as a process above).
  const bad: { args: string[]; message: RegExp }[] = [
    { args: ['--keepalive-interval', '1500ms'], message: /^--keepalive-interval=1500ms: expected whole seconds, e\.g\. 30s \(0 = no keepalive\)$/ },
    { args: ['--keepalive-interval', 'often'], message: /^--keepalive-interval=often: expected a duration/ },
    { args: ['--keepalive-timeout', '0s'], message: /^--keepalive-timeout=0s: expected whole seconds, e\.g\. 30s \(at least 1s\)$/ },
    { args: ['--max-message-bytes', '1MiB'], message: /^--max-message-bytes=1MiB: expected a whole number of bytes, e\.g\. 1048576 for 1 MiB \(0 = no limit\)$/ },
    { args: ['--max-backend-message-bytes=-1'], message: /^--max-backend-message-bytes=-1: expected a whole number of bytes/ },
    { args: ['--max-messages-per-second', '2.5'], message: /^--max-messages-per-second=2\.5: expected a whole number/ },
    { args: ['--on-exceed', 'close'], message: /^--on-exceed=close: expected Throttle or Close$/ },
    { args: ['--strict', '--no-strict'], message: /^--strict and --no-strict: give one of them$/ },
    { args: ['--inspect-frames', '--no-inspect-frames'], message: /^--inspect-frames and --no-inspect-frames: give one of them$/ },
    { args: ['--no-inspect-frames', '--keepalive-interval', '10s'], message: /cannot apply --keepalive-interval=10s: remove it, or --no-inspect-frames$/ },
    { args: ['--no-inspect-frames', '--max-messages-per-second', '5'], message: /cannot apply --max-messages-per-second=5: remove it/ },
  ];
  for (const b of bad) {
    test(`refuses ${b.args.join(' ')}, saying what to change`, () => {
      assert.throws(() => parseSidecarFlags(['--upstream', '127.0.0.1:8080', ...b.args], {}), (err: unknown) => {
        assert.ok(err instanceof BadFlagError);
        assert.match(err.message, b.message);
        return true;
      });
    });
  }

  test('docs/sidecar.md documents every flag', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'sidecar.md'), 'utf8');
    const missing = Object.keys(SIDECAR_OPTIONS).filter((f) => f !== 'help' && !doc.includes(`\`--${f}`));
    assert.deepEqual(missing, []);
  });

  test('leaves the drain knobs at their defaults: one fixed upstream, one route never removed', () => {
    const p = policyFrom('--max-message-bytes', '1024');
    assert.deepEqual([p.endpointDrainSeconds, p.onRemoval, p.rebalance], [DEFAULT_POLICY.endpointDrainSeconds, DEFAULT_POLICY.onRemoval, DEFAULT_POLICY.rebalance]);
  });
});
