// The metrics Gateway.apply derives from the routing table for alerting: the expiry of every served certificate,
// and the configured connection limit of every limited route. Both follow the live table: a certificate or limit
// that is no longer served loses its series.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { X509Certificate } from 'node:crypto';
import { AggregatorRegistry } from 'prom-client';
import { createMetrics, setCertificateExpiries, setRouteMaxConnections } from '../../src/metrics/metrics.ts';
import type { Certificate } from '../../src/model/table.ts';
import { createTestCA, type TestCA } from '../helpers/certs.ts';
import { backend, httpRoute, table, tunnelRoute, vhost } from '../helpers/fixtures.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

let ca: TestCA;
let gw: TestGateway;

before(async () => {
  ca = createTestCA();
  gw = await startGateway(table({}));
});

after(async () => {
  await gw?.close();
  ca?.dispose();
});

function certificate(secret: string, hostnames: string[], days: number): Certificate {
  return { secret, hostnames, ...ca.issue(hostnames, { days }) };
}

/** The samples of a gauge, as `labels → value` with labels rendered `k=v,...` in name order. */
async function samples(g: TestGateway, name: string): Promise<Map<string, number>> {
  const m = await g.metrics.registry.getSingleMetric(name)?.get();
  const out = new Map<string, number>();
  for (const v of m?.values ?? []) {
    const labels = Object.entries(v.labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, val]) => `${k}=${String(val)}`)
      .join(',');
    out.set(labels, v.value);
  }
  return out;
}

function notAfter(c: Certificate): number {
  return new X509Certificate(c.certPem).validToDate.getTime() / 1000;
}

describe('wsgate_certificate_expiry_timestamp_seconds', () => {
  test('holds the notAfter of each served certificate, by Secret', async () => {
    const chat = certificate('prod/chat-tls', ['chat.test'], 10);
    const api = certificate('prod/api-tls', ['api.test'], 2);
    await gw.gateway.apply(table({ certificates: [chat, api] }));
    assert.deepEqual(
      await samples(gw, 'wsgate_certificate_expiry_timestamp_seconds'),
      new Map([
        ['secret=prod/chat-tls', notAfter(chat)],
        ['secret=prod/api-tls', notAfter(api)],
      ]),
    );
    // About ten days from now (openssl's -days counts from the signing second).
    const days = (notAfter(chat) - Date.now() / 1000) / 86_400;
    assert.ok(days > 9.9 && days <= 10, `chat-tls expires in ${days} days`);
  });

  test('drops the series of a certificate that is no longer served', async () => {
    const chat = certificate('prod/chat-tls', ['chat.test'], 10);
    await gw.gateway.apply(table({ certificates: [chat, certificate('prod/api-tls', ['api.test'], 2)] }));
    await gw.gateway.apply(table({ certificates: [chat] }));
    assert.deepEqual([...(await samples(gw, 'wsgate_certificate_expiry_timestamp_seconds')).keys()], ['secret=prod/chat-tls']);
    await gw.gateway.apply(table({}));
    assert.equal((await samples(gw, 'wsgate_certificate_expiry_timestamp_seconds')).size, 0);
  });

  test('skips a certificate that cannot be loaded (it is not served)', async () => {
    const good = certificate('prod/good-tls', ['good.test'], 5);
    const bad: Certificate = { secret: 'prod/bad-tls', hostnames: ['bad.test'], certPem: 'not a certificate', keyPem: 'no' };
    const { certificateErrors } = await gw.gateway.apply(table({ certificates: [good, bad] }));
    assert.deepEqual(certificateErrors.map((e) => e.secret), ['prod/bad-tls']);
    assert.deepEqual([...(await samples(gw, 'wsgate_certificate_expiry_timestamp_seconds')).keys()], ['secret=prod/good-tls']);
  });
});

describe('wsgate_route_max_connections', () => {
  const b = backend('default/echo:80', 1);

  test('holds the limit of each limited route, summed over its rules, by route and layer', async () => {
    const chatWs = httpRoute({ route: 'prod/chat', path: '/ws', backends: [b], policy: { maxConnections: 100 } });
    const chatFeed = httpRoute({ route: 'prod/chat', path: '/feed', backends: [b], policy: { maxConnections: 50 } });
    await gw.gateway.apply(
      table({
        // The same rule under two hostnames is one rule: its limit counts once.
        virtualHosts: [vhost('a.test', chatWs, chatFeed), vhost('b.test', chatWs)],
        tunnels: [tunnelRoute({ port: 0, route: 'prod/chat', backends: [b], maxConnections: 7 })],
      }),
    );
    assert.deepEqual(
      await samples(gw, 'wsgate_route_max_connections'),
      new Map([
        ['layer=l7,route=prod/chat', 150],
        ['layer=l4,route=prod/chat', 7],
      ]),
    );
  });

  test('has no series for a route with an unlimited rule, or once a limit is removed', async () => {
    const m = createMetrics('test', { defaultMetrics: false });
    const limited = httpRoute({ route: 'prod/feed', path: '/a', backends: [b], policy: { maxConnections: 10 } });
    const unlimited = httpRoute({ route: 'prod/feed', path: '/b', backends: [b] });
    setRouteMaxConnections(m, table({ virtualHosts: [vhost('*', limited)] }));
    assert.deepEqual((await m.routeMaxConnections.get()).values.map((v) => v.value), [10]);
    setRouteMaxConnections(m, table({ virtualHosts: [vhost('*', limited, unlimited)] }));
    assert.deepEqual((await m.routeMaxConnections.get()).values, []);
  });
});

describe('across worker processes (--workers)', () => {
  test('a certificate keeps its one expiry, a route limit is the pod\'s (not a sum), and connections add up', async () => {
    const workers = [createMetrics('test', { defaultMetrics: false }), createMetrics('test', { defaultMetrics: false })];
    const route = httpRoute({ route: 'prod/chat', backends: [backend('default/echo:80', 1)], policy: { maxConnections: 10 } });
    for (const m of workers) {
      setCertificateExpiries(m, [{ secret: 'prod/chat-tls', notAfter: new Date(1_900_000_000_000) }]);
      setRouteMaxConnections(m, table({ virtualHosts: [vhost('*', route)] }));
      m.connectionsActive.set({ route: 'prod/chat', layer: 'l7' }, 4);
    }
    const text = await AggregatorRegistry.aggregate(await Promise.all(workers.map((m) => m.registry.getMetricsAsJSON()))).metrics();
    assert.match(text, /^wsgate_certificate_expiry_timestamp_seconds\{secret="prod\/chat-tls"\} 1900000000$/m);
    assert.match(text, /^wsgate_route_max_connections\{route="prod\/chat",layer="l7"\} 10$/m);
    assert.match(text, /^wsgate_connections_active\{route="prod\/chat",layer="l7"\} 8$/m);
  });
});
