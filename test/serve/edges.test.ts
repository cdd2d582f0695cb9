// The edges of issue 9 checked from the outside, as a user runs wsgate: `wsgate serve` as a subprocess, with one
// process and with the default --workers. Normalised targets and absolute-form, a client that half-closes, a backend
// that never answers, and a SIGTERM while a handshake is waiting for its backend.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import {
  closeOf,
  closeServer,
  converge,
  handshake,
  listen,
  parseResponse,
  rawConnect,
  rawExchange,
  startRawBackend,
  switchingProtocols,
  type RawBackend,
} from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';

const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

/** A backend that answers every request with `<name> <request-target> host=<Host>`. */
async function reporter(name: string): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => res.end(`${name} ${req.url} host=${req.headers.host}`));
  return { port: await listen(server), server };
}

let pub: { port: number; server: http.Server };
let rest: { port: number; server: http.Server };
let internal: { port: number; server: http.Server };
let silent: net.Server;
let silentPort: number;
let raw: RawBackend;
let dir: ConfigDir;

before(async () => {
  [pub, rest, internal] = [await reporter('public'), await reporter('rest'), await reporter('internal')];
  // Reads requests (so that it sees FINs) and never answers.
  silent = net.createServer((s) => s.on('error', () => {}).resume());
  silentPort = await listen(silent);
  raw = await startRawBackend();
  dir = createConfigDir();
  dir.write('config.yaml', [
    ...backendService('pub', pub.port),
    ...backendService('rest', rest.port),
    ...backendService('internal', internal.port),
    ...backendService('silent', silentPort),
    ...backendService('raw', raw.port),
    webSocketRoute('public', { hostnames: ['public.test'], rules: [{ path: '/public', backends: [{ service: 'pub' }] }, { path: '/', backends: [{ service: 'rest' }] }] }),
    webSocketRoute('internal', { hostnames: ['internal.test'], rules: [{ path: '/', backends: [{ service: 'internal' }] }] }),
    webSocketRoute('slow', { hostnames: ['slow.test'], rules: [{ path: '/', backends: [{ service: 'silent' }] }], policy: { responseHeaderTimeoutSeconds: 1 } }),
    webSocketRoute('ws', { hostnames: ['ws.test'], rules: [{ path: '/', backends: [{ service: 'raw' }] }] }),
  ]);
});

after(async () => {
  for (const s of [pub, rest, internal]) {
    s.server.closeAllConnections();
    await closeServer(s.server);
  }
  await closeServer(silent);
  await raw.close();
  dir.dispose();
});

interface Running {
  readonly child: ChildProcess;
  readonly http: number;
  readonly admin: number;
  readonly exited: Promise<number | null>;
}

async function startWsgate(workers: string | undefined, extra: readonly string[] = []): Promise<Running> {
  const [httpPort, admin] = [await freePort(), await freePort()];
  const args = [...NODE_FLAGS, BIN, 'serve', '--config', dir.path, '--http-addr', `127.0.0.1:${httpPort}`, '--https-addr', 'off'];
  args.push('--admin-addr', `127.0.0.1:${admin}`, '--log-level', 'warn', '--drain-timeout', '1s');
  if (workers) args.push('--workers', workers);
  args.push(...extra);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  await converge(async () => (await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined))?.ok === true, 'ready', 3, 30_000);
  return { child, http: httpPort, admin, exited };
}

async function get(port: number, target: string, host: string): Promise<{ status: number; body: string }> {
  const res = await rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return { status: res.status, body: res.body.toString() };
}

for (const workers of ['1', undefined] as const) {
  describe(`wsgate serve ${workers ? '--workers 1' : 'with the default --workers'}`, () => {
    let w: Running;
    before(async () => {
      w = await startWsgate(workers);
    });
    after(async () => {
      if (w.child.exitCode === null) {
        w.child.kill('SIGKILL');
        await w.exited;
      }
    });

    test('routes a target with dot segments by its normalised path, which the backend receives', async () => {
      assert.deepEqual(await get(w.http, '/public/../x', 'public.test'), { status: 200, body: 'rest /x host=public.test' });
      assert.deepEqual(await get(w.http, '/public/%2e%2e/x', 'public.test'), { status: 200, body: 'rest /x host=public.test' });
      assert.equal((await get(w.http, '/public/..%2Fx', 'public.test')).status, 400);
    });

    test('routes an absolute-form target by its authority and rewrites Host', async () => {
      assert.deepEqual(await get(w.http, 'http://internal.test/secret', 'public.test'), {
        status: 200,
        body: 'internal /secret host=internal.test',
      });
    });

    test('answers a client that half-closes after its request', async () => {
      const client = await rawConnect(w.http, true);
      const chunks: Buffer[] = [];
      client.on('data', (c: Buffer) => chunks.push(c));
      const closed = closeOf(client);
      client.end('GET /public/a HTTP/1.1\r\nHost: public.test\r\n\r\n');
      await closed;
      const res = parseResponse(Buffer.concat(chunks));
      assert.equal(res?.status, 200);
      assert.equal(res?.body.toString(), 'public /public/a host=public.test');
    });

    test('answers 504 for a backend that never answers, after the route responseHeaderTimeoutSeconds', async () => {
      assert.equal((await get(w.http, '/', 'slow.test')).status, 504);
      const text = await (await fetch(`http://127.0.0.1:${w.admin}/metrics`)).text();
      assert.match(text, /wsgate_http_upstream_timeouts_total\{route="default\/slow",phase="response_header"\} 1/);
    });

    test('exits after SIGTERM even when a handshake completes during the drain, and closes its client', async () => {
      const client = await rawConnect(w.http);
      const chunks: Buffer[] = [];
      client.on('data', (c: Buffer) => chunks.push(c));
      const clientClosed = closeOf(client);
      client.write(handshake({ host: 'ws.test' }));
      const peer = await raw.accepted.shift();
      w.child.kill('SIGTERM');
      // The backend answers after the signal: the handshake becomes a tunnel inside the drain, or is closed.
      peer.socket.write(switchingProtocols(peer.head));
      assert.equal(await w.exited, 0);
      await clientClosed;
      peer.socket.destroy();
    });
  });
}

describe('wsgate serve with the path normalisation flags (default --workers: the workers get them too)', () => {
  let w: Running;
  before(async () => {
    w = await startWsgate(undefined, ['--path-escaped-slashes', 'keep', '--path-backslashes', 'slash', '--path-merge-slashes']);
  });
  after(async () => {
    w.child.kill('SIGKILL');
    await w.exited;
  });

  test('keeps an encoded slash encoded (never a separator), reads a backslash as a slash, and merges slashes', async () => {
    assert.deepEqual(await get(w.http, '/public/..%2Fx', 'public.test'), { status: 200, body: 'public /public/..%2Fx host=public.test' });
    assert.deepEqual(await get(w.http, '/public\\..\\x', 'public.test'), { status: 200, body: 'rest /x host=public.test' });
    assert.deepEqual(await get(w.http, '//public//a', 'public.test'), { status: 200, body: 'public /public/a host=public.test' });
  });
});
