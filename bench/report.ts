// One table: a row per figure, a column per target (direct, wsgate, wsgate-pipe, wsgate-js, node-min, node-raw, nginx, haproxy), the ratios of
// wsgate to each peer, and the issue's target for the figures that have one. Then issue 10's budget for frame
// tracking: wsgate (frames tracked) against the same route as a byte pipe (inspectFrames: false) on the JavaScript
// relay (wsgate-js) and on the native one (wsgate-pipe), in the same run.
import { median } from './measure.ts';
import type { TargetName } from './proxies.ts';

/** Figures of one target in one round (NaN where it does not apply, e.g. proxy CPU for `direct`). */
export interface Figures {
  echo64Rate: number;
  echo64CpuUs: number;
  echo64Busy: number;
  /** CPU of the load generator + backend as % of one core, and how busy their core was with every process on it. */
  echo64LoadBusy: number;
  echo64LoadCoreBusy: number;
  sessionLoadBusy: number;
  echo16kRate: number;
  echo16kCpuUs: number;
  echo16kBusy: number;
  latencyP50Us: number;
  latencyP99Us: number;
  sessionRate: number;
  sessionCpuUs: number;
  sessionBusy: number;
  idleBytesPerConn: number;
  idleAlive: number;
  idleHeld: number;
  l4MBps: number;
  l4CpuMsPerGB: number;
  l4Busy: number;
  /** RSS of the proxy's processes, idle after the warm-up (sum over its processes), and the private part (RssAnon). */
  idleRssMB: number;
  idlePrivateMB: number;
  idleProcesses: number;
  /** RSS growth per connection while clients flood 64 KiB messages and never read (issue 9, item 21). */
  slowReaderKBPerConn: number;
}

export type FigureKey = keyof Figures;

interface Row {
  readonly key: FigureKey;
  readonly label: string;
  readonly digits: number;
  /** The issue's target: subject (default wsgate) ÷ peer must be ≤ max. */
  readonly target?: { readonly subject?: TargetName; readonly peer: TargetName; readonly max: number };
}

export const ROWS: readonly Row[] = [
  { key: 'echo64Rate', label: '64 conns × 64 B echo: messages/s', digits: 0 },
  // Issue 13: the byte pipe (frames not tracked) at most the minimal Node proxy's cost per message.
  { key: 'echo64CpuUs', label: '  proxy CPU µs / message', digits: 2, target: { subject: 'wsgate-pipe', peer: 'node-min', max: 1 } },
  { key: 'echo64Busy', label: '  proxy core busy %', digits: 0 },
  { key: 'echo64LoadBusy', label: '  load + backend CPU % (their core, all processes %)', digits: 0 },
  { key: 'echo16kRate', label: '16 conns × 16 KiB echo: messages/s', digits: 0 },
  { key: 'echo16kCpuUs', label: '  proxy CPU µs / message', digits: 2, target: { subject: 'wsgate-pipe', peer: 'node-min', max: 1 } },
  { key: 'echo16kBusy', label: '  proxy core busy %', digits: 0 },
  { key: 'latencyP50Us', label: '1 conn × 64 B: round trip p50 µs', digits: 0, target: { peer: 'nginx', max: 1 } },
  { key: 'latencyP99Us', label: '  round trip p99 µs', digits: 0, target: { peer: 'nginx', max: 1 } },
  { key: 'sessionRate', label: 'sessions/s (connect, handshake, echo, close)', digits: 0 },
  // Issue 13: ≤ 2 × nginx (on the way to 1.2 ×).
  { key: 'sessionCpuUs', label: '  proxy CPU µs / session', digits: 1, target: { peer: 'nginx', max: 2 } },
  { key: 'sessionBusy', label: '  proxy core busy %', digits: 0 },
  { key: 'sessionLoadBusy', label: '  load + backend CPU %', digits: 0 },
  { key: 'idleBytesPerConn', label: 'idle: proxy RSS KB / connection', digits: 2, target: { peer: 'haproxy', max: 1 } },
  { key: 'idleAlive', label: '  held connections alive at the end', digits: 0 },
  { key: 'l4MBps', label: 'L4 tunnel: MB/s', digits: 0 },
  { key: 'l4CpuMsPerGB', label: '  proxy CPU ms / GB', digits: 0, target: { peer: 'haproxy', max: 1 } },
  { key: 'l4Busy', label: '  proxy core busy %', digits: 0 },
  { key: 'idleRssMB', label: 'idle process, no connections: RSS MB (all its processes)', digits: 1 },
  { key: 'idlePrivateMB', label: '  of which private (RssAnon) MB', digits: 1 },
  { key: 'idleProcesses', label: '  processes', digits: 0 },
  { key: 'slowReaderKBPerConn', label: '20 clients flooding 64 KiB, never reading: RSS growth KB / connection', digits: 0 },
];

export interface Summary {
  readonly targets: readonly TargetName[];
  /** Median over rounds, per target. */
  readonly medians: Partial<Record<TargetName, Figures>>;
  /** Each round's figures, per target (for the per-round ratios of rows with a target). */
  readonly byRound?: readonly Partial<Record<TargetName, Figures>>[];
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(a: number | undefined, b: number | undefined): number {
  return a !== undefined && b !== undefined && b !== 0 ? a / b : NaN;
}

/**
 * The median over rounds of each round's subject ÷ peer. A round runs the targets back to back, so a slow phase of
 * the host (this VM's session cost moves by 2× between rounds) weighs on both sides of one ratio; the ratio of the
 * medians can pair one target's good round with the other's bad one.
 */
export function medianRoundRatio(byRound: Summary['byRound'], key: FigureKey, subject: TargetName, peer: TargetName): number {
  return median((byRound ?? []).map((r) => ratio(r[subject]?.[key], r[peer]?.[key])));
}

export function renderTable(s: Summary, heldTarget: number): string {
  const cols = ['figure', ...s.targets, 'wsgate/nginx', 'wsgate/haproxy', 'per-round ratio (median)', 'issue target'];
  const lines: string[][] = [];
  for (const row of ROWS) {
    const cells = [row.label];
    for (const t of s.targets) {
      const f = s.medians[t];
      let v = f?.[row.key];
      if (row.key === 'idleBytesPerConn' && v !== undefined) v /= 1000;
      // (n/a for a target without the idle phase.)
      if (row.key === 'idleAlive') cells.push(Number.isFinite(v) ? `${fmt(v, 0)}/${fmt(f?.idleHeld, 0)}` : 'n/a');
      else if (row.key === 'echo64LoadBusy') cells.push(`${fmt(v, 0)} (${fmt(f?.echo64LoadCoreBusy, 0)})`);
      else cells.push(fmt(v, row.digits));
    }
    const w = s.medians.wsgate?.[row.key];
    const byPeer = { nginx: ratio(w, s.medians.nginx?.[row.key]), haproxy: ratio(w, s.medians.haproxy?.[row.key]) };
    const isRatioRow = !row.key.endsWith('Busy') && row.key !== 'idleAlive';
    cells.push(isRatioRow ? fmt(byPeer.nginx, 2) : '', isRatioRow ? fmt(byPeer.haproxy, 2) : '');
    if (row.target === undefined) cells.push('', '');
    else {
      const subject = row.target.subject ?? 'wsgate';
      // The verdict goes by the median of the per-round ratios; the ratio of medians where no round has both.
      const perRound = medianRoundRatio(s.byRound, row.key, subject, row.target.peer);
      const r = Number.isFinite(perRound) ? perRound : ratio(s.medians[subject]?.[row.key], s.medians[row.target.peer]?.[row.key]);
      cells.push(Number.isFinite(perRound) ? `${fmt(perRound, 2)} (${subject} ÷ ${row.target.peer})` : 'n/a');
      const verdict = Number.isFinite(r) ? `${r <= row.target.max ? ' met' : ' MISSED'} (${fmt(r, 2)})` : '';
      cells.push(`${subject === 'wsgate' ? '' : `${subject} `}≤ ${row.target.max} × ${row.target.peer}${verdict}`);
    }
    lines.push(cells);
  }
  const out = [`| ${cols.join(' | ')} |`, `|${cols.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const l of lines) out.push(`| ${l.join(' | ')} |`);
  out.push(
    '',
    `Idle row: ${heldTarget} connections held. Ratios are wsgate ÷ peer (lower is better for CPU, memory and latency): ` +
      'the two ratio columns divide the medians over rounds; "per-round ratio (median)" is, for rows with a target, the ' +
      "median over rounds of each round's ratio (a round runs the targets back to back, so a slow phase of the host " +
      'weighs on both sides). The target verdict uses the per-round ratio.',
  );
  return out.join('\n');
}

/** The drain row's figures: medians over rounds (bench/drain.ts). */
export interface DrainMedians {
  readonly clients: number;
  readonly windowSeconds: number;
  readonly spread: DrainMode;
  readonly atOnce: DrainMode;
}

interface DrainMode {
  readonly peakPer100ms: number;
  readonly peakPerSecond: number;
  readonly spanMs: number;
  readonly reconnections: number;
  readonly wsgatePeakPer100ms: number;
  readonly wsgatePeakPerSecond: number;
  readonly closeCodes: Readonly<Record<string, number>>;
}

/** The drain table: what the backend sees when N idle clients reconnect, spread versus all at once. */
export function renderDrainTable(d: DrainMedians): string {
  const codes = (m: DrainMode): string =>
    Object.entries(m.closeCodes)
      .map(([code, n]) => `${code} × ${n}`)
      .join(', ');
  const cols = [
    `drain: ${d.clients} idle WebSockets reconnecting to the backend`,
    `spread (--drain-timeout ${d.windowSeconds}s)`,
    'all at once (--drain-timeout 0)',
    'all at once ÷ spread',
  ];
  const rows: string[][] = [
    ['peak reconnections in 100 ms', fmt(d.spread.peakPer100ms, 0), fmt(d.atOnce.peakPer100ms, 0), fmt(ratio(d.atOnce.peakPer100ms, d.spread.peakPer100ms), 1)],
    ['peak reconnections in 1 s', fmt(d.spread.peakPerSecond, 0), fmt(d.atOnce.peakPerSecond, 0), fmt(ratio(d.atOnce.peakPerSecond, d.spread.peakPerSecond), 1)],
    ['  mean rate the window allows (N / window), per s', fmt(d.clients / d.windowSeconds, 0), 'n/a', ''],
    ["wsgate's own closes (its log): peak in 100 ms", fmt(d.spread.wsgatePeakPer100ms, 0), fmt(d.atOnce.wsgatePeakPer100ms, 0), fmt(ratio(d.atOnce.wsgatePeakPer100ms, d.spread.wsgatePeakPer100ms), 1)],
    ['  peak in 1 s', fmt(d.spread.wsgatePeakPerSecond, 0), fmt(d.atOnce.wsgatePeakPerSecond, 0), fmt(ratio(d.atOnce.wsgatePeakPerSecond, d.spread.wsgatePeakPerSecond), 1)],
    ['first to last reconnection, s', fmt(d.spread.spanMs / 1000, 1), fmt(d.atOnce.spanMs / 1000, 1), ''],
    ['clients reconnected', fmt(d.spread.reconnections, 0), fmt(d.atOnce.reconnections, 0), ''],
    ['close codes the clients saw', codes(d.spread), codes(d.atOnce), ''],
  ];
  const out = [`| ${cols.join(' | ')} |`, `|---|---:|---:|---:|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  out.push(
    '',
    "Peaks are sliding windows over the backend's handshake times (and over wsgate's close times). All at once is bounded by how fast the one load core can reconnect, not by wsgate; " +
      "on a busy machine a stall of either process bunches what follows it, which is why both peaks are shown.",
  );
  return out.join('\n');
}

/** Issue 10's budget: what tracking frames may add to the byte pipe. */
const FRAME_BUDGET = [
  { key: 'echo64CpuUs', label: 'CPU µs / 64 B message', digits: 2, maxRatio: 1.1 },
  { key: 'echo16kCpuUs', label: 'CPU µs / 16 KiB message', digits: 2, maxRatio: 1.05 },
  { key: 'idleBytesPerConn', label: 'idle RSS KB / connection', digits: 2, maxExtraKB: 0.5 },
] as const;

/**
 * The frame tracker's budget table; empty unless wsgate and a byte pipe ran. The budget is the tracker's own cost:
 * wsgate against the same route as a byte pipe on the same (JavaScript) relay, wsgate-js. A tracked tunnel cannot
 * go to the native relay, so the byte pipe where such a route runs by default (wsgate-pipe, native) is shown too:
 * what turning the tracker on costs a route in all.
 */
export function renderFrameBudget(s: Summary): string {
  const on = s.medians.wsgate;
  const offJs = s.medians['wsgate-js'];
  const offNative = s.medians['wsgate-pipe'];
  if (on === undefined || (offJs === undefined && offNative === undefined)) return '';
  const out = [
    'Frame tracking (issue 10): wsgate (frames tracked, the default, on the JavaScript relay) against the same route as a',
    'byte pipe (inspectFrames: false): on the same JavaScript relay (wsgate-js: the tracker\'s own cost, which the budget',
    'is for), and on the native relay (wsgate-pipe: where a byte pipe runs by default). Same run.',
    '',
    '| figure | frames on | off, JS relay | on − off | on ÷ off | budget | off, native relay | on − off | on ÷ off |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|',
  ];
  for (const b of FRAME_BUDGET) {
    const scale = b.key === 'idleBytesPerConn' ? 1 / 1000 : 1;
    const a = on[b.key] * scale;
    const js = (offJs?.[b.key] ?? NaN) * scale;
    const native = (offNative?.[b.key] ?? NaN) * scale;
    const r = ratio(a, js);
    const ok = 'maxRatio' in b ? r <= b.maxRatio : a - js <= b.maxExtraKB;
    const limit = 'maxRatio' in b ? `≤ +${Math.round((b.maxRatio - 1) * 100)} %` : `≤ +${b.maxExtraKB} KB`;
    const verdict = Number.isFinite(a - js) ? (ok ? ' met' : ' MISSED') : '';
    out.push(
      `| ${b.label} | ${fmt(a, b.digits)} | ${fmt(js, b.digits)} | ${fmt(a - js, b.digits)} | ${fmt(r, 3)} | ${limit}${verdict} ` +
        `| ${fmt(native, b.digits)} | ${fmt(a - native, b.digits)} | ${fmt(ratio(a, native), 3)} |`,
    );
  }
  return out.join('\n');
}
