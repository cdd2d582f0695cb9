// The README's first command: `npm start` runs the quickstart (demo echo backend + wsgate serve on
// examples/quickstart/). A WebSocket goes through, over L7, over the L4 tunnel and through the Gateway's listener; the metrics move; SIGTERM ends it.
// It uses the quickstart's fixed ports (8080, 8081, 8443, 9090, 9100, 9001), which no other test uses.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { converge, openClient, roundTrip } from '../helpers/l7-peers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let child: ChildProcess | undefined;
let stderr = '';

after(() => {
  child?.kill('SIGKILL');
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch('http://127.0.0.1:9090/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('the quickstart (npm start)', { timeout: 60_000 }, () => {
  test('proxies a WebSocket over L7 and L4, counts it, and exits 0 on SIGTERM', async () => {
    child = spawn(process.execPath, ['src/cli/quickstart.ts'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = once(child, 'exit');
    await converge(async () => {
      if (child?.exitCode !== null) throw new Error(`the quickstart exited: ${stderr}`);
      try {
        return (await fetch('http://127.0.0.1:9090/readyz')).status === 200;
      } catch {
        return false;
      }
    }, 'the quickstart ready', 1, 30_000);
    assert.match(stderr, /ws:\/\/127\.0\.0\.1:8080\/echo/);

    const l7 = await openClient('ws://127.0.0.1:8080/echo');
    assert.equal((await roundTrip(l7, 'hello through wsgate')).data.toString(), 'hello through wsgate');
    const l4 = await openClient('ws://127.0.0.1:9100/echo');
    assert.equal((await roundTrip(l4, 'via tunnel')).data.toString(), 'via tunnel');
    const gw = await openClient('ws://127.0.0.1:8081/echo');
    assert.equal((await roundTrip(gw, 'via the Gateway')).data.toString(), 'via the Gateway');
    l7.ws.close();
    l4.ws.close();
    gw.ws.close();
    await Promise.all([l7.closed, l4.closed, gw.closed]);
    await converge(
      async () =>
        (await metric('wsgate_connections_total', 'route="default/echo",layer="l7",outcome="completed"')) === 1 &&
        (await metric('wsgate_connections_total', 'route="default/echo-tcp",layer="l4",outcome="completed"')) === 1 &&
        (await metric('wsgate_connections_total', 'route="default/echo-gateway",layer="l7",outcome="completed"')) === 1,
      "the three tunnels counted as completed, the Gateway's under its HTTPRoute",
    );
    assert.ok((await metric('wsgate_tunnel_bytes_total', 'route="default/echo",direction="upstream"')) > 0);

    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  });
});
