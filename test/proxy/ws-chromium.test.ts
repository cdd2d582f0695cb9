// A real browser behind wsgate's keepalive (issue 10): headless Chromium (Debian's `chromium`, installed for
// `npm test` by scripts/setup/deps.sh; driven over the DevTools protocol, test/helpers/chromium.ts) opens WebSockets
// from a page to wsgate on loopback, to `ws` backends that do and do not accept permessage-deflate (Chromium always
// offers it). With keepalive on both ways (interval 1 s, timeout 2 s), the page exchanges text, binary, a 300 kB
// message and a fragmented message from the backend, stays idle until wsgate's pings were answered by Chromium and
// by the backend, and goes on; the page's close code reaches the backend and the backend's reaches the page, cleanly.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backend, httpRoute, table, vhost } from '../helpers/fixtures.ts';
import { chromiumInstalled, CHROMIUM, launchChromium, type Browser, type Page } from '../helpers/chromium.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { converge, stopGateway } from '../helpers/l7-peers.ts';
import { startScriptedBackend, type ScriptedBackend } from '../helpers/scripted-backend.ts';

const KEEPALIVE = { intervalSeconds: 1, timeoutSeconds: 2, toBackend: true };
const PINGS = 2;

let gw: TestGateway;
let browser: Browser;
let page: Page;
const backends: Record<'plain' | 'deflate', ScriptedBackend> = {} as never;

/** In the page: openWs(url) resolves with an open WebSocket whose next() awaits the next message, described. */
const PAGE_HELPERS = `
window.describe = (data) => {
  if (typeof data === 'string') return 'text:' + data;
  const b = new Uint8Array(data);
  return b.length <= 32 ? 'binary:' + [...b].map((x) => x.toString(16).padStart(2, '0')).join('') : 'binary:' + b.length + ' bytes';
};
window.openWs = (url) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  const waiters = [];
  ws.onmessage = (e) => {
    const v = describe(e.data);
    if (waiters.length > 0) waiters.shift()(v);
    else inbox.push(v);
  };
  ws.closed = new Promise((r) => (ws.onclose = (e) => r({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
  ws.next = () => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r)));
  ws.onopen = () => resolve(ws);
  ws.onerror = () => reject(new Error('WebSocket error before open'));
});
true
`;

before(async () => {
  assert.ok(chromiumInstalled(), `${CHROMIUM} is missing: run scripts/setup/deps.sh test (as root) to install Debian's chromium`);
  backends.plain = await startScriptedBackend(false);
  backends.deflate = await startScriptedBackend({ threshold: 0 });
  const route = (name: string, port: number) =>
    httpRoute({ route: `default/${name}`, path: `/${name}`, backends: [backend(`default/${name}:80`, port)], policy: { keepalive: KEEPALIVE } });
  gw = await startGateway(table({ virtualHosts: [vhost('*', route('browser-plain', backends.plain.port), route('browser-deflate', backends.deflate.port))] }));
  browser = await launchChromium();
  page = await browser.newPage();
  assert.equal(await page.evaluate<boolean>(PAGE_HELPERS), true);
});

after(async () => {
  await browser?.close();
  await stopGateway(gw);
  await backends.plain?.close();
  await backends.deflate?.close();
});

const pongs = (route: string, direction: string): Promise<number> => gw.metric('wsgate_ws_frames_total', { route, direction, kind: 'pong' });

async function browserConversation(variant: 'plain' | 'deflate'): Promise<void> {
  const name = `browser-${variant}`;
  const route = `default/${name}`;
  const url = `${gw.wsUrl}/${name}`;
  const b = backends[variant];
  const first = await page.evaluate<{ extensions: string; got: string[] }>(`(async () => {
    const ws = await openWs(${JSON.stringify(url)});
    window[${JSON.stringify(name)}] = ws;
    const got = [];
    ws.send('hello from the browser'); got.push(await ws.next());
    ws.send(new Uint8Array([0, 1, 254, 255])); got.push(await ws.next());
    ws.send('frag-me'); got.push(await ws.next());
    ws.send(new Uint8Array(300000).fill(7)); got.push(await ws.next());
    return { extensions: ws.extensions, got };
  })()`);
  assert.equal(first.extensions.startsWith('permessage-deflate'), variant === 'deflate', `${variant}: extensions "${first.extensions}"`);
  assert.deepEqual(first.got, ['text:hello from the browser', 'binary:0001feff', 'text:fragment', 'binary:300000 bytes']);
  const conn = await b.connections.shift();
  assert.equal(conn.req.headers['user-agent']?.includes('Chrome'), true, 'the backend talks to Chromium');

  // Idle: Chromium and the backend answer wsgate's pings; the answers go no further.
  const up0 = await pongs(route, 'upstream');
  const down0 = await pongs(route, 'downstream');
  await converge(
    async () => (await pongs(route, 'upstream')) >= up0 + PINGS && (await pongs(route, 'downstream')) >= down0 + PINGS,
    `${PINGS} of wsgate's pings answered by Chromium and by the backend (${variant})`,
    1,
    15_000,
  );

  const last = await page.evaluate<{ echo: string; closed: { code: number; reason: string; wasClean: boolean } }>(`(async () => {
    const ws = window[${JSON.stringify(name)}];
    ws.send('after the pings');
    const echo = await ws.next();
    ws.close(4001, 'browser bye');
    return { echo, closed: await ws.closed };
  })()`);
  assert.deepEqual(last, { echo: 'text:after the pings', closed: { code: 4001, reason: 'browser bye', wasClean: true } });
  assert.deepEqual(await conn.closed, { code: 4001, reason: 'browser bye' });
  assert.deepEqual(conn.pongs, [], `${variant}: the backend got pongs it never asked for`);
  assert.deepEqual(conn.messages, ['text:hello from the browser', 'binary:0001feff', 'text:frag-me', 'binary:300000 bytes', 'text:after the pings']);

  // The backend closes: the page sees its code, cleanly.
  const closedByBackend = await page.evaluate<{ code: number; reason: string; wasClean: boolean }>(`(async () => {
    const ws = await openWs(${JSON.stringify(url)});
    ws.send('close-me 4002');
    return ws.closed;
  })()`);
  assert.deepEqual(closedByBackend, { code: 4002, reason: 'server bye', wasClean: true });
  assert.deepEqual(await (await b.connections.shift()).closed, { code: 4002, reason: 'server bye' });
}

describe('headless Chromium through wsgate with keepalive on', { timeout: 60_000 }, () => {
  test('notices nothing: echoes intact, fragmented messages, close codes both ways, with and without permessage-deflate', async () => {
    await Promise.all([browserConversation('plain'), browserConversation('deflate')]);
    await converge(() => gw.gateway.registry.size === 0, 'every tunnel ended');
    for (const v of ['browser-plain', 'browser-deflate']) {
      const route = `default/${v}`;
      assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'client', code: '4xxx' }), 1, route);
      assert.equal(await gw.metric('wsgate_ws_closes_total', { route, initiator: 'backend', code: '4xxx' }), 1, route);
      assert.equal(await gw.metric('wsgate_ws_keepalive_timeouts_total', { route }), 0, route);
      assert.equal(await gw.metric('wsgate_ws_protocol_errors_total', { route }), 0, route);
    }
  });
});
