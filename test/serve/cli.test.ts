// The `wsgate` command as a user runs it: a real subprocess (bin/wsgate.js on this Node), its exit codes and
// messages, and a `serve` that proxies a WebSocket, reports readiness, and drains on SIGTERM.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { closeServer, converge, listen, openClient, roundTrip, startWsBackend, type WsBackend } from '../helpers/l7-peers.ts';
import { backendService, createConfigDir, webSocketRoute, type ConfigDir } from '../helpers/serve-harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/wsgate.js', import.meta.url));
const VERSION = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version;

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();

function start(args: readonly string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(child, 'close').then(([code, signal]) => {
    children.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr };
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs `wsgate ARGS` to completion (killed if it outlives the test's bound). */
async function run(...args: string[]): Promise<Run> {
  const p = start(args);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Rejects after `ms`: a bound on a wait that must end, not a measurement. */
function rejectAfter(ms: number, what: string): Promise<never> {
  return new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref());
}

describe('wsgate help and version', () => {
  test('--help, -h, help and no command at all print the short list of commands, and exit 0', async () => {
    const texts = new Set<string>();
    const ways = [['--help'], ['-h'], ['help'], []];
    const runs = await Promise.all(ways.map((args) => run(...args)));
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, `wsgate ${ways[i]!.join(' ')}: ${r.stderr}`);
      texts.add(r.stdout);
    });
    assert.equal(texts.size, 1, 'the same text every way');
    const [text] = [...texts] as [string];
    assert.match(text, new RegExp(`^wsgate ${VERSION.replaceAll('.', '\\.')}: `));
    for (const command of ['serve', 'controller', 'sidecar', 'webhook', 'translate', 'version', 'help']) {
      assert.match(text, new RegExp(`^  ${command} +\\S`, 'm'), `lists ${command}`);
    }
    assert.match(text, /wsgate COMMAND --help/);
    // Short: the commands, not every command's flags.
    assert.doesNotMatch(text, /--drain-timeout|--upstream|--kubeconfig/);
    assert.ok(text.split('\n').length < 25, `${text.split('\n').length} lines`);
  });

  // Each command's own usage: its synopsis first, then its flags (and none of another command's own flags).
  const commandHelp: Array<{ command: string; synopsis: RegExp; has: string[]; hasNot: string[] }> = [
    { command: 'serve', synopsis: /^Usage: wsgate serve --config PATH \[flags\]$/, has: ['--config PATH', '--drain-timeout DUR', '--workers N'], hasNot: ['--kubeconfig', '--upstream'] },
    { command: 'controller', synopsis: /^Usage: wsgate controller \[flags\]$/, has: ['--kubeconfig PATH', '--publish-service', '--http-addr', '--workers N'], hasNot: ['--config PATH', '--upstream'] },
    { command: 'sidecar', synopsis: /^Usage: wsgate sidecar --upstream HOST:PORT \[flags\]$/, has: ['--upstream HOST:PORT', '--drain-delay DUR', '--allowed-origin'], hasNot: ['--kubeconfig', '--config PATH'] },
    { command: 'webhook', synopsis: /^Usage: wsgate webhook --image IMAGE/, has: ['--image IMAGE', '--self-signed', '--tls-cert FILE'], hasNot: ['--config PATH', '--upstream'] },
    { command: 'translate', synopsis: /^Usage: wsgate translate -f PATH \[flags\]$/, has: ['-f, --file PATH', '--ingress-class NAME'], hasNot: ['--http-addr', '--kubeconfig'] },
  ];
  for (const { command, synopsis, has, hasNot } of commandHelp) {
    test(`${command} --help, ${command} -h and help ${command} print the usage and flags of ${command} alone`, async () => {
      const outputs = await Promise.all([run(command, '--help'), run(command, '-h'), run('help', command)]);
      for (const r of outputs) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, outputs[0].stdout, 'the same text every way');
      }
      const text = outputs[0].stdout;
      assert.match(text.split('\n')[0]!, synopsis);
      for (const flag of has) assert.ok(text.includes(flag), `lists ${flag}`);
      for (const flag of hasNot) assert.ok(!text.includes(flag), `does not list ${flag}`);
      assert.match(text, new RegExp(`^Example: wsgate ${command} `, 'm'));
    });
  }

  test('help of an unknown command exits 2 naming it and the commands there are', async () => {
    const r = await run('help', 'serv');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "serv": use serve, controller, sidecar, webhook, translate, migrate, version or help/);
    assert.equal(r.stdout, '');
  });

  test('version, --version and -v print the package version alone', async () => {
    const flags = ['version', '--version', '-v'];
    const runs = await Promise.all(flags.map((flag) => run(flag)));
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${VERSION}\n`, flags[i]);
    });
  });
});

describe('wsgate command line', { timeout: 60_000 }, () => {
  test('an unknown flag exits 2 naming the flag', async () => {
    const r = await run('serve', '--config', 'examples/quickstart', '--bogus');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--bogus/);
    assert.equal(r.stdout, '');
  });

  test('a malformed --http-addr exits 2 naming the flag and the expected form', async () => {
    const r = await run('serve', '--config', 'examples/quickstart', '--http-addr', 'nonsense');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--http-addr/);
    assert.match(r.stderr, /HOST:PORT/);
  });

  test('serve without --config exits 2 saying --config is needed', async () => {
    const r = await run('serve');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--config/);
  });

  test('a --config path that does not exist exits 2 naming the path', async () => {
    const r = await run('serve', '--config', 'no/such/dir', '--admin-addr', 'off', '--http-addr', 'off', '--https-addr', 'off');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--config=no\/such\/dir: no such file or directory/);
  });

  test('an unknown --log-level exits 2 listing the levels', async () => {
    const r = await run('serve', '--config', 'examples/quickstart', '--log-level', 'loud');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--log-level/);
    assert.match(r.stderr, /info/);
  });

  test('an unknown path normalisation policy exits 2 saying what the values are', async () => {
    const r = await run('serve', '--config', 'examples/quickstart', '--path-escaped-slashes', 'maybe');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--path-escaped-slashes=maybe: must be reject, keep or decode/);
    const b = await run('serve', '--config', 'examples/quickstart', '--path-backslashes', 'keep');
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--path-backslashes=keep: must be reject or slash/);
  });

  test('a --default-cert that cannot be read exits 2 naming the flag and the file', async () => {
    const r = await run('serve', '--config', 'examples/quickstart', '--default-cert', '/nonexistent/cert.pem', '--default-key', '/nonexistent/key.pem');
    assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /^wsgate: .*--default-cert/m);
    assert.match(r.stderr, /\/nonexistent\/cert\.pem/);
  });

  test('a --default-cert that is not a PEM certificate exits 2 naming the flag', async () => {
    const dir = createConfigDir();
    try {
      const garbage = dir.writeText('not-a-cert.pem', 'this is not PEM\n');
      const r = await run('serve', '--config', 'examples/quickstart', '--default-cert', garbage, '--default-key', garbage,
        '--http-addr', 'off', '--https-addr', 'off', '--admin-addr', 'off');
      assert.equal(r.code, 2, `exit code ${r.code}; stderr: ${r.stderr}`);
      assert.match(r.stderr, /^wsgate: .*--default-cert/m);
    } finally {
      dir.dispose();
    }
  });

  test('an unknown command exits 2', async () => {
    const r = await run('serv');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "serv"/);
  });

  test('translate -f of a path that does not exist exits 1 with a message naming it, and prints no table', async () => {
    const r = await run('translate', '-f', '/nonexistent/wsgate-config');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'wsgate: WSGATE_ERR_CONFIG_PARSE: -f /nonexistent/wsgate-config: no such file or directory; give a YAML file or a directory of them\n',
    );
  });

  test('translate -f prints the routing table the quickstart translates to', async () => {
    const r = await run('translate', '-f', 'examples/quickstart');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^virtualHosts:/m);
    assert.match(r.stdout, /route: default\/echo$/m);
    assert.match(r.stdout, /path: \/echo$/m);
    assert.match(r.stdout, /route: default\/echo-tcp$/m);
    // [issue 14] Gateway API objects too: the Gateway's listener port, its HTTPRoute, and the statuses it would get.
    assert.match(r.stdout, /^listeners:\n {2}- port: 8081\n {4}protocol: HTTP$/m);
    assert.match(r.stdout, /route: default\/echo-gateway$/m);
    assert.match(r.stdout, /^gatewayAPI:$/m);
  });
});

describe('wsgate serve as a process', { timeout: 60_000 }, () => {
  let echo: WsBackend;
  let dir: ConfigDir;

  before(async () => {
    echo = await startWsBackend();
    dir = createConfigDir();
    dir.write('echo.yaml', [
      ...backendService('echo', echo.port),
      webSocketRoute('echo', { rules: [{ path: '/echo', backends: [{ service: 'echo' }] }] }),
    ]);
  });

  after(async () => {
    await echo?.close();
    dir?.dispose();
  });

  /** `wsgate serve` on free loopback ports with a 30s drain, polled (bounded) until /readyz says ready. */
  async function serveProcess(): Promise<{
    p: ReturnType<typeof start>;
    httpPort: number;
    status: (path: string) => Promise<{ code: number; body: string }>;
    exitedEarly: () => Run | undefined;
  }> {
    const [httpPort, httpsPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const admin = `http://127.0.0.1:${adminPort}`;
    const p = start([
      'serve',
      '--config', dir.path,
      '--http-addr', `127.0.0.1:${httpPort}`,
      '--https-addr', `127.0.0.1:${httpsPort}`,
      '--admin-addr', `127.0.0.1:${adminPort}`,
      '--tunnel-host', '127.0.0.1',
      '--drain-timeout', '30s',
      '--log-level', 'info',
    ]);
    let exited: Run | undefined;
    void p.exited.then((r) => (exited = r));
    const status = async (path: string): Promise<{ code: number; body: string }> => {
      if (exited) throw new Error(`wsgate exited (${exited.code}): ${exited.stderr}${exited.stdout}`);
      try {
        const res = await fetch(`${admin}${path}`);
        return { code: res.status, body: await res.text() };
      } catch {
        return { code: 0, body: 'not listening' };
      }
    };
    await converge(async () => (await status('/healthz')).code === 200, '/healthz 200', 1, 15_000);
    await converge(async () => (await status('/readyz')).code === 200, '/readyz 200', 2, 15_000);
    return { p, httpPort, status, exitedEarly: () => exited };
  }

  test('is ready, proxies a WebSocket, and on SIGTERM refuses new connections, closes the tunnel with 1001, then exits 0', async () => {
    // 1. Up and ready.
    const { p, httpPort, status } = await serveProcess();

    // 2. A WebSocket through it.
    const client = await openClient(`ws://127.0.0.1:${httpPort}/echo`);
    assert.equal((await roundTrip(client, 'through the process')).data.toString(), 'through the process');

    // 3. SIGTERM: not ready ('draining'), the listener closes, and the open WebSocket gets Going Away (the first of
    //    the drain's spread closes goes at once).
    p.child.kill('SIGTERM');
    await converge(
      async () => {
        const r = await status('/readyz').catch(() => ({ code: 0, body: '' }));
        return r.code === 503 && r.body.includes('draining');
      },
      '/readyz 503 draining',
      1,
      10_000,
    );
    const closed = await client.closed;
    assert.deepEqual(closed, { code: 1001, reason: 'going away' });
    const refused = net.connect({ host: '127.0.0.1', port: httpPort });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');

    // 4. Nothing left to drain: the process exits 0.
    const exit = await p.exited;
    assert.equal(exit.signal, null);
    assert.equal(exit.code, 0, exit.stderr);
    const lines = exit.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { msg: string; tunnels?: number });
    // The process's own line (with `tunnels`); a worker's registry logs `draining` too, and the two processes' lines
    // reach the shared stdout in either order.
    const draining = lines.find((l) => l.msg === 'draining' && l.tunnels !== undefined);
    assert.equal(draining?.tunnels, 1);
    assert.ok(lines.some((l) => l.msg === 'stopped'), 'logs "stopped"');
  });
  test('exits 0 on SIGTERM at once when no tunnel is open', async () => {
    const { p } = await serveProcess();
    p.child.kill('SIGTERM');
    // Bounded well below the 30s drain: with nothing to drain, there is nothing to wait for.
    const exit = await Promise.race([p.exited, rejectAfter(15_000, 'wsgate did not exit with nothing to drain')]);
    assert.equal(exit.code, 0, exit.stderr);
  });

  test('a second SIGTERM closes the open tunnels now and exits 0', async () => {
    const { p, httpPort, status } = await serveProcess();
    // Three tunnels: the drain closes the first at once and spreads the others over its 30 s.
    const clients = [];
    for (let i = 0; i < 3; i++) {
      const c = await openClient(`ws://127.0.0.1:${httpPort}/echo`);
      assert.equal((await roundTrip(c, 'before')).data.toString(), 'before');
      clients.push(c);
    }
    p.child.kill('SIGTERM');
    await converge(async () => (await status('/readyz')).body.includes('draining'), '/readyz draining', 2, 10_000);
    p.child.kill('SIGTERM');
    await Promise.race([Promise.all(clients.map((c) => c.closed)), rejectAfter(15_000, 'the tunnels were not closed by the second signal')]);
    const exit = await Promise.race([p.exited, rejectAfter(15_000, 'wsgate did not exit after the second signal')]);
    assert.equal(exit.code, 0, exit.stderr);
    const lines = exit.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { msg: string });
    assert.ok(lines.some((l) => l.msg === 'second signal: closing every tunnel now'));
  });
});
