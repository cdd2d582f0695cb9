// The pure parts of the edge policy (issue 12), case by case: PROXY headers in, the client address from trusted
// hops, source ranges, the redirect, the token bucket, the affinity cookie, CORS. The data-plane tests with real
// peers are in edge-*.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_POLICY } from '../../src/model/table.ts';
import { sourceAllowed } from '../../src/proxy/access.ts';
import { Affinity, withSetCookie } from '../../src/proxy/affinity.ts';
import { serverName } from '../../src/proxy/backend-tls.ts';
import { parseProxyHeader, resolveClient, TrustedProxies } from '../../src/proxy/client-address.ts';
import { preflightHeaders, responseCorsHeaders } from '../../src/proxy/cors.ts';
import { proxyV1Header, proxyV2Header } from '../../src/proxy/proxy-protocol.ts';
import { RateLimiter } from '../../src/proxy/rate.ts';
import { hstsHeader, httpsRedirect } from '../../src/proxy/redirect.ts';
import { normalizeCidr } from '../../src/translate/edge-policy.ts';
import { backend } from '../helpers/fixtures.ts';

describe('PROXY protocol headers in', () => {
  const rest = Buffer.from('GET / HTTP/1.1\r\n');
  const cases: { name: string; bytes: Buffer; want: ReturnType<typeof parseProxyHeader> }[] = [
    {
      name: 'reads a v1 TCP4 header',
      bytes: Buffer.from('PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n'),
      want: { state: 'ok', length: 46, source: { address: '192.0.2.10', port: 51234 } },
    },
    {
      name: 'reads a v1 TCP6 header',
      bytes: Buffer.from('PROXY TCP6 2001:DB8::10 2001:db8::1 1 8443\r\n'),
      want: { state: 'ok', length: 44, source: { address: '2001:db8::10', port: 1 } },
    },
    { name: 'keeps the connection address for v1 UNKNOWN', bytes: Buffer.from('PROXY UNKNOWN\r\n'), want: { state: 'ok', length: 15, source: undefined } },
    { name: 'waits for the rest of a v1 header', bytes: Buffer.from('PROXY TCP4 192.0'), want: { state: 'need-more' } },
    { name: 'waits for the rest of the signature', bytes: Buffer.from('PRO'), want: { state: 'need-more' } },
    { name: 'refuses a v1 header with a bad address', bytes: Buffer.from('PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n'), want: { state: 'invalid', why: 'malformed v1 addresses' } },
    { name: 'refuses a v1 header with a port over 65535', bytes: Buffer.from('PROXY TCP4 1.2.3.4 4.5.6.7 65536 2\r\n'), want: { state: 'invalid', why: 'malformed v1 addresses' } },
    { name: 'refuses a v1 header of the wrong family', bytes: Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), want: { state: 'invalid', why: 'malformed v1 addresses' } },
    { name: 'refuses a v1 line longer than 107 bytes', bytes: Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), want: { state: 'invalid', why: 'v1 header longer than 107 bytes' } },
    { name: 'refuses plain HTTP', bytes: Buffer.from('GET / HTTP/1.1\r\n'), want: { state: 'invalid', why: 'no PROXY signature' } },
    { name: 'refuses a TLS ClientHello', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00]), want: { state: 'invalid', why: 'no PROXY signature' } },
    {
      name: 'reads a v2 PROXY TCP4 header',
      bytes: proxyV2Header({ address: '192.0.2.10', port: 4000 }, { address: '198.51.100.1', port: 443 }),
      want: { state: 'ok', length: 28, source: { address: '192.0.2.10', port: 4000 } },
    },
    {
      name: 'reads a v2 PROXY TCP6 header',
      bytes: proxyV2Header({ address: '2001:db8::10', port: 4000 }, { address: '2001:db8::1', port: 443 }),
      want: { state: 'ok', length: 52, source: { address: '2001:db8::10', port: 4000 } },
    },
    {
      name: 'keeps the connection address for a v2 LOCAL header (a health check)',
      bytes: proxyV2Header({ address: undefined, port: undefined }, { address: undefined, port: undefined }),
      want: { state: 'ok', length: 16, source: undefined },
    },
    {
      name: 'waits for the addresses of a v2 header',
      bytes: proxyV2Header({ address: '192.0.2.10', port: 4000 }, { address: '198.51.100.1', port: 443 }).subarray(0, 20),
      want: { state: 'need-more' },
    },
    {
      name: 'refuses a v2 header with another version',
      bytes: Buffer.concat([proxyV2Header({ address: '192.0.2.10', port: 1 }, { address: '192.0.2.11', port: 2 }).subarray(0, 12), Buffer.from([0x11, 0x11, 0, 0])]),
      want: { state: 'invalid', why: 'v2 header with another version' },
    },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(parseProxyHeader(Buffer.concat([c.bytes, c.want.state === 'ok' ? rest : Buffer.alloc(0)])), c.want));
  }

  test("reads back what wsgate's own encoders write, for both versions and families", () => {
    for (const [src, dst] of [
      [{ address: '10.1.2.3', port: 1 }, { address: '10.0.0.1', port: 80 }],
      [{ address: '2001:db8::1:0:0:5', port: 65535 }, { address: '2001:db8::1', port: 443 }],
    ] as const) {
      for (const encode of [proxyV1Header, proxyV2Header]) {
        const r = parseProxyHeader(encode(src, dst));
        assert.equal(r.state, 'ok');
        assert.deepEqual(r.state === 'ok' && r.source, { address: src.address, port: src.port });
      }
    }
  });
});

describe('the client address from trusted hops', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8', 'fd00::/8']);
  const cases: { name: string; peer: string; headers: Record<string, string>; t?: TrustedProxies; want: string }[] = [
    { name: 'believes no header from an untrusted peer', peer: '203.0.113.9', headers: { 'x-forwarded-for': '198.51.100.7', 'x-real-ip': '198.51.100.8' }, want: '203.0.113.9' },
    { name: 'believes no header without --trusted-proxies', peer: '10.0.0.5', headers: { 'x-forwarded-for': '198.51.100.7' }, t: new TrustedProxies([]), want: '10.0.0.5' },
    { name: "takes a trusted peer's X-Forwarded-For", peer: '10.0.0.5', headers: { 'x-forwarded-for': '198.51.100.7' }, want: '198.51.100.7' },
    { name: 'walks X-Forwarded-For from the right past trusted hops', peer: '10.0.0.5', headers: { 'x-forwarded-for': '1.1.1.1, 198.51.100.7, 10.9.9.9' }, want: '198.51.100.7' },
    { name: 'stops at the first untrusted hop, whatever a client wrote left of it', peer: '10.0.0.5', headers: { 'x-forwarded-for': '6.6.6.6, 198.51.100.7' }, want: '198.51.100.7' },
    { name: 'takes the leftmost when every hop is trusted', peer: '10.0.0.5', headers: { 'x-forwarded-for': '10.1.1.1, 10.2.2.2' }, want: '10.1.1.1' },
    { name: 'falls back to X-Real-IP without X-Forwarded-For', peer: '10.0.0.5', headers: { 'x-real-ip': '198.51.100.8' }, want: '198.51.100.8' },
    { name: 'reads hops written with a port', peer: '10.0.0.5', headers: { 'x-forwarded-for': '198.51.100.7:5555' }, want: '198.51.100.7' },
    { name: 'reads IPv6 hops and IPv6 trusted ranges', peer: 'fd00::1', headers: { 'x-forwarded-for': '[2001:db8::7]:443' }, want: '2001:db8::7' },
    { name: 'keeps the peer when X-Forwarded-For is garbage', peer: '10.0.0.5', headers: { 'x-forwarded-for': 'unknown' }, want: '10.0.0.5' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = resolveClient(c.peer, c.headers, c.t ?? trusted);
      assert.equal(r.client, c.want);
      assert.equal(r.peer, c.peer);
    });
  }
});

describe('source ranges', () => {
  test('normalises CIDRs and single addresses of both families, and refuses the rest', () => {
    assert.equal(normalizeCidr('10.0.0.0/8'), '10.0.0.0/8');
    assert.equal(normalizeCidr(' 192.0.2.7 '), '192.0.2.7/32');
    assert.equal(normalizeCidr('2001:DB8::/32'), '2001:db8::/32');
    assert.equal(normalizeCidr('::1'), '::1/128');
    for (const bad of ['10.0.0.0/33', '2001:db8::/129', '10.0.0/8', 'example.com', '10.0.0.0/', '', 7]) assert.equal(normalizeCidr(bad), undefined, String(bad));
  });

  const allowed = ['10.0.0.0/8', '2001:db8::/32'];
  const denied = ['10.6.6.0/24', '2001:db8:bad::/48'];
  const cases: [string, boolean][] = [
    ['10.1.2.3', true],
    ['10.6.6.6', false],
    ['192.0.2.1', false],
    ['2001:db8:1::1', true],
    ['2001:db8:bad::1', false],
    ['2001:db9::1', false],
    ['not-an-address', false],
  ];
  for (const [ip, want] of cases) {
    test(`${want ? 'admits' : 'refuses'} ${ip} (deny first, then allow)`, () => assert.equal(sourceAllowed(ip, allowed, denied), want));
  }
  test('admits anyone with empty lists, and only the denied are refused with a deny list alone', () => {
    assert.equal(sourceAllowed('192.0.2.1', [], []), true);
    assert.equal(sourceAllowed('10.6.6.1', [], denied), false);
    assert.equal(sourceAllowed('10.7.6.1', [], denied), true);
  });
});

describe('the HTTPS redirect', () => {
  const base = { proto: 'http' as const, host: 'chat.test', target: '/room?id=1', webSocket: false, hasCertificate: (h: string) => h === 'chat.test', httpsPort: 443 };
  const policy = (o: Partial<typeof DEFAULT_POLICY.httpsRedirect>) => ({ ...DEFAULT_POLICY.httpsRedirect, ...o });
  test('sends plain HTTP on a host with TLS to https:// with 308 under IfTLS', () => {
    const r = httpsRedirect({ ...base, policy: policy({ mode: 'IfTLS' }) });
    assert.deepEqual([r?.status, r?.reason, r?.headers?.['Location']], [308, 'https_redirect', 'https://chat.test/room?id=1']);
  });
  test('leaves a host without a certificate alone under IfTLS, and redirects it under Always', () => {
    assert.equal(httpsRedirect({ ...base, host: 'other.test', policy: policy({ mode: 'IfTLS' }) }), undefined);
    assert.equal(httpsRedirect({ ...base, host: 'other.test', policy: policy({ mode: 'Always', statusCode: 301 }) })?.status, 301);
  });
  test('never redirects on the TLS listener, nor with Never, nor without a host', () => {
    assert.equal(httpsRedirect({ ...base, proto: 'https', policy: policy({ mode: 'Always' }) }), undefined);
    assert.equal(httpsRedirect({ ...base, policy: policy({ mode: 'Never' }) }), undefined);
    assert.equal(httpsRedirect({ ...base, host: undefined, policy: policy({ mode: 'Always' }) }), undefined);
  });
  test('answers a WebSocket handshake 426 naming the wss:// URL by default, or the redirect with webSocket: Redirect', () => {
    const reject = httpsRedirect({ ...base, webSocket: true, httpsPort: 8443, policy: policy({ mode: 'Always' }) });
    assert.deepEqual([reject?.status, reject?.reason], [426, 'https_required']);
    assert.match(reject?.message ?? '', /wss:\/\/chat\.test:8443\/room\?id=1/);
    const redirect = httpsRedirect({ ...base, webSocket: true, policy: policy({ mode: 'Always', webSocket: 'Redirect' }) });
    assert.deepEqual([redirect?.status, redirect?.headers?.['Location']], [308, 'https://chat.test/room?id=1']);
  });
  test('writes Strict-Transport-Security only with a max-age', () => {
    assert.equal(hstsHeader(DEFAULT_POLICY.hsts), undefined);
    assert.equal(hstsHeader({ maxAgeSeconds: 600, includeSubDomains: true, preload: true }), 'max-age=600; includeSubDomains; preload');
  });
});

describe('the request rate: a token bucket per rule and client', () => {
  test('admits a burst, then answers with the seconds until a token is back, and refills at the rate', () => {
    let now = 0;
    const r = new RateLimiter(undefined, () => now);
    try {
      for (let i = 0; i < 3; i++) assert.equal(r.takeNow('rule', '192.0.2.1', 1, 3), 0);
      assert.equal(r.takeNow('rule', '192.0.2.1', 1, 3), 1);
      // Another client and another rule have buckets of their own.
      assert.equal(r.takeNow('rule', '192.0.2.2', 1, 3), 0);
      assert.equal(r.takeNow('other', '192.0.2.1', 1, 3), 0);
      now += 1000;
      assert.equal(r.takeNow('rule', '192.0.2.1', 1, 3), 0);
      assert.equal(r.takeNow('rule', '192.0.2.1', 1, 3), 1);
      // A slow rate waits longer: 1 token every 10 s.
      for (let i = 0; i < 2; i++) r.takeNow('slow', '192.0.2.1', 0.1, 1);
      assert.equal(r.takeNow('slow', '192.0.2.1', 0.1, 1), 10);
    } finally {
      r.stop();
    }
  });
  test('forgets buckets that are full again', () => {
    let now = 0;
    const r = new RateLimiter(undefined, () => now);
    try {
      r.takeNow('rule', '192.0.2.1', 10, 10);
      assert.equal(r.size, 1);
      now += 50;
      r.sweep();
      assert.equal(r.size, 1);
      now += 100;
      r.sweep();
      assert.equal(r.size, 0);
    } finally {
      r.stop();
    }
  });
});

describe('the affinity cookie', () => {
  const a = new Affinity(Buffer.from('0123456789abcdef0123456789abcdef'));
  const backends = [backend('default/chat:80', 9001, 9002)];
  const cookie = { name: 'INGRESSCOOKIE', maxAgeSeconds: 0, path: '', sameSite: '' as const, secure: false };
  test('names an endpoint of the route by an HMAC that does not show the address', () => {
    const token = a.token('127.0.0.1:9002');
    assert.doesNotMatch(token, /127|9002/);
    assert.equal(a.endpointOf(token, backends), '127.0.0.1:9002');
  });
  test('knows no forged, foreign or stale value', () => {
    assert.equal(a.endpointOf('AAAAAAAAAAAAAAAAAAAAAA', backends), undefined);
    assert.equal(a.endpointOf(new Affinity(Buffer.from('another key, 16+ bytes')).token('127.0.0.1:9002'), backends), undefined);
    assert.equal(a.endpointOf(a.token('127.0.0.1:9003'), backends), undefined);
    assert.equal(a.endpointOf(undefined, backends), undefined);
  });
  test('is set only when the request did not already name the endpoint used, with the attributes asked for', () => {
    assert.equal(a.setCookie(cookie, '127.0.0.1:9001', '127.0.0.1:9001', '/socket.io', false), undefined);
    assert.equal(a.setCookie(cookie, '127.0.0.1:9001', undefined, '/socket.io', false), `INGRESSCOOKIE=${a.token('127.0.0.1:9001')}; Path=/socket.io; HttpOnly`);
    const full = a.setCookie({ ...cookie, path: '/', maxAgeSeconds: 60, sameSite: 'None' }, '127.0.0.1:9002', '127.0.0.1:9001', '/x', false);
    assert.equal(full, `INGRESSCOOKIE=${a.token('127.0.0.1:9002')}; Path=/; Max-Age=60; SameSite=None; Secure; HttpOnly`);
    assert.match(a.setCookie(cookie, '127.0.0.1:9001', undefined, '/', true) ?? '', /; Secure; HttpOnly$/);
  });
  test('is written into a 101 head before its blank line', () => {
    const head = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n');
    assert.equal(withSetCookie(head, 'a=b').toString(), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSet-Cookie: a=b\r\n\r\n');
  });
});

describe('CORS', () => {
  const cors = { ...DEFAULT_POLICY.cors, allowOrigins: ['https://app.test'], allowCredentials: true, exposeHeaders: ['X-Id'] };
  test('answers a preflight from an allowed origin with the methods and the headers asked for', () => {
    const h = preflightHeaders(cors, 'OPTIONS', { origin: 'https://app.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-token' });
    assert.equal(h?.['Access-Control-Allow-Origin'], 'https://app.test');
    assert.equal(h?.['Access-Control-Allow-Headers'], 'x-token');
    assert.equal(h?.['Access-Control-Allow-Credentials'], 'true');
  });
  test('answers a preflight from another origin without Access-Control headers, and leaves non-preflights alone', () => {
    assert.deepEqual(preflightHeaders(cors, 'OPTIONS', { origin: 'https://evil.test', 'access-control-request-method': 'POST' }), {});
    assert.equal(preflightHeaders(cors, 'GET', { origin: 'https://app.test' }), undefined);
    assert.equal(preflightHeaders(DEFAULT_POLICY.cors, 'OPTIONS', { origin: 'https://app.test', 'access-control-request-method': 'GET' }), undefined);
  });
  test('adds the allow and expose headers to responses for an allowed origin only', () => {
    assert.deepEqual(responseCorsHeaders(cors, 'https://app.test'), [
      'Access-Control-Allow-Origin', 'https://app.test', 'Vary', 'Origin', 'Access-Control-Allow-Credentials', 'true', 'Access-Control-Expose-Headers', 'X-Id',
    ]);
    assert.deepEqual(responseCorsHeaders(cors, 'https://evil.test'), []);
    assert.deepEqual(responseCorsHeaders({ ...cors, allowOrigins: ['*'], allowCredentials: false }, 'https://any.test').slice(0, 2), ['Access-Control-Allow-Origin', '*']);
  });
});

test("TLS to a backend verifies the Service's DNS name unless sni names another", () => {
  const tls = { ...DEFAULT_POLICY.backendTLS, enabled: true };
  assert.equal(serverName(tls, 'apps/chat:443'), 'chat.apps.svc');
  assert.equal(serverName({ ...tls, sni: 'chat.example.com' }, 'apps/chat:443'), 'chat.example.com');
});
