// The scaling phase (issue 13, direction 4): wsgate with --workers 1, then --workers 2, in the same run, the same
// load, the same pinning. Per run: the idle process (RSS, processes), 64 B echo, sessions, L4; each with the proxy's
// CPU summed over all its processes (one process with --workers 1; a primary and two workers with 2), the load's
// CPU and the whole machine's, so that a reader can see which of the proxy and the load was the limit.
//
// Pinning: the proxy may run on every core, the load generators and the backend stay on core 1 as in the other
// phases. On a two-core machine a second worker can thus only take what the load leaves of core 1: the machine's
// busy time (200 % = both cores) says when that is nothing. CPU per unit is what carries over to bigger machines.
//
// A scaling figure where one worker took everything would be a lie: each run reads /debug/workers (each worker's
// live connections) while the echo and L4 connections are open, and the CPU of each process during each phase.
import type { LoadRun, LoadSpec } from './load.ts';
import { anonBytes, median, ownRssBytes, rssBytes } from './measure.ts';
import type { RunningProxy } from './proxies.ts';

export interface ScalingRun {
  readonly workers: number;
  readonly round: number;
  echo64Rate: number;
  echo64CpuUs: number;
  echo64Busy: number;
  echo64LoadBusy: number;
  echo64MachineBusy: number;
  /** Machine busy − proxy − load: other work on the machine (another user, the orchestrator), % of one core. */
  echo64OtherBusy: number;
  sessionRate: number;
  sessionCpuUs: number;
  /** The primary's share of a session (its slot IPC: acquire, answer, release); NaN with one process. */
  sessionPrimaryCpuUs: number;
  sessionBusy: number;
  sessionLoadBusy: number;
  sessionMachineBusy: number;
  sessionOtherBusy: number;
  l4MBps: number;
  l4CpuMsPerGB: number;
  l4Busy: number;
  l4LoadBusy: number;
  l4MachineBusy: number;
  l4OtherBusy: number;
  idleRssMB: number;
  idlePrivateMB: number;
  idleProcesses: number;
  /** Live connections per worker (by worker id) while the phase's connections were open. */
  echo64Conns: number[];
  l4Conns: number[];
  /** CPU per process in % of one core during the phase: the primary (with workers) first, then each worker. */
  echo64CpuSplit: number[];
  sessionCpuSplit: number[];
  l4CpuSplit: number[];
  /** Idle RSS per process in MB, in the same order. */
  idleRssSplit: number[];
}

type NumericKey = { [K in keyof ScalingRun]: ScalingRun[K] extends number ? K : never }[keyof ScalingRun];

export interface ScalingDeps {
  readonly rounds: number;
  readonly phaseMs: number;
  /** Unmeasured sessions before the sessions phase (run.ts says why). */
  readonly sessionWarmMs: number;
  readonly settleMs: number;
  /** Bytes each L4 connection asks the byte source for (the phase ends at phaseMs or when all have arrived). */
  readonly l4BytesPerConn: number;
  /** Starts wsgate with `workers` data-plane processes, on the scaling phase's CPUs. */
  startWsgate(workers: number): Promise<RunningProxy>;
  /** run.ts's runLoad: a load child, with the proxy's CPU (and per process) read around its measured part. */
  runLoad(spec: LoadSpec, pid: number | null, onReady?: () => Promise<void>): Promise<LoadRun>;
  fail(round: number, phase: string, problem: string): void;
  log(text: string): void;
}

/** Worker status as /debug/workers gives it (one entry with --workers 1: the process itself). */
interface WorkerStatus {
  readonly worker: number;
  readonly pid: number;
  readonly tunnels: number;
  readonly notReady: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function workerStatus(admin: number): Promise<WorkerStatus[]> {
  const res = await fetch(`http://127.0.0.1:${admin}/debug/workers`);
  return (await res.json()) as WorkerStatus[];
}

/**
 * The proxy answers a handshake as soon as one worker listens: wait until /readyz says every worker is ready and
 * /debug/workers lists them all, else the first worker could take the early connections alone.
 */
async function allWorkersReady(admin: number, workers: number): Promise<WorkerStatus[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) {
      const status = await workerStatus(admin).catch(() => []);
      if (status.length === workers && status.every((w) => w.notReady === null)) return status;
    }
    if (Date.now() > deadline) throw new Error(`${workers} worker(s) not ready after 30 s`);
    await sleep(100);
  }
}

/** The 64 conns × 64 B echo, the sessions and the L4 load of the scaling phase (L4: 16 connections, so that both workers get some: all 16 on one has a probability of 2^-15). */
export const SCALING_L4_CONNS = 16;

async function measureOnce(d: ScalingDeps, workers: number, round: number): Promise<ScalingRun> {
  const f: ScalingRun = {
    workers, round,
    echo64Rate: NaN, echo64CpuUs: NaN, echo64Busy: NaN, echo64LoadBusy: NaN, echo64MachineBusy: NaN, echo64OtherBusy: NaN,
    sessionRate: NaN, sessionCpuUs: NaN, sessionPrimaryCpuUs: NaN, sessionBusy: NaN, sessionLoadBusy: NaN, sessionMachineBusy: NaN, sessionOtherBusy: NaN,
    l4MBps: NaN, l4CpuMsPerGB: NaN, l4Busy: NaN, l4LoadBusy: NaN, l4MachineBusy: NaN, l4OtherBusy: NaN,
    idleRssMB: NaN, idlePrivateMB: NaN, idleProcesses: NaN,
    echo64Conns: [], l4Conns: [], echo64CpuSplit: [], sessionCpuSplit: [], l4CpuSplit: [], idleRssSplit: [],
  };
  const proxy = await d.startWsgate(workers);
  try {
    const admin = proxy.admin!;
    const pids = (await allWorkersReady(admin, workers)).map((w) => w.pid);
    // With workers, the primary is the process we started and is not among them; with one, it is the worker.
    const order = workers > 1 ? [proxy.pid, ...pids] : pids;
    const split = (l: LoadRun): number[] => order.map((p) => (100 * (l.byProcess.get(p) ?? 0)) / (l.result.elapsedMs / 1000));
    const pct = (cpu: number, l: LoadRun): number => (100 * cpu) / (l.result.elapsedMs / 1000);
    const ok = (phase: string, l: LoadRun): boolean => {
      if (l.result.errors > 0) d.fail(round, phase, `${l.result.errors} errors, first: ${l.result.firstError}`);
      else if (l.result.count <= 0) d.fail(round, phase, 'nothing completed');
      else return true;
      return false;
    };
    const tag = `wsgate --workers ${workers} r${round}`;
    // Warm-up (JIT, allocator), not measured: enough connections that every worker gets some.
    await d.runLoad({ kind: 'echo', port: proxy.ports.ws, conns: 16, size: 64, durationMs: Math.min(500, d.phaseMs), latency: false }, null);

    await sleep(d.settleMs);
    const anon = anonBytes(proxy.pid);
    f.idleRssMB = rssBytes(proxy.pid) / 1e6;
    f.idleRssSplit = order.map((p) => ownRssBytes(p) / 1e6);
    f.idlePrivateMB = anon.bytes / 1e6;
    f.idleProcesses = anon.processes;
    d.log(
      `  ${tag} idle process: ${f.idleRssMB.toFixed(1)} MB RSS (per process ${f.idleRssSplit.map((x) => x.toFixed(1)).join('/')}), ` +
        `${f.idlePrivateMB.toFixed(1)} MB private, ${anon.processes} process(es)`,
    );

    // The load child is ready once its side of each connection is up; wsgate registers an L4 tunnel only once its
    // upstream is connected. Poll (bounded) until every connection is counted.
    const connsPerWorker = async (expected: number): Promise<number[]> => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const counts = (await workerStatus(admin)).map((w) => w.tunnels);
        if (counts.reduce((a, b) => a + b, 0) >= expected || Date.now() > deadline) return counts;
        await sleep(20);
      }
    };
    const echo = await d.runLoad({ kind: 'echo', port: proxy.ports.ws, conns: 64, size: 64, durationMs: d.phaseMs, latency: false }, proxy.pid, async () => {
      f.echo64Conns = await connsPerWorker(64);
    });
    if (ok('scaling echo 64 B', echo)) {
      f.echo64Rate = echo.result.count / (echo.result.elapsedMs / 1000);
      f.echo64CpuUs = (echo.cpu * 1e6) / echo.result.count;
      f.echo64Busy = pct(echo.cpu, echo);
      f.echo64LoadBusy = pct(echo.loadCpu, echo);
      f.echo64MachineBusy = echo.machineBusy;
      f.echo64OtherBusy = Math.max(0, echo.machineBusy - f.echo64Busy - f.echo64LoadBusy);
      f.echo64CpuSplit = split(echo);
      d.log(
        `  ${tag} echo 64 B: ${f.echo64Rate.toFixed(0)} msg/s, ${f.echo64CpuUs.toFixed(2)} µs/msg, proxy ${f.echo64Busy.toFixed(0)}% ` +
          `(per process ${f.echo64CpuSplit.map((x) => x.toFixed(0)).join('/')}), load ${f.echo64LoadBusy.toFixed(0)}%, ` +
          `machine ${f.echo64MachineBusy.toFixed(0)}%; conns per worker ${f.echo64Conns.join('/')}`,
      );
    }

    if (d.sessionWarmMs > 0) await d.runLoad({ kind: 'sessions', port: proxy.ports.ws, workers: 32, durationMs: d.sessionWarmMs, maxSessions: 500_000 }, null);
    const sessions = await d.runLoad({ kind: 'sessions', port: proxy.ports.ws, workers: 32, durationMs: d.phaseMs, maxSessions: 500_000 }, proxy.pid);
    if (ok('scaling sessions', sessions)) {
      const n = sessions.result.count;
      f.sessionRate = n / (sessions.result.elapsedMs / 1000);
      f.sessionCpuUs = (sessions.cpu * 1e6) / n;
      f.sessionPrimaryCpuUs = workers > 1 ? ((sessions.byProcess.get(proxy.pid) ?? 0) * 1e6) / n : NaN;
      f.sessionBusy = pct(sessions.cpu, sessions);
      f.sessionLoadBusy = pct(sessions.loadCpu, sessions);
      f.sessionMachineBusy = sessions.machineBusy;
      f.sessionOtherBusy = Math.max(0, sessions.machineBusy - f.sessionBusy - f.sessionLoadBusy);
      f.sessionCpuSplit = split(sessions);
      d.log(
        `  ${tag} sessions: ${f.sessionRate.toFixed(0)}/s, ${f.sessionCpuUs.toFixed(1)} µs/session` +
          (workers > 1 ? ` (primary ${f.sessionPrimaryCpuUs.toFixed(1)})` : '') +
          `, proxy ${f.sessionBusy.toFixed(0)}% (per process ${f.sessionCpuSplit.map((x) => x.toFixed(0)).join('/')}), ` +
          `load ${f.sessionLoadBusy.toFixed(0)}%, machine ${f.sessionMachineBusy.toFixed(0)}%`,
      );
    }

    if (proxy.ports.l4 !== null) {
      const l4 = await d.runLoad(
        { kind: 'l4', port: proxy.ports.l4, conns: SCALING_L4_CONNS, durationMs: d.phaseMs, bytesPerConn: d.l4BytesPerConn },
        proxy.pid,
        async () => {
          f.l4Conns = await connsPerWorker(SCALING_L4_CONNS);
        },
      );
      if (ok('scaling L4', l4)) {
        f.l4MBps = l4.result.count / 1e6 / (l4.result.elapsedMs / 1000);
        f.l4CpuMsPerGB = (l4.cpu * 1000) / (l4.result.count / 1e9);
        f.l4Busy = pct(l4.cpu, l4);
        f.l4LoadBusy = pct(l4.loadCpu, l4);
        f.l4MachineBusy = l4.machineBusy;
        f.l4OtherBusy = Math.max(0, l4.machineBusy - f.l4Busy - f.l4LoadBusy);
        f.l4CpuSplit = split(l4);
        d.log(
          `  ${tag} L4: ${f.l4MBps.toFixed(0)} MB/s, ${f.l4CpuMsPerGB.toFixed(0)} ms/GB, proxy ${f.l4Busy.toFixed(0)}% ` +
            `(per process ${f.l4CpuSplit.map((x) => x.toFixed(0)).join('/')}), load ${f.l4LoadBusy.toFixed(0)}%, ` +
            `machine ${f.l4MachineBusy.toFixed(0)}%; conns per worker ${f.l4Conns.join('/')}`,
        );
      }
    }
    // A spread where one worker took every connection would make the 2-worker figures one worker's.
    if (workers > 1) {
      for (const [phase, conns] of [['echo 64 B', f.echo64Conns], ['L4', f.l4Conns]] as const) {
        if (conns.length > 0 && conns.filter((c) => c > 0).length < workers) d.log(`  ${tag} NOTE ${phase}: connections per worker ${conns.join('/')}: not spread`);
      }
    }
  } finally {
    await proxy.stop();
  }
  return f;
}

/** Every round runs both settings back to back; odd rounds 1 then 2, even rounds 2 then 1 (drift cancels). */
export async function runScaling(d: ScalingDeps): Promise<ScalingRun[]> {
  const out: ScalingRun[] = [];
  for (let round = 1; round <= d.rounds; round++) {
    for (const workers of round % 2 === 1 ? [1, 2] : [2, 1]) {
      try {
        out.push(await measureOnce(d, workers, round));
      } catch (err) {
        d.fail(round, `scaling --workers ${workers}`, err instanceof Error ? err.message : String(err));
      }
    }
  }
  return out;
}

const ROWS: readonly { key: NumericKey; label: string; digits: number; ratio: boolean }[] = [
  { key: 'echo64Rate', label: '64 conns × 64 B echo: messages/s', digits: 0, ratio: true },
  { key: 'echo64CpuUs', label: '  proxy CPU µs / message (all its processes)', digits: 2, ratio: true },
  { key: 'echo64Busy', label: '  proxy CPU % (100 = one core)', digits: 0, ratio: true },
  { key: 'echo64LoadBusy', label: '  load + backend CPU %', digits: 0, ratio: true },
  { key: 'echo64MachineBusy', label: '  machine busy % (all cores)', digits: 0, ratio: false },
  { key: 'echo64OtherBusy', label: '    of which other work (machine − proxy − load)', digits: 0, ratio: false },
  { key: 'sessionRate', label: 'sessions/s (connect, handshake, echo, close)', digits: 0, ratio: true },
  { key: 'sessionCpuUs', label: '  proxy CPU µs / session (all its processes)', digits: 1, ratio: true },
  { key: 'sessionPrimaryCpuUs', label: '    of which the primary', digits: 1, ratio: false },
  { key: 'sessionBusy', label: '  proxy CPU %', digits: 0, ratio: true },
  { key: 'sessionLoadBusy', label: '  load + backend CPU %', digits: 0, ratio: true },
  { key: 'sessionMachineBusy', label: '  machine busy %', digits: 0, ratio: false },
  { key: 'sessionOtherBusy', label: '    of which other work', digits: 0, ratio: false },
  { key: 'l4MBps', label: `L4 tunnel, ${SCALING_L4_CONNS} conns: MB/s`, digits: 0, ratio: true },
  { key: 'l4CpuMsPerGB', label: '  proxy CPU ms / GB', digits: 0, ratio: true },
  { key: 'l4Busy', label: '  proxy CPU %', digits: 0, ratio: true },
  { key: 'l4LoadBusy', label: '  load + backend CPU %', digits: 0, ratio: true },
  { key: 'l4MachineBusy', label: '  machine busy %', digits: 0, ratio: false },
  { key: 'l4OtherBusy', label: '    of which other work', digits: 0, ratio: false },
  { key: 'idleRssMB', label: 'idle, no connections: RSS MB (all processes)', digits: 1, ratio: true },
  { key: 'idlePrivateMB', label: '  of which private (RssAnon) MB', digits: 1, ratio: true },
  { key: 'idleProcesses', label: '  processes', digits: 0, ratio: false },
];

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a';
}

/** Medians over rounds per setting, and the median over rounds of each round's 2 ÷ 1 (both ran back to back). */
export function scalingMedians(runs: readonly ScalingRun[]): { one: Partial<Record<NumericKey, number>>; two: Partial<Record<NumericKey, number>>; ratio: Partial<Record<NumericKey, number>> } {
  const one: Partial<Record<NumericKey, number>> = {};
  const two: Partial<Record<NumericKey, number>> = {};
  const ratio: Partial<Record<NumericKey, number>> = {};
  const rounds = [...new Set(runs.map((r) => r.round))];
  for (const { key } of ROWS) {
    one[key] = median(runs.filter((r) => r.workers === 1).map((r) => r[key]));
    two[key] = median(runs.filter((r) => r.workers === 2).map((r) => r[key]));
    ratio[key] = median(
      rounds.map((round) => {
        const a = runs.find((r) => r.round === round && r.workers === 1)?.[key];
        const b = runs.find((r) => r.round === round && r.workers === 2)?.[key];
        return a !== undefined && b !== undefined && a !== 0 ? b / a : NaN;
      }),
    );
  }
  return { one, two, ratio };
}

/** The "workers 1 vs 2" table, then the spread per round. */
export function renderScalingTable(runs: readonly ScalingRun[], cores: number): string {
  const { one, two, ratio } = scalingMedians(runs);
  const out = ['| wsgate, workers 1 vs 2 | --workers 1 | --workers 2 | 2 ÷ 1 |', '|---|---:|---:|---:|'];
  for (const row of ROWS) {
    out.push(`| ${row.label} | ${fmt(one[row.key] ?? NaN, row.digits)} | ${fmt(two[row.key] ?? NaN, row.digits)} | ${row.ratio ? fmt(ratio[row.key] ?? NaN, 2) : ''} |`);
  }
  const spread = (list: readonly number[]): string => (list.length === 0 ? 'n/a' : list.map((x) => x.toFixed(0)).join(' / '));
  out.push(
    '',
    '| --workers 2, round | live conns per worker: echo 64 B | L4 | CPU % primary / worker / worker: echo 64 B | sessions | L4 | idle RSS MB per process |',
    '|---:|---|---|---|---|---|---|',
  );
  const mb = (list: readonly number[]): string => (list.length === 0 ? 'n/a' : list.map((x) => x.toFixed(1)).join(' / '));
  for (const r of runs.filter((x) => x.workers === 2)) {
    out.push(
      `| ${r.round} | ${spread(r.echo64Conns)} | ${spread(r.l4Conns)} | ${spread(r.echo64CpuSplit)} | ${spread(r.sessionCpuSplit)} | ` +
        `${spread(r.l4CpuSplit)} | ${mb(r.idleRssSplit)} |`,
    );
  }
  out.push(
    '',
    `Medians over rounds; 2 ÷ 1 is the median over rounds of each round's ratio (both settings ran back to back in a round, ` +
      `odd rounds 1 then 2, even rounds 2 then 1). The proxy may use all ${cores} cores, the load and backend stay on core 1: ` +
      `with 2 cores the second worker only gets what the load leaves (machine busy near ${cores * 100} % = no core left; ` +
      `"other work" is CPU used by neither the proxy nor the load: another user of the machine). ` +
      `--workers 1 is one process; --workers 2 is a primary (limits, metrics, admin) and two workers.`,
  );
  return out.join('\n');
}
