// Which relay carries L4 tunnels, as `wsgate serve` reports it (issue 13): native by default, the JavaScript relay
// with --relay js or where the addon cannot load, said once in the log and shown per process in /debug/workers;
// a bad choice is a bad flag (exit 2). Real subprocesses, a real tunnel to a TCP echo backend.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, killAll, spawnServe, type ServeProcess } from './serve-process.ts';

interface WorkerRelay {
  readonly worker: number;
  readonly tunnels: number;
  readonly relay: string;
  readonly relayFallback: string | null;
  readonly nativeTunnels: number;
}

let dir: string;
let echo: net.Server;
let tunnelPort: number;

before(async () => {
  echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const echoPort = (echo.address() as AddressInfo).port;
  tunnelPort = await freePort();
  dir = mkdtempSync(join(tmpdir(), 'wsgate-relay-'));
  writeFileSync(
    join(dir, 'tunnel.yaml'),
    `apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { ports: [{ name: tcp, port: 80, targetPort: ${echoPort} }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: echo-1, namespace: default, labels: { kubernetes.io/service-name: echo } }
addressType: IPv4
ports: [{ name: tcp, port: ${echoPort} }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
---
apiVersion: wsgate.io/v1alpha1
kind: TCPTunnel
metadata: { name: echo-tcp, namespace: default }
spec: { port: ${tunnelPort}, backends: [{ service: echo, port: 80 }] }
`,
  );
});

after(() => {
  killAll();
  echo.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `wsgate serve` with `env` set for it (the variables go back as they were once it has started). */
async function serveWith(args: readonly string[], env: Record<string, string>): Promise<ServeProcess> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await spawnServe(dir, args);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function relays(p: ServeProcess): Promise<WorkerRelay[]> {
  return JSON.parse((await p.admin('/debug/workers')).body) as WorkerRelay[];
}

/** One message through the tunnel and back; the socket is left open (a live tunnel) and returned. */
async function echoThroughTunnel(): Promise<net.Socket> {
  const s = net.connect({ port: tunnelPort, host: '127.0.0.1' });
  await once(s, 'connect');
  s.write('through the tunnel');
  let got = '';
  while (got.length < 18) got += ((await once(s, 'data')) as [Buffer])[0].toString();
  assert.equal(got, 'through the tunnel');
  return s;
}

describe('the L4 relay wsgate runs', { timeout: 90_000 }, () => {
  test('is native by default: said in the log, and in /debug/workers with the tunnel on it', async () => {
    const p = await serveWith(['--workers', '1'], { WSGATE_RELAY: '' });
    try {
      await p.ready();
      assert.match(p.stdout(), /"relay":"native","msg":"L4 tunnel relay"/);
      const s = await echoThroughTunnel();
      const [w] = await relays(p);
      assert.deepEqual({ relay: w!.relay, relayFallback: w!.relayFallback, nativeTunnels: w!.nativeTunnels }, { relay: 'native', relayFallback: null, nativeTunnels: 1 });
      s.destroy();
    } finally {
      await p.stop();
    }
  });

  test('is native in every worker process, each reporting its own in /debug/workers', async () => {
    const p = await serveWith(['--workers', '2'], { WSGATE_RELAY: '' });
    try {
      await p.ready();
      const ws = await relays(p);
      assert.equal(ws.length, 2);
      for (const w of ws) assert.equal(w.relay, 'native', `worker ${w.worker}`);
    } finally {
      await p.stop();
    }
  });

  test('falls back to the JavaScript relay where the addon cannot load, says why, and still relays', async () => {
    const p = await serveWith(['--workers', '1', '--relay', 'native'], { WSGATE_RELAY_ADDON: join(dir, 'no-such-addon.node') });
    try {
      await p.ready();
      const line = p.stdout().split('\n').find((l) => l.includes('L4 tunnel relay'));
      assert.ok(line, 'a log line says which relay runs');
      const entry = JSON.parse(line) as { level: number; relay: string; fallback: string; msg: string };
      assert.equal(entry.level, 40, 'a warning: native was asked for');
      assert.equal(entry.relay, 'js');
      assert.match(entry.fallback, /no-such-addon\.node/);
      assert.equal(p.stdout().split('\n').filter((l) => l.includes('L4 tunnel relay')).length, 1, 'said once');
      const s = await echoThroughTunnel();
      const [w] = await relays(p);
      assert.equal(w!.relay, 'js');
      assert.match(w!.relayFallback ?? '', /no-such-addon\.node/);
      assert.equal(w!.nativeTunnels, 0);
      assert.equal(w!.tunnels, 1);
      s.destroy();
    } finally {
      await p.stop();
    }
  });

  test('is the JavaScript relay with --relay js, and no fallback is reported', async () => {
    const p = await serveWith(['--workers', '1', '--relay', 'js'], {});
    try {
      await p.ready();
      const s = await echoThroughTunnel();
      const [w] = await relays(p);
      assert.deepEqual({ relay: w!.relay, relayFallback: w!.relayFallback, nativeTunnels: w!.nativeTunnels }, { relay: 'js', relayFallback: null, nativeTunnels: 0 });
      s.destroy();
    } finally {
      await p.stop();
    }
  });

  test('refuses an unknown --relay or WSGATE_RELAY with exit 2 and what to give instead', async () => {
    const bad = await serveWith(['--relay', 'splice'], {});
    const e1 = await bad.exited;
    assert.equal(e1.code, 2);
    assert.match(e1.stderr, /--relay=splice: must be native or js/);
    const badEnv = await serveWith([], { WSGATE_RELAY: 'fast' });
    const e2 = await badEnv.exited;
    assert.equal(e2.code, 2);
    assert.match(e2.stderr, /WSGATE_RELAY=fast: must be native or js/);
  });
});
