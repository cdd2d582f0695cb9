// The wsgate Grafana dashboard, as code: rows of panels whose queries use only metrics wsgate exports (README
// "Metrics"; test/observability checks every name against a running wsgate and runs every query in Prometheus).
// `node scripts/dashboard/gen.ts` writes it to charts/wsgate/dashboards/ and deploy/dashboards/.
//
// Built for long-lived connections: a WebSocket is one request that lives for hours, so the panels watch what is
// open (connections, bytes, limits) and how connections end, more than request rates.
import { datasourceVariable, labelVariable, layout, SCHEMA_VERSION, type PanelSpec, type RowSpec } from './grafana.ts';

/** The label matcher of the `route` variable (a regex: `All` is `.*`, several routes are `(a|b)`). */
const R = 'route=~"$route"';
const RATE = '[$__rate_interval]';

const DAY = 86_400;

function quantiles(histogram: string, selector: string, by = ''): PanelSpec['queries'] {
  const grouping = by === '' ? 'le' : `le, ${by}`;
  return [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${grouping}) (rate(${histogram}_bucket{${selector}}${RATE})))`,
    legend: `p${Math.round(q * 100)}${by === '' ? '' : ` {{${by}}}`}`,
  }));
}

const overview: RowSpec = {
  title: 'Overview',
  panels: [
    {
      kind: 'stat',
      title: 'Open connections',
      description: 'Tunnels open now (WebSockets and other upgrades at l7, TCP tunnels at l4), over every instance.',
      queries: [{ expr: `sum(wsgate_connections_active{${R}})` }],
      unit: 'short',
      width: 4,
    },
    {
      kind: 'stat',
      title: 'Handshakes completed',
      description: 'L7 handshakes relayed to the client per second (the backend answered 101).',
      queries: [{ expr: `sum(rate(wsgate_handshake_duration_seconds_count{${R}}${RATE}))` }],
      unit: 'ops',
      width: 4,
    },
    {
      kind: 'stat',
      title: 'Throughput',
      description: 'Bytes relayed through tunnels per second, both directions.',
      queries: [{ expr: `sum(rate(wsgate_tunnel_bytes_total{${R}}${RATE}))` }],
      unit: 'Bps',
      width: 4,
    },
    {
      kind: 'stat',
      title: 'Rejections',
      description: 'Handshakes and L4 connections refused by wsgate per second (by reason below).',
      queries: [{ expr: `sum(rate(wsgate_handshake_rejections_total{${R}}${RATE}))` }],
      unit: 'ops',
      width: 4,
      thresholds: [
        { color: 'green', value: null },
        { color: 'orange', value: 1 },
      ],
    },
    {
      kind: 'stat',
      title: 'Instances with a live table',
      description:
        'wsgate processes Prometheus scrapes that have applied a routing table (wsgate_routes is set by the first ' +
        'apply). Zero fires the WsgateNoReadyInstance alert.',
      queries: [{ expr: 'count(wsgate_routes{kind="http"})' }],
      unit: 'short',
      width: 4,
      thresholds: [
        { color: 'red', value: null },
        { color: 'green', value: 1 },
      ],
    },
    {
      kind: 'stat',
      title: 'Versions',
      description: 'Instances by wsgate version: more than one during a rollout.',
      queries: [{ expr: 'count by (version) (wsgate_build_info)', legend: '{{version}}' }],
      unit: 'short',
      width: 4,
    },
  ],
};

const connections: RowSpec = {
  title: 'Connections',
  panels: [
    {
      kind: 'timeseries',
      title: 'Open connections by route and layer',
      description: 'wsgate_connections_active: tunnels open now, stacked by route and layer (l7 upgrades, l4 TCP).',
      queries: [{ expr: `sum by (route, layer) (wsgate_connections_active{${R}})`, legend: '{{route}} ({{layer}})' }],
      unit: 'short',
      width: 12,
      stack: true,
    },
    {
      kind: 'timeseries',
      title: 'Connections opened and closed per second',
      description:
        'Closed: wsgate_connections_total by outcome (rejected = refused before becoming a tunnel). Opened is ' +
        'derived: tunnels closed plus the change in open tunnels.',
      queries: [
        {
          expr:
            `clamp_min(sum by (layer) (rate(wsgate_connections_total{${R}, outcome!="rejected"}${RATE}))` +
            ` + sum by (layer) (deriv(wsgate_connections_active{${R}}${RATE})), 0)`,
          legend: 'opened ({{layer}})',
        },
        { expr: `sum by (outcome) (rate(wsgate_connections_total{${R}}${RATE}))`, legend: 'closed: {{outcome}}' },
      ],
      unit: 'ops',
      width: 12,
    },
    {
      kind: 'timeseries',
      title: 'Duration of finished connections',
      description:
        'Percentiles of wsgate_connection_duration_seconds over connections that ended in the interval (buckets ' +
        'from 10 ms to a day). Long-lived connections show up when they end, not while they are open.',
      queries: quantiles('wsgate_connection_duration_seconds', R),
      unit: 's',
      width: 12,
    },
    {
      kind: 'timeseries',
      title: 'Open connections against the route limit',
      description:
        'wsgate_connections_active / wsgate_route_max_connections per instance: only routes with maxConnections ' +
        'set. Limits count per pod (all its workers together); 100% means new connections get 429.',
      queries: [
        {
          expr: `max by (route, layer) (wsgate_connections_active{${R}} / wsgate_route_max_connections{${R}})`,
          legend: '{{route}} ({{layer}})',
        },
      ],
      unit: 'percentunit',
      width: 12,
      thresholds: [
        { color: 'green', value: null },
        { color: 'red', value: 0.9 },
      ],
    },
  ],
};

const traffic: RowSpec = {
  title: 'Traffic',
  panels: [
    {
      kind: 'timeseries',
      title: 'Tunnel throughput by direction',
      description: 'wsgate_tunnel_bytes_total: upstream = client to backend, downstream = backend to client.',
      queries: [{ expr: `sum by (direction) (rate(wsgate_tunnel_bytes_total{${R}}${RATE}))`, legend: '{{direction}}' }],
      unit: 'Bps',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Throughput of the busiest routes',
      description: 'The ten routes relaying the most bytes, both directions.',
      queries: [{ expr: `topk(10, sum by (route) (rate(wsgate_tunnel_bytes_total{${R}}${RATE})))`, legend: '{{route}}' }],
      unit: 'Bps',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Plain HTTP requests by status',
      description: 'wsgate_http_requests_total: requests that were not upgrades, by response status.',
      queries: [{ expr: `sum by (code) (rate(wsgate_http_requests_total{${R}}${RATE}))`, legend: '{{code}}' }],
      unit: 'reqps',
      width: 8,
    },
  ],
};

const handshakes: RowSpec = {
  title: 'Handshakes and backends',
  panels: [
    {
      kind: 'timeseries',
      title: 'Handshake latency',
      description: 'wsgate_handshake_duration_seconds: request head received to the backend 101 relayed.',
      queries: quantiles('wsgate_handshake_duration_seconds', R),
      unit: 's',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Handshake rejections by reason',
      description:
        'wsgate_handshake_rejections_total: no_route (404), origin_not_allowed (403), over_limit (429), ' +
        'no_endpoint (503), upstream_refused (502), upstream_timeout (504), ... (README, "WebSocket handshakes").',
      queries: [{ expr: `sum by (reason) (rate(wsgate_handshake_rejections_total{${R}}${RATE}))`, legend: '{{reason}}' }],
      unit: 'ops',
      width: 8,
      stack: true,
    },
    {
      kind: 'timeseries',
      title: 'Upstream connect errors',
      description: 'wsgate_upstream_connect_errors_total: failed TCP connects to backend endpoints, by route and reason.',
      queries: [
        {
          expr: `sum by (route, reason) (rate(wsgate_upstream_connect_errors_total{${R}}${RATE}))`,
          legend: '{{route}}: {{reason}}',
        },
      ],
      unit: 'ops',
      width: 8,
    },
  ],
};

const websockets: RowSpec = {
  title: 'WebSocket messages and closes',
  panels: [
    {
      kind: 'timeseries',
      title: 'Messages per second by route',
      description:
        'wsgate_ws_messages_total: WebSocket messages relayed (a fragmented message counts once), by route and ' +
        'direction (upstream = client to backend). Only routes that inspect frames (inspectFrames, the default).',
      queries: [
        { expr: `sum by (route, direction) (rate(wsgate_ws_messages_total{${R}}${RATE}))`, legend: '{{route}} {{direction}}' },
      ],
      unit: 'ops',
      width: 12,
    },
    {
      kind: 'timeseries',
      title: 'Close codes over time',
      description:
        'wsgate_ws_closes_total: WebSocket tunnels ended per second, by the code of the first close frame and who ' +
        'sent it (client, backend, wsgate; none = no close frame, shown as 1006). 1001 from wsgate: idle timeout, ' +
        'dead peer or drain; 1002: protocol error; 1008: message rate; 1009: message size.',
      queries: [
        { expr: `sum by (code, initiator) (rate(wsgate_ws_closes_total{${R}}${RATE}))`, legend: '{{code}} by {{initiator}}' },
      ],
      unit: 'ops',
      width: 12,
      stack: true,
    },
    {
      kind: 'timeseries',
      title: 'Dead peers and limit closes',
      description:
        'Tunnels closed because a peer did not answer keepalive pings (wsgate_ws_keepalive_timeouts_total, by side), ' +
        'or for a message limit (wsgate_ws_limit_closes_total: message_size = 1009, message_rate = 1008). A rise in ' +
        'dead clients is a network or client problem (WsgateDeadPeersAboveUsual).',
      queries: [
        { expr: `sum by (route, side) (increase(wsgate_ws_keepalive_timeouts_total{${R}}${RATE}))`, legend: 'dead {{side}}: {{route}}' },
        { expr: `sum by (route, limit) (increase(wsgate_ws_limit_closes_total{${R}}${RATE}))`, legend: '{{limit}}: {{route}}' },
      ],
      unit: 'short',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Frames per second by kind',
      description:
        'wsgate_ws_frames_total by kind and direction: data frames, and control frames (ping, pong, close), ' +
        "including wsgate's own keepalive pings and the pongs that answer them.",
      queries: [
        { expr: `sum by (kind, direction) (rate(wsgate_ws_frames_total{${R}}${RATE}))`, legend: '{{kind}} {{direction}}' },
      ],
      unit: 'ops',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Throttling and protocol errors',
      description:
        'Throttled: wsgate_ws_throttled_seconds_total per second, i.e. how many clients were held back by ' +
        'maxMessagesPerSecond on average (nothing is dropped). Protocol errors: RFC 6455 violations by reason ' +
        '(1002/1007 closes with strict, counted only with strict: false).',
      queries: [
        { expr: `sum by (route) (rate(wsgate_ws_throttled_seconds_total{${R}}${RATE}))`, legend: 'throttled: {{route}}' },
        { expr: `sum by (reason) (increase(wsgate_ws_protocol_errors_total{${R}}${RATE}))`, legend: 'protocol error: {{reason}}' },
      ],
      unit: 'short',
      width: 8,
    },
  ],
};

const configuration: RowSpec = {
  title: 'Configuration and controller',
  panels: [
    {
      kind: 'timeseries',
      title: 'Configuration reloads',
      description:
        'wsgate serve: reloads of the configuration files by result. A failure keeps the last good configuration ' +
        'serving (the log says why).',
      queries: [{ expr: 'sum by (result) (increase(wsgate_config_reloads_total[$__rate_interval]))', legend: '{{result}}' }],
      unit: 'short',
      width: 8,
    },
    {
      kind: 'stat',
      title: 'Last successful reload',
      description: 'wsgate serve: the most recent successful configuration reload on any instance.',
      queries: [{ expr: 'max(wsgate_config_last_reload_success_timestamp_seconds) * 1000' }],
      unit: 'dateTimeFromNow',
      width: 4,
      height: 8,
    },
    {
      kind: 'stat',
      title: 'Routes',
      description: 'wsgate_routes: route rules (http) and TCP tunnels in the live table.',
      queries: [{ expr: 'max by (kind) (wsgate_routes)', legend: '{{kind}}' }],
      unit: 'short',
      width: 4,
      height: 8,
    },
    {
      kind: 'timeseries',
      title: 'Leader',
      description: 'wsgate_leader: 1 on the controller replica holding the leader Lease (it writes status). Exactly one should.',
      queries: [{ expr: 'max by (instance) (wsgate_leader)', legend: '{{instance}}' }],
      unit: 'short',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Controller syncs',
      description: 'wsgate_controller_sync_seconds: syncs per second (snapshot, translate, apply) and their p99 duration.',
      queries: [
        { expr: 'sum(rate(wsgate_controller_sync_seconds_count[$__rate_interval]))', legend: 'syncs per second' },
        {
          expr: 'histogram_quantile(0.99, sum by (le) (rate(wsgate_controller_sync_seconds_bucket[$__rate_interval])))',
          legend: 'p99 seconds',
        },
      ],
      unit: 'short',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Controller watch errors',
      description:
        'wsgate_controller_watch_errors_total: failed lists and watches by kind; each restarts that informer ' +
        'after a backoff. A steady rate means the controller is not seeing changes.',
      queries: [
        { expr: 'sum by (kind) (increase(wsgate_controller_watch_errors_total[$__rate_interval]))', legend: '{{kind}}' },
      ],
      unit: 'short',
      width: 8,
    },
    {
      kind: 'timeseries',
      title: 'Controller events',
      description: 'wsgate_controller_events_total: object changes seen, by kind and whether they could change the table.',
      queries: [
        {
          expr: 'sum by (kind, relevant) (rate(wsgate_controller_events_total[$__rate_interval]))',
          legend: '{{kind}} relevant={{relevant}}',
        },
      ],
      unit: 'ops',
      width: 8,
    },
    {
      kind: 'bargauge',
      title: 'Certificate expiry',
      description:
        'Time left before each served certificate (by Secret) expires: wsgate_certificate_expiry_timestamp_seconds. ' +
        'Orange under 14 days (WsgateCertificateExpiringSoon), red under 3 days.',
      queries: [
        {
          expr: 'min by (secret) (wsgate_certificate_expiry_timestamp_seconds) - time()',
          legend: '{{secret}}',
          instant: true,
        },
      ],
      unit: 's',
      width: 24,
      height: 6,
      thresholds: [
        { color: 'red', value: null },
        { color: 'orange', value: 3 * DAY },
        { color: 'green', value: 14 * DAY },
      ],
    },
  ],
};

const processRow: RowSpec = {
  title: 'Process',
  panels: [
    {
      kind: 'timeseries',
      title: 'CPU',
      description: 'wsgate_process_cpu_seconds_total: CPU time per second (1 = one core), per instance.',
      queries: [{ expr: 'sum by (instance) (rate(wsgate_process_cpu_seconds_total[$__rate_interval]))', legend: '{{instance}}' }],
      unit: 'percentunit',
      width: 6,
    },
    {
      kind: 'timeseries',
      title: 'Memory',
      description: 'Resident memory and V8 heap in use, per instance. Idle connections cost memory, not CPU.',
      queries: [
        { expr: 'sum by (instance) (wsgate_process_resident_memory_bytes)', legend: '{{instance}} resident' },
        { expr: 'sum by (instance) (wsgate_nodejs_heap_size_used_bytes)', legend: '{{instance}} heap used' },
      ],
      unit: 'bytes',
      width: 6,
    },
    {
      kind: 'timeseries',
      title: 'Open file descriptors',
      description: 'Every tunnel holds two sockets; the limit is the process maximum.',
      queries: [
        { expr: 'sum by (instance) (wsgate_process_open_fds)', legend: '{{instance}} open' },
        { expr: 'max by (instance) (wsgate_process_max_fds)', legend: '{{instance}} max' },
      ],
      unit: 'short',
      width: 6,
    },
    {
      kind: 'timeseries',
      title: 'Event loop lag',
      description: 'wsgate_nodejs_eventloop_lag_p99_seconds: a busy event loop delays every connection of the process.',
      queries: [{ expr: 'max by (instance) (wsgate_nodejs_eventloop_lag_p99_seconds)', legend: '{{instance}} p99' }],
      unit: 's',
      width: 6,
    },
  ],
};

/** The closes wsgate makes on purpose, spread over time (issue 11): their outcomes (src/proxy/outcomes.ts). */
const DRAIN_OUTCOMES = 'shutdown|endpoint_draining|route_removed|rebalance';

const drains: RowSpec = {
  title: 'Drains and rebalancing',
  panels: [
    {
      kind: 'timeseries',
      title: 'Drain and rebalance closes',
      description:
        'Tunnels wsgate closed on purpose, per second, by reason: shutdown (SIGTERM, 1001s spread over ' +
        '--drain-timeout), endpoint_draining (an endpoint turned terminating or not ready: over endpointDrainSeconds), ' +
        'route_removed (onRemoval Close: over graceSeconds), rebalance (1012s after a scale-out). A flat line at the ' +
        'window\'s rate is a drain spread as meant; a spike is every client reconnecting at once (docs/draining.md).',
      queries: [
        {
          expr: `sum by (outcome) (rate(wsgate_connections_total{${R}, outcome=~"${DRAIN_OUTCOMES}"}${RATE}))`,
          legend: '{{outcome}}',
        },
      ],
      unit: 'ops',
      width: 12,
      stack: true,
    },
    {
      kind: 'timeseries',
      title: 'Drain remaining',
      description:
        'wsgate_drain_remaining: while an instance drains on shutdown, the tunnels it still holds. It falls ' +
        'steadily to 0 over --drain-timeout; what is left at the end is cut (clients see 1006).',
      queries: [{ expr: 'sum by (instance) (wsgate_drain_remaining)', legend: '{{instance}}' }],
      unit: 'short',
      width: 6,
    },
    {
      kind: 'timeseries',
      title: 'Rebalance closes',
      description:
        'wsgate_rebalance_closes_total: tunnels moved off endpoints above their share (rebalance.enabled), per ' +
        'second, by route. At most maxClosesPerSecond per route and instance; it stops once the spread is within ' +
        'tolerancePercent.',
      queries: [{ expr: `sum by (route) (rate(wsgate_rebalance_closes_total{${R}}${RATE}))`, legend: '{{route}}' }],
      unit: 'ops',
      width: 6,
    },
  ],
};

export function buildDashboard(): Record<string, unknown> {
  return {
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ],
    },
    description: 'wsgate: open connections, how they end, bytes, WebSocket messages and closes, handshakes, configuration, controller and process.',
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [],
    panels: layout([overview, connections, traffic, websockets, handshakes, configuration, processRow, drains]),
    refresh: '30s',
    schemaVersion: SCHEMA_VERSION,
    tags: ['wsgate', 'websocket', 'ingress'],
    templating: {
      list: [datasourceVariable(), labelVariable('route', 'Route', 'wsgate_connections_active')],
    },
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: '',
    title: 'wsgate',
    uid: 'wsgate',
    version: 1,
    weekStart: '',
  };
}
