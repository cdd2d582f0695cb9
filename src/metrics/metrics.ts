// All of wsgate's Prometheus metrics, in their own registry (never prom-client's global one), created once per
// process by the entry point and passed down. Labels are routes (`namespace/name`), never clients.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Deferred } from './deferred.ts';
import type { Layer, RoutingTable } from '../model/table.ts';
import { nativePipes, nativeTunnels } from '../proxy/native-relay.ts';

// How connections end and why they are refused: one vocabulary, in src/proxy/outcomes.ts.
export type { Outcome } from '../proxy/outcomes.ts';

export type Direction = 'upstream' | 'downstream';

// Buckets for connection lifetimes: WebSockets live from milliseconds to days.
const DURATION_BUCKETS = [0.01, 0.1, 1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400];
const HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Metrics {
  readonly registry: Registry;
  readonly connectionsActive: Gauge<'route' | 'layer'>;
  readonly connectionsTotal: Counter<'route' | 'layer' | 'outcome'>;
  readonly tunnelBytes: Counter<'route' | 'direction'>;
  readonly connectionDuration: Histogram<'route' | 'layer'>;
  readonly handshakeDuration: Histogram<'route'>;
  readonly handshakeRejections: Counter<'route' | 'reason'>;
  readonly upstreamConnectErrors: Counter<'route' | 'reason'>;
  readonly httpRequests: Counter<'route' | 'code'>;
  readonly configReloads: Counter<'result'>;
  readonly configLastReloadSuccess: Gauge;
  readonly configLastReloadSuccessful: Gauge;
  readonly routes: Gauge<'kind'>;
  readonly buildInfo: Gauge<'version'>;
  /** Controller: failed lists and watches, by kind (each one restarts that informer after a backoff). */
  readonly controllerWatchErrors: Counter<'kind'>;
  /** Controller: object changes seen, by kind and whether they could change the table or a status. */
  readonly controllerEvents: Counter<'kind' | 'relevant'>;
  /** Controller: one snapshot → translate → apply pass (its _count is the number of syncs). */
  readonly controllerSyncSeconds: Histogram;
  /** Controller: 1 while this process holds the leader Lease (and writes status), else 0. */
  readonly leader: Gauge;
  /** notAfter (Unix seconds) of each certificate the TLS listener serves, by Secret. */
  readonly certificateExpiry: Gauge<'secret'>;
  /** The configured maxConnections of each route that is limited (absent when any of its rules is unlimited). */
  readonly routeMaxConnections: Gauge<'route' | 'layer'>;
  /** Plain HTTP exchanges ended by a timeout, by phase (response_header: 504 sent; idle: connection closed). */
  readonly httpUpstreamTimeouts: Counter<'route' | 'phase'>;
  /** Log lines not written because their kind exceeded its rate (a flood of junk requests must not fill disks). */
  readonly logLinesSuppressed: Counter<'message'>;
  /** WebSocket messages relayed (a message is counted at its first frame), by direction. */
  readonly wsMessages: Counter<'route' | 'direction'>;
  /** WebSocket frames relayed, by direction and kind (data, ping, pong, close). */
  readonly wsFrames: Counter<'route' | 'direction' | 'kind'>;
  /** WebSocket tunnels that ended, by who sent the first close frame and its code (bucketed). */
  readonly wsCloses: Counter<'route' | 'initiator' | 'code'>;
  /** Dead peers found by keepalive, by side. */
  readonly wsKeepaliveTimeouts: Counter<'route' | 'side'>;
  /** Tunnels closed for a message limit (message_size, message_rate). */
  readonly wsLimitCloses: Counter<'route' | 'limit'>;
  /** Time clients spent throttled by maxMessagesPerSecond (reads paused). */
  readonly wsThrottledSeconds: Counter<'route'>;
  /** RFC 6455 violations seen, by reason. */
  readonly wsProtocolErrors: Counter<'route' | 'reason'>;
  /** While a shutdown drain runs: tunnels still open. */
  readonly drainRemaining: Gauge;
  /** The native relay (native-relay.ts): its tunnels, and its pipes by state. */
  readonly nativeRelayTunnels: Gauge;
  readonly nativeRelayPipes: Gauge<'state'>;
  /** Tunnels closed to even out the spread across a route's endpoints (rebalance.enabled). */
  readonly rebalanceCloses: Counter<'route'>;
  /**
   * The series a tunnel updates, counted as plain numbers and added to the metrics above when they are read
   * (deferred.ts): what a tunnel's open, sweep and close update, once per session or more.
   */
  readonly deferred: DeferredMetrics;
}

/** The metrics a tunnel updates: each has a deferred twin with the same labels. */
const DEFERRED = [
  'connectionsActive',
  'connectionsTotal',
  'tunnelBytes',
  'wsMessages',
  'wsFrames',
  'wsCloses',
  'wsKeepaliveTimeouts',
  'wsLimitCloses',
  'wsThrottledSeconds',
  'wsProtocolErrors',
] as const;

type DeferredOf<M> = M extends Counter<infer L> ? Deferred<L> : M extends Gauge<infer L> ? Deferred<L> : never;

export type DeferredMetrics = { readonly [K in (typeof DEFERRED)[number]]: DeferredOf<Metrics[K]> };

/**
 * Metrics the primary of several workers owns (configuration, the controller, leadership, the build), which its
 * workers do not export: aggregated with the primary's, a worker's never-set gauge would read 0 (min) or add 0.
 */
export const PRIMARY_OWNED_METRICS: readonly string[] = [
  'wsgate_config_reloads_total',
  'wsgate_config_last_reload_successful',
  'wsgate_config_last_reload_success_timestamp_seconds',
  'wsgate_routes',
  'wsgate_build_info',
  'wsgate_controller_watch_errors_total',
  'wsgate_controller_events_total',
  'wsgate_controller_sync_seconds',
  'wsgate_leader',
];

/**
 * [opts.defaultMetrics=true] Node.js process metrics too.
 * [opts.worker=false] A data-plane worker's registry: without PRIMARY_OWNED_METRICS (the objects exist, unexported).
 */
export function createMetrics(version: string, opts: { defaultMetrics?: boolean; worker?: boolean } = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const base: Omit<Metrics, 'deferred'> = {
    registry,
    connectionsActive: new Gauge({
      name: 'wsgate_connections_active',
      help: 'Open proxied connections (WebSocket/HTTP upgrade tunnels at l7, TCP tunnels at l4).',
      labelNames: ['route', 'layer'],
      registers,
    }),
    connectionsTotal: new Counter({
      name: 'wsgate_connections_total',
      help: 'Connections that ended, by how they ended.',
      labelNames: ['route', 'layer', 'outcome'],
      registers,
    }),
    tunnelBytes: new Counter({
      name: 'wsgate_tunnel_bytes_total',
      help: 'Bytes relayed through tunnels; upstream = client to backend, downstream = backend to client.',
      labelNames: ['route', 'direction'],
      registers,
    }),
    connectionDuration: new Histogram({
      name: 'wsgate_connection_duration_seconds',
      help: 'Lifetime of finished tunnels.',
      labelNames: ['route', 'layer'],
      buckets: DURATION_BUCKETS,
      registers,
    }),
    handshakeDuration: new Histogram({
      name: 'wsgate_handshake_duration_seconds',
      help: 'From request head received to the backend 101 relayed to the client.',
      labelNames: ['route'],
      buckets: HANDSHAKE_BUCKETS,
      registers,
    }),
    handshakeRejections: new Counter({
      name: 'wsgate_handshake_rejections_total',
      help: 'WebSocket handshakes and L4 connections refused by wsgate, by reason.',
      labelNames: ['route', 'reason'],
      registers,
    }),
    upstreamConnectErrors: new Counter({
      name: 'wsgate_upstream_connect_errors_total',
      help: 'Failed TCP connects to backend endpoints, by reason (refused, reset, timeout, unreachable, other).',
      labelNames: ['route', 'reason'],
      registers,
    }),
    httpRequests: new Counter({
      name: 'wsgate_http_requests_total',
      help: 'Plain HTTP requests proxied, by response status code.',
      labelNames: ['route', 'code'],
      registers,
    }),
    configReloads: new Counter({
      name: 'wsgate_config_reloads_total',
      help: 'Configuration reloads, by result (success, failure).',
      labelNames: ['result'],
      registers,
    }),
    configLastReloadSuccessful: new Gauge({
      name: 'wsgate_config_last_reload_successful',
      help: 'Whether the last configuration reload succeeded (1) or was rejected (0), as Prometheus exports for itself.',
      // One failing process is one too many.
      aggregator: 'min',
      registers,
    }),
    configLastReloadSuccess: new Gauge({
      name: 'wsgate_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last successful configuration reload.',
      aggregator: 'max',
      registers,
    }),
    routes: new Gauge({
      name: 'wsgate_routes',
      help: 'Routes in the live table, by kind (http, tunnel).',
      labelNames: ['kind'],
      // Every worker holds the same table: across processes this is one value, not a sum.
      aggregator: 'max',
      registers,
    }),
    buildInfo: new Gauge({
      name: 'wsgate_build_info',
      help: 'Always 1; the version label says which wsgate is running.',
      labelNames: ['version'],
      aggregator: 'first',
      registers,
    }),
    controllerWatchErrors: new Counter({
      name: 'wsgate_controller_watch_errors_total',
      help: 'Failed lists and watches of the Kubernetes API, by kind; each restarts that informer after a backoff.',
      labelNames: ['kind'],
      registers,
    }),
    controllerEvents: new Counter({
      name: 'wsgate_controller_events_total',
      help: 'Object changes seen by the controller, by kind and relevance (relevant="false" triggers no sync).',
      labelNames: ['kind', 'relevant'],
      registers,
    }),
    controllerSyncSeconds: new Histogram({
      name: 'wsgate_controller_sync_seconds',
      help: 'Duration of one controller sync: snapshot, translate, apply the routing table.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    leader: new Gauge({
      name: 'wsgate_leader',
      help: '1 while this process holds the leader Lease and writes status, else 0.',
      registers,
    }),
    certificateExpiry: new Gauge({
      name: 'wsgate_certificate_expiry_timestamp_seconds',
      help: 'Unix time after which each served certificate (by Secret namespace/name) is no longer valid (notAfter).',
      labelNames: ['secret'],
      // Every worker serves the same certificates: across processes this is one value, not a sum.
      aggregator: 'min',
      registers,
    }),
    routeMaxConnections: new Gauge({
      name: 'wsgate_route_max_connections',
      help: 'Configured maxConnections of a route (the sum over its rules), per pod; absent when unlimited.',
      labelNames: ['route', 'layer'],
      // Limits hold per pod (the primary holds the count for its workers): every worker reports the same value.
      aggregator: 'max',
      registers,
    }),
    httpUpstreamTimeouts: new Counter({
      name: 'wsgate_http_upstream_timeouts_total',
      help: 'Plain HTTP exchanges ended by a timeout: response_header (no response head in time, 504) or idle.',
      labelNames: ['route', 'phase'],
      registers,
    }),
    wsMessages: new Counter({
      name: 'wsgate_ws_messages_total',
      help: 'WebSocket messages relayed, by direction (upstream = client to backend); counted at their first frame.',
      labelNames: ['route', 'direction'],
      registers,
    }),
    wsFrames: new Counter({
      name: 'wsgate_ws_frames_total',
      help: "WebSocket frames on the wire, by direction and kind (data, ping, pong, close): relayed ones and wsgate's own pings and close frames.",
      labelNames: ['route', 'direction', 'kind'],
      registers,
    }),
    wsCloses: new Counter({
      name: 'wsgate_ws_closes_total',
      help: 'WebSocket tunnels that ended, by who sent the first close frame (client, backend, wsgate, none) and its code (1000, 1001, 1002, 1006 = no close frame, 1008, 1009, 1011, 4xxx, other).',
      labelNames: ['route', 'initiator', 'code'],
      registers,
    }),
    wsKeepaliveTimeouts: new Counter({
      name: 'wsgate_ws_keepalive_timeouts_total',
      help: 'Peers that did not answer a keepalive ping in time (the tunnel was closed), by side.',
      labelNames: ['route', 'side'],
      registers,
    }),
    wsLimitCloses: new Counter({
      name: 'wsgate_ws_limit_closes_total',
      help: 'WebSocket tunnels closed for a limit: message_size (1009) or message_rate (1008).',
      labelNames: ['route', 'limit'],
      registers,
    }),
    wsThrottledSeconds: new Counter({
      name: 'wsgate_ws_throttled_seconds_total',
      help: 'Time clients spent throttled by maxMessagesPerSecond (nothing read from them, nothing dropped).',
      labelNames: ['route'],
      registers,
    }),
    wsProtocolErrors: new Counter({
      name: 'wsgate_ws_protocol_errors_total',
      help: 'RFC 6455 violations seen in WebSocket tunnels, by reason.',
      labelNames: ['route', 'reason'],
      registers,
    }),
    drainRemaining: new Gauge({
      name: 'wsgate_drain_remaining',
      help: 'While wsgate drains on shutdown: tunnels still open (their 1001s are spread over --drain-timeout).',
      registers,
    }),
    rebalanceCloses: new Counter({
      name: 'wsgate_rebalance_closes_total',
      help: 'Tunnels closed (1012) to even out live connections across the endpoints of a route with rebalance.enabled.',
      labelNames: ['route'],
      registers,
    }),
    // Read at scrape time from the relay's own counts: nothing on the data path. With --workers, summed over them.
    nativeRelayTunnels: new Gauge({
      name: 'wsgate_native_relay_tunnels',
      help: 'Tunnels on the native relay now (L4 tunnels, and WebSockets whose route does not inspect frames), spliced in the kernel.',
      registers,
      collect() {
        this.set(nativeTunnels());
      },
    }),
    nativeRelayPipes: new Gauge({
      name: 'wsgate_native_relay_pipes',
      help: "The native relay's kernel pipes (two descriptors each), by state: pooled (kept for reuse) or in_use (holding bytes of a busy direction).",
      labelNames: ['state'],
      registers,
      collect() {
        const pipes = nativePipes();
        this.set({ state: 'pooled' }, pipes.pooled);
        this.set({ state: 'in_use' }, pipes.inUse);
      },
    }),
    logLinesSuppressed: new Counter({
      name: 'wsgate_log_lines_suppressed_total',
      help: 'Log lines not written because their kind exceeded its rate limit, by message.',
      labelNames: ['message'],
      registers,
    }),
  };
  const deferred = Object.fromEntries(DEFERRED.map((name) => [name, new Deferred(base[name])])) as unknown as DeferredMetrics;
  const m: Metrics = Object.assign(base, { deferred });
  m.buildInfo.set({ version }, 1);
  m.leader.set(0);
  m.configReloads.inc({ result: 'success' }, 0);
  m.configReloads.inc({ result: 'failure' }, 0);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'wsgate_' });
  if (opts.worker === true) for (const name of PRIMARY_OWNED_METRICS) registry.removeSingleMetric(name);
  return m;
}

/**
 * Sets wsgate_certificate_expiry_timestamp_seconds to exactly the certificates served now: series of certificates
 * no longer served disappear. A Secret listed twice reports its earliest notAfter.
 */
export function setCertificateExpiries(m: Metrics, expiries: readonly { secret: string; notAfter: Date }[]): void {
  const earliest = new Map<string, number>();
  for (const e of expiries) {
    const t = e.notAfter.getTime() / 1000;
    earliest.set(e.secret, Math.min(t, earliest.get(e.secret) ?? Infinity));
  }
  // reset() and the sets below run in one turn of the event loop: no scrape sees the gauge empty.
  m.certificateExpiry.reset();
  for (const [secret, t] of earliest) m.certificateExpiry.set({ secret }, t);
}

/**
 * Sets wsgate_route_max_connections from the table's policies. Connections are counted by route label
 * (`namespace/name`) and layer, while limits apply per rule, so a route's limit is the sum over its rules, and a
 * route with any unlimited rule (maxConnections 0) has no limit and no series.
 */
export function setRouteMaxConnections(m: Metrics, table: RoutingTable): void {
  const limits = new Map<string, { route: string; layer: Layer; max: number }>();
  const add = (route: string, layer: Layer, max: number): void => {
    const key = `${layer}\0${route}`;
    const cur = limits.get(key) ?? { route, layer, max: 0 };
    // NaN marks "unlimited": it absorbs every later sum.
    limits.set(key, { route, layer, max: max > 0 ? cur.max + max : NaN });
  };
  // A rule serving several hostnames appears once per host: count it once.
  const seen = new Set<string>();
  for (const vh of table.virtualHosts) {
    for (const r of vh.routes) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      add(r.route, 'l7', r.policy.maxConnections);
    }
  }
  for (const t of table.tunnels) add(t.route, 'l4', t.maxConnections);
  m.routeMaxConnections.reset();
  for (const l of limits.values()) {
    if (!Number.isNaN(l.max)) m.routeMaxConnections.set({ route: l.route, layer: l.layer }, l.max);
  }
}

/**
 * Removes every series labelled with a route for which `gone` is true, from every route-labelled metric. Used when
 * routes leave the table, so that their series do not accumulate forever.
 */
export async function removeRouteSeries(m: Metrics, gone: (route: string) => boolean): Promise<void> {
  // What the gone routes' tunnels counted is added first (get() below applies it), then their series are forgotten.
  for (const d of Object.values(m.deferred) as Deferred<string>[]) d.apply();
  for (const d of Object.values(m.deferred) as Deferred<string>[]) d.forget(gone);
  const routeMetrics = [
    m.connectionsActive,
    m.connectionsTotal,
    m.tunnelBytes,
    m.connectionDuration,
    m.handshakeDuration,
    m.handshakeRejections,
    m.upstreamConnectErrors,
    m.httpRequests,
    m.routeMaxConnections,
    m.httpUpstreamTimeouts,
    m.wsMessages,
    m.wsFrames,
    m.wsCloses,
    m.wsKeepaliveTimeouts,
    m.wsLimitCloses,
    m.wsThrottledSeconds,
    m.wsProtocolErrors,
    m.rebalanceCloses,
  ] as const;
  for (const metric of routeMetrics) {
    const { values } = await metric.get();
    const seen = new Set<string>();
    for (const v of values) {
      const all = v.labels as Record<string, string | number | undefined>;
      const route = all['route'];
      if (typeof route !== 'string' || !gone(route)) continue;
      // A histogram's samples carry `le`; the series is the labels without it.
      const labels: Record<string, string | number> = {};
      for (const [k, val] of Object.entries(all)) if (k !== 'le' && val !== undefined) labels[k] = val;
      const key = JSON.stringify(labels);
      if (seen.has(key)) continue;
      seen.add(key);
      (metric as { remove(labels: Record<string, string | number>): void }).remove(labels);
    }
  }
}
