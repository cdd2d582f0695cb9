// Which modules each command loads. @kubernetes/client-node costs some 90 MB of resident memory; only `controller`
// and `webhook` talk to an API server, so `serve`, `sidecar`, `translate` and the data-plane workers must never load
// it (src/cli/main.ts imports each command only when it runs). Each process runs with a preload that records every
// module it loads (record-modules.ts); the controller case shows that the recording does see the package.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { closeServer, listen } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, webSocketRoute } from '../helpers/serve-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));
const RECORDER = fileURLToPath(new URL('./record-modules.ts', import.meta.url));
const CLIENT_NODE = '/node_modules/@kubernetes/client-node/';

const scratch = mkdtempSync(join(tmpdir(), 'wsgate-modules-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

interface Loads {
  /** Module URLs by process id, in load order. */
  readonly byPid: Map<number, string[]>;
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

let runs = 0;

/**
 * Runs `wsgate ARGS` with the recorder. With `until`, waits for that stdout text (the command is up), then sends
 * SIGTERM; bounded by `boundMs` (then SIGKILL, and the test fails on the missing text).
 */
async function loadsOf(args: readonly string[], o: { until?: string; boundMs?: number } = {}): Promise<Loads> {
  const log = join(scratch, `run-${++runs}.log`);
  const child = spawn(process.execPath, ['--import', RECORDER, BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, WSGATE_MODULE_LOG: log },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    if (o.until !== undefined && stdout.includes(o.until)) child.kill('SIGTERM');
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.boundMs ?? 20_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  children.delete(child);
  if (o.until !== undefined) assert.ok(stdout.includes(o.until), `never printed "${o.until}"; stderr: ${stderr}`);
  const byPid = new Map<number, string[]>();
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (line === '') continue;
    const [pid, url] = line.split(' ') as [string, string];
    const list = byPid.get(Number(pid)) ?? [];
    list.push(url);
    byPid.set(Number(pid), list);
  }
  return { byPid, stdout, stderr, code };
}

function loadedClientNode(urls: readonly string[]): string[] {
  return urls.filter((u) => u.includes(CLIENT_NODE));
}

function all(l: Loads): string[] {
  return [...l.byPid.values()].flat();
}

/** A port on 127.0.0.1 that was free a moment ago (the sidecar refuses port 0 for --listen). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

describe('modules each wsgate command loads', { timeout: 60_000 }, () => {
  test('the recording sees @kubernetes/client-node when a command loads it (controller)', async () => {
    const l = await loadsOf(['controller', '--kubeconfig', join(scratch, 'no-such-kubeconfig')]);
    assert.equal(l.code, 2, l.stderr);
    assert.match(l.stderr, /--kubeconfig/);
    assert.ok(loadedClientNode(all(l)).length > 0, 'controller loads @kubernetes/client-node');
  });

  test('sidecar serves without loading @kubernetes/client-node', async () => {
    const l = await loadsOf(
      ['sidecar', '--upstream', '127.0.0.1:1', '--listen', `127.0.0.1:${await freePort()}`, '--admin-addr', '127.0.0.1:0',
        '--drain-delay', '0', '--drain-timeout', '0'],
      { until: 'wsgate sidecar serving' },
    );
    const urls = all(l);
    assert.ok(urls.some((u) => u.endsWith('/src/sidecar/sidecar.ts')), 'the sidecar itself was recorded');
    assert.deepEqual(loadedClientNode(urls), []);
  });

  test('serve and its data-plane workers run without loading @kubernetes/client-node', async () => {
    const dir = createConfigDir();
    try {
      dir.write('echo.yaml', [...backendService('echo', 1), webSocketRoute('echo', { rules: [{ path: '/echo', backends: [{ service: 'echo' }] }] })]);
      const l = await loadsOf(
        ['serve', '--config', dir.path, '--workers', '2', '--http-addr', '127.0.0.1:0', '--https-addr', '127.0.0.1:0',
          '--admin-addr', '127.0.0.1:0', '--tunnel-host', '127.0.0.1', '--drain-timeout', '0'],
        { until: 'wsgate serving', boundMs: 40_000 },
      );
      const workers = [...l.byPid.values()].filter((urls) => urls.some((u) => u.endsWith('/src/cluster/worker-main.ts')));
      assert.equal(workers.length, 2, 'both workers were recorded');
      for (const [pid, urls] of l.byPid) assert.deepEqual(loadedClientNode(urls), [], `process ${pid}`);
    } finally {
      dir.dispose();
    }
  });

  test('translate runs without loading @kubernetes/client-node', async () => {
    const l = await loadsOf(['translate', '-f', 'examples/quickstart']);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /^virtualHosts:/m);
    assert.deepEqual(loadedClientNode(all(l)), []);
  });
});
