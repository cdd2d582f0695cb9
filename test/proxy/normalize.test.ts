// Golden table of request-target normalisation (testdata/normalize-cases.yaml), checked twice: by calling
// normalizeTarget, and by sending every target on the wire to a real Node HTTP server, so that each input is what
// llhttp really hands over as req.url (or is known to be refused by llhttp before wsgate sees it).
// Also the table of normalizeHost.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { normalizeHost, normalizeTarget, type NormalizeOptions } from '../../src/proxy/normalize.ts';

interface GoldenCase {
  target: string;
  options?: NormalizeOptions;
  path?: string;
  query?: string;
  authority?: string;
  changed?: boolean;
  reject?: string;
  llhttp?: 'rejects';
}

const cases = parse(readFileSync(new URL('testdata/normalize-cases.yaml', import.meta.url), 'utf8')) as GoldenCase[];

function describeOptions(o: NormalizeOptions | undefined): string {
  return o === undefined ? '' : ` with ${JSON.stringify(o)}`;
}

describe('normalizeTarget golden cases', () => {
  test('the table holds at least 60 cases, each with exactly one expectation', () => {
    assert.ok(cases.length >= 60, `only ${cases.length} cases`);
    for (const c of cases) assert.ok((c.path === undefined) !== (c.reject === undefined), JSON.stringify(c));
  });

  for (const c of cases) {
    const shown = JSON.stringify(c.target) + describeOptions(c.options);
    if (c.reject !== undefined) {
      test(`refuses ${shown} with 400 ${c.reject}`, () => {
        const r = normalizeTarget(c.target, c.options);
        assert.deepEqual(r.ok ? r : { ok: r.ok, status: r.status, reason: r.reason }, {
          ok: false,
          status: 400,
          reason: c.reject,
        });
        assert.ok(!r.ok && r.message.length > 0);
      });
    } else {
      const absolute = c.authority !== undefined;
      const query = c.query ?? '';
      const changed = c.changed ?? (absolute || c.path + query !== c.target);
      test(`normalises ${shown} to ${JSON.stringify(c.path! + query)}${changed ? '' : ' (unchanged)'}`, () => {
        const r = normalizeTarget(c.target, c.options);
        const want = absolute
          ? { ok: true, path: c.path, query, form: 'absolute', authority: c.authority, changed }
          : { ok: true, path: c.path, query, form: 'origin', changed };
        assert.deepEqual(r, want);
      });
    }
  }
});

describe('normalizeTarget inputs are what llhttp delivers', () => {
  let server: http.Server;
  let port = 0;
  before(async () => {
    server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(Buffer.from(req.url ?? '', 'latin1'));
    });
    // Node answers a parse error with a bare 400 and no body: distinguishable from a request that reached us.
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Sends `GET <target> HTTP/1.1` as raw latin1 bytes; returns the status and body of the answer. */
  function send(target: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (m === null) return reject(new Error(`no HTTP answer for ${JSON.stringify(target)}: ${JSON.stringify(text)}`));
        resolve({ status: Number(m[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
      });
      socket.end(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1'));
    });
  }

  for (const c of cases) {
    if (c.llhttp === 'rejects') {
      test(`llhttp refuses ${JSON.stringify(c.target)} with 400 before any handler runs`, async () => {
        const r = await send(c.target);
        assert.equal(r.status, 400);
        assert.equal(r.body, '');
      });
    } else {
      test(`llhttp delivers ${JSON.stringify(c.target)} unchanged as req.url`, async () => {
        const r = await send(c.target);
        assert.equal(r.status, 200);
        assert.equal(r.body, c.target);
      });
    }
  }
});

describe('normalizeHost', () => {
  const accepted: [string, string, number | undefined][] = [
    ['example.com', 'example.com', undefined],
    ['Example.COM', 'example.com', undefined],
    ['example.com.', 'example.com', undefined],
    ['example.com:8080', 'example.com', 8080],
    ['EXAMPLE.com.:443', 'example.com', 443],
    ['example.com:', 'example.com', undefined],
    ['example.com:080', 'example.com', 80],
    ['127.0.0.1:80', '127.0.0.1', 80],
    ['my_svc.my-ns.svc', 'my_svc.my-ns.svc', undefined],
    ['xn--caf-dma.test', 'xn--caf-dma.test', undefined],
    ['localhost', 'localhost', undefined],
    ['[::1]', '[::1]', undefined],
    ['[::1]:8080', '[::1]', 8080],
    ['[::1]:', '[::1]', undefined],
    ['[0:0::1]:80', '[::1]', 80],
    ['[FE80::A]', '[fe80::a]', undefined],
    ['a.b:65535', 'a.b', 65535],
  ];
  for (const [host, hostname, port] of accepted) {
    test(`reads ${JSON.stringify(host)} as ${hostname}${port === undefined ? '' : ` port ${port}`}`, () => {
      assert.deepEqual(normalizeHost(host), port === undefined ? { ok: true, hostname } : { ok: true, hostname, port });
    });
  }

  const refused: [string | undefined, string][] = [
    [undefined, 'missing_host'],
    ['', 'missing_host'],
    [':80', 'bad_host'],
    ['.', 'bad_host'],
    ['..', 'bad_host'],
    ['a..b', 'bad_host'],
    ['.a', 'bad_host'],
    ['a b', 'bad_host'],
    ['a/b', 'bad_host'],
    ['a\\b', 'bad_host'],
    ['u@a', 'bad_host'],
    ['a%2eb', 'bad_host'],
    ['café.test', 'bad_host'],
    ['*', 'bad_host'],
    ['*.example.com', 'bad_host'],
    ['::1', 'bad_host'],
    ['[::1', 'bad_host'],
    ['[::1]x', 'bad_host'],
    ['[fe80::1%eth0]', 'bad_host'],
    ['[not-v6]', 'bad_host'],
    ['[127.0.0.1]', 'bad_host'],
    ['a'.repeat(254), 'bad_host'],
    ['a:b', 'bad_port'],
    ['a:0', 'bad_port'],
    ['a:65536', 'bad_port'],
    ['a:123456', 'bad_port'],
    ['a:+80', 'bad_port'],
    ['a: 80', 'bad_port'],
  ];
  for (const [host, reason] of refused) {
    test(`refuses ${JSON.stringify(host)} with 400 ${reason}`, () => {
      const r = normalizeHost(host);
      assert.ok(!r.ok, JSON.stringify(r));
      assert.equal(r.status, 400);
      assert.equal(r.reason, reason);
    });
  }
});
