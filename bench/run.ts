// `npm run bench`: wsgate beside nginx and HAProxy on the same machine in the same run. See docs/benchmarks.md.
//  1. pin this process, the backend and the load generators to core 1, the proxy under test to core 0 (≥ 2 cores);
//  2. start the backend (WebSocket echo + L4 byte source), then for each round and each target (direct, wsgate,
//     wsgate-pipe, nginx, haproxy): start the proxy, warm it up, run the scenarios (idle hold first, on a fresh
//     process; then echo 64 B, echo 16 KiB, latency, sessions, L4), reading the proxy's CPU time around each
//     measured phase, stop it;
//  3. take the median of each figure over the rounds, print one table (and the frame tracker's budget: wsgate, which
//     tracks frames, against wsgate-pipe, the same with inspectFrames: false), write bench/results/latest.json;
//  4. exit 1 if any proxy failed a correctness check (wrong echo, dead held connection, short tunnel, errors).
//  5. with wsgate among the targets: the drain row (bench/drain.ts), N idle WebSockets reconnecting to the backend
//     when wsgate stops, the 1001s spread over --drain-timeout versus all at once, once per round.
//  6. with wsgate among the targets and the `scaling` phase (on in a full run, off in --quick): wsgate with
//     --workers 1 and then 2 (bench/scaling.ts), free on every core, the load on core 1; per round 64 B echo,
//     sessions, L4 and the idle process, the CPU of every process of the proxy, the load's and the machine's, each
//     worker's live connections (/debug/workers); a "workers 1 vs 2" table with the ratio 2 ÷ 1 per figure.
// Flags: --quick (one short round: the CI smoke), --rounds N, --seconds S (per phase), --hold K,
//        --targets direct,wsgate,wsgate-pipe,wsgate-js,node-min,node-raw,nginx,haproxy (wsgate-js: wsgate-pipe with --relay js,
//        its echo and L4 phases: L4 beside the native relay, echo for the frame tracker's own cost; node-min: bench/minimal-proxy.ts, issue 13's minimal Node
//        proxy; node-raw: bench/raw-proxy.ts, a session without net.Socket: raw handles, llhttp, the native relay), --profile (wsgate and wsgate-pipe under --cpu-prof;
//        each profile summarised at the end), --drain-clients N (2000; quick 500), --drain-window S (10; quick 2),
//        --session-warmup S (10; quick 0.5: sessions run unmeasured before the sessions phase), --no-drain, --phases idle,echo64,echo16k,latency,sessions,l4,flood,scaling (default all, --quick all but
//        scaling; the warm-up always runs; e.g. `--phases sessions --no-drain` profiles or compares the handshake
//        path alone, `--phases scaling --no-drain` runs only the workers 1 vs 2 table).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LoadResult, LoadRun, LoadSpec } from './load.ts';
import { NODE_FLAGS } from '../src/cli/node-flags.ts';
import { anonBytes, collectGarbage, cpuByProcess, cpuJiffies, cpuSeconds, median, rssBytes } from './measure.ts';
import { summariseProfile } from './profile.ts';
import {
  BACKEND_PORTS,
  PORT_OFFSET,
  available,
  childFdLimit,
  spawnPinned,
  startProxy,
  type RunningProxy,
  type TargetName,
} from './proxies.ts';
import { renderScalingTable, runScaling, type ScalingRun } from './scaling.ts';
import { ROWS, renderDrainTable, renderFrameBudget, renderTable, type DrainMedians, type Figures } from './report.ts';
import { runDrainBench, type DrainFigures } from './drain.ts';

const BENCH = import.meta.dirname;
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    hold: { type: 'string' },
    targets: { type: 'string', default: 'direct,wsgate,wsgate-pipe,wsgate-js,node-min,node-raw,nginx,haproxy' },
    profile: { type: 'boolean', default: false },
    'drain-clients': { type: 'string' },
    'drain-window': { type: 'string' },
    'no-drain': { type: 'boolean', default: false },
    phases: { type: 'string' },
    'session-warmup': { type: 'string' },
  },
});
const quick = flags.quick;
const PHASES = ['idle', 'echo64', 'echo16k', 'latency', 'sessions', 'l4', 'flood', 'scaling'] as const;
// The scaling phase (two more wsgate starts per round) is not part of the CI smoke unless asked for.
const phases = new Set((flags.phases ?? PHASES.filter((p) => !quick || p !== 'scaling').join(',')).split(',').map((p) => p.trim()));
for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--phases: unknown phase ${p} (${PHASES.join(', ')})`);
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const phaseMs = Number(flags.seconds ?? (quick ? 0.6 : 5)) * 1000;
/**
 * Sessions run, unmeasured, for this long before the sessions phase measures them. A Node proxy's handshake path
 * costs about twice its steady figure for its first seconds, while V8 compiles it on the same pinned core (wsgate,
 * per second of one run: 550–650 µs per session for 8 s, then 230–300); the echo warm-up does not run that path.
 * nginx and HAProxy get the same warm-up, which changes nothing for them. docs/benchmarks.md shows both figures.
 */
const sessionWarmMs = Number(flags['session-warmup'] ?? (quick ? 0.5 : 10)) * 1000;
/** Pause before reading RSS with the connections held (lets the proxy settle after the burst of handshakes). */
const settleMs = quick ? 200 : 1000;
// Read before this process pins itself (affinity narrows availableParallelism()).
const CORES = availableParallelism();
const twoCores = CORES >= 2;
const PROXY_CPU = twoCores ? 0 : null;
const LOAD_CPU = twoCores ? 1 : null;
/** The scaling phase's proxy: every core (the load stays on LOAD_CPU). */
const SCALING_CPUS = twoCores ? `0-${CORES - 1}` : null;
const fdLimit = childFdLimit();
const wantedHold = Number(flags.hold ?? (quick ? 500 : 5000));
// A proxy holds two fds per connection; keep 500 spare for listeners, logs and the connections being opened.
const held = Math.min(wantedHold, Math.floor((fdLimit - 500) / 2));
const notes: string[] = [];
if (held < wantedHold) notes.push(`idle hold lowered from ${wantedHold} to ${held}: the fd hard limit is ${fdLimit}`);
if (!twoCores) notes.push('one core: nothing pinned; proxy and load share the core');

if (LOAD_CPU !== null) spawnSync('taskset', ['-a', '-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' });

interface Check {
  readonly target: TargetName;
  readonly round: number;
  readonly phase: string;
  readonly problem: string;
}
const failures: Check[] = [];

function fail(target: TargetName, round: number, phase: string, problem: string): void {
  failures.push({ target, round, phase, problem });
  process.stderr.write(`  FAIL ${target} ${phase}: ${problem}\n`);
}

/** A load child: runs `spec`; `onReady` runs between set-up and the measured part (e.g. to read RSS). */
async function runLoad(
  spec: LoadSpec,
  pid: number | null,
  onReady?: (msg: { opened?: number }) => Promise<void>,
  onResult?: () => Promise<void>,
): Promise<LoadRun> {
  const child: ChildProcess = spawnPinned(LOAD_CPU, process.execPath, [join(BENCH, 'load.ts'), JSON.stringify(spec)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // A child may exit as soon as it has sent its result: a message to it then fails with EPIPE, which is no error.
  const send = (m: string): void => {
    if (child.connected) child.send(m, (err) => void err);
  };
  const next = (what: string, timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolveMsg, reject) => {
      const timer = setTimeout(() => reject(new Error(`load child: no ${what} after ${timeoutMs} ms`)), timeoutMs);
      child.once('message', (m) => {
        clearTimeout(timer);
        resolveMsg(m as Record<string, unknown>);
      });
      void exited.then(() => reject(new Error(`load child exited before ${what}`)));
    });
  try {
    const ready = await next('ready', 60_000);
    if (ready.type === 'result') {
      return { result: ready as unknown as LoadResult, cpu: NaN, loadCpu: NaN, loadCoreBusy: NaN, machineBusy: NaN, byProcess: new Map() };
    }
    if (onReady !== undefined) await onReady(ready);
    // The load side's own CPU (generator + backend), and how busy its core was with everything on it: if either
    // nears 100 %, the load, not the proxy, limits the rates.
    const loadPids = [child.pid ?? 0, backendPid];
    const load0 = loadPids.reduce((a, p) => a + cpuSeconds(p), 0);
    const core0 = LOAD_CPU === null ? null : cpuJiffies(LOAD_CPU);
    const machine0 = cpuJiffies(null);
    const procs0 = pid === null ? new Map<number, number>() : cpuByProcess(pid);
    const cpu0 = pid === null ? NaN : cpuSeconds(pid);
    send('go');
    const result = (await next('result', phaseMs + 60_000)) as unknown as LoadResult;
    const cpu = pid === null ? NaN : cpuSeconds(pid) - cpu0;
    // Per process of the proxy's tree (a primary and its workers): who did the work.
    const byProcess = new Map<number, number>();
    if (pid !== null) for (const [p, s] of cpuByProcess(pid)) byProcess.set(p, s - (procs0.get(p) ?? 0));
    const machine1 = cpuJiffies(null);
    const machineBusy = (100 * CORES * (machine1.busy - machine0.busy)) / Math.max(1, machine1.total - machine0.total);
    const loadCpu = loadPids.reduce((a, p) => a + cpuSeconds(p), 0) - load0;
    const core1 = LOAD_CPU === null ? null : cpuJiffies(LOAD_CPU);
    const loadCoreBusy =
      core0 === null || core1 === null ? NaN : (100 * (core1.busy - core0.busy)) / Math.max(1, core1.total - core0.total);
    if (onResult !== undefined) await onResult();
    send('exit');
    return { result, cpu, loadCpu, loadCoreBusy, machineBusy, byProcess };
  } finally {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    send('exit');
    await exited;
    clearTimeout(timer);
  }
}

let backendPid = 0;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measureTarget(
  target: TargetName,
  round: number,
  ports: { ws: number; l4: number | null },
  pid: number | null,
  inspect: number | null,
): Promise<Figures> {
  const f: Figures = {
    echo64Rate: NaN, echo64CpuUs: NaN, echo64Busy: NaN, echo64LoadBusy: NaN, echo64LoadCoreBusy: NaN, sessionLoadBusy: NaN, echo16kRate: NaN, echo16kCpuUs: NaN, echo16kBusy: NaN,
    latencyP50Us: NaN, latencyP99Us: NaN, sessionRate: NaN, sessionCpuUs: NaN, sessionBusy: NaN,
    idleBytesPerConn: NaN, idleAlive: NaN, idleHeld: held, l4MBps: NaN, l4CpuMsPerGB: NaN, l4Busy: NaN,
    idleRssMB: NaN, idlePrivateMB: NaN, idleProcesses: NaN, slowReaderKBPerConn: NaN,
  };
  const check = (phase: string, r: LoadResult): boolean => {
    if (r.errors > 0) fail(target, round, phase, `${r.errors} errors, first: ${r.firstError}`);
    else if (r.count <= 0) fail(target, round, phase, 'nothing completed');
    else return true;
    return false;
  };
  const busy = (cpu: number, r: LoadResult): number => (100 * cpu) / (r.elapsedMs / 1000);
  const log = (phase: string, text: string): void => void process.stdout.write(`  ${target} r${round} ${phase}: ${text}\n`);
  // (f) L4 tunnel.
  const l4Phase = async (l4Port: number): Promise<void> => {
    const bytesPerConn = (quick ? 256 : 8192) * 1024 * 1024;
    const l = await runLoad({ kind: 'l4', port: l4Port, conns: 4, durationMs: phaseMs, bytesPerConn }, pid);
    if (check('L4', l.result)) {
      f.l4MBps = l.result.count / 1e6 / (l.result.elapsedMs / 1000);
      f.l4CpuMsPerGB = (l.cpu * 1000) / (l.result.count / 1e9);
      f.l4Busy = busy(l.cpu, l.result);
      log('L4', `${f.l4MBps.toFixed(0)} MB/s, ${f.l4CpuMsPerGB.toFixed(0)} ms/GB, core ${f.l4Busy.toFixed(0)}%`);
    }
  };
  // Warm-up (JIT, allocator): a short echo, not measured.
  await runLoad({ kind: 'echo', port: ports.ws, conns: 8, size: 64, durationMs: Math.min(500, phaseMs), latency: false }, null);

  // wsgate-js (a byte pipe on the JavaScript relay) is there for two comparisons: L4 against the native relay, and
  // the frame tracker's own cost per message and per idle connection (wsgate against the same JavaScript relay
  // without the tracker). Its other phases would measure wsgate-pipe's code again.
  const js = target === 'wsgate-js';

  // (e) idle connections, on a process that has done nothing but the warm-up.
  if (phases.has('idle')) await idlePhase();
  async function idlePhase(): Promise<void> {
    await sleep(settleMs);
    // A Node proxy collects its garbage first, here and with the connections held (measure.ts collectGarbage()).
    const collect = async (): Promise<void> => {
      if (pid !== null && inspect !== null) await collectGarbage(pid, inspect);
    };
    await collect();
    const rssBefore = pid === null ? NaN : rssBytes(pid);
    if (pid !== null) {
      // The idle process itself (issue 9, item 20: a worker or sidecar at most 80 MB, 30 MB private).
      const anon = anonBytes(pid);
      f.idleRssMB = rssBefore / 1e6;
      f.idlePrivateMB = anon.bytes / 1e6;
      f.idleProcesses = anon.processes;
      log('idle process', `${f.idleRssMB.toFixed(1)} MB RSS, ${f.idlePrivateMB.toFixed(1)} MB private, ${anon.processes} process(es)`);
    }
    let rssHeld = NaN;
    const hold = await runLoad(
      { kind: 'hold', port: ports.ws, count: held, concurrency: 128, checkTimeoutMs: 15_000 },
      pid,
      async () => {
        if (pid === null) return;
        await sleep(settleMs);
        await collect();
        rssHeld = rssBytes(pid);
      },
    );
    f.idleAlive = hold.result.alive ?? 0;
    if (hold.result.opened !== held || hold.result.alive !== held) {
      fail(target, round, 'idle', `opened ${hold.result.opened}, alive ${hold.result.alive} of ${held} (${hold.result.firstError ?? 'no error'})`);
    }
    f.idleBytesPerConn = (rssHeld - rssBefore) / held;
    log('idle', `${f.idleAlive}/${held} alive, ${(f.idleBytesPerConn / 1000).toFixed(2)} KB/conn`);
    await sleep(settleMs);
  }

  // (a) 64 connections × 64 B.
  if (phases.has('echo64')) {
    const a = await runLoad({ kind: 'echo', port: ports.ws, conns: 64, size: 64, durationMs: phaseMs, latency: false }, pid);
    if (check('echo 64 B', a.result)) {
      f.echo64Rate = a.result.count / (a.result.elapsedMs / 1000);
      f.echo64CpuUs = (a.cpu * 1e6) / a.result.count;
      f.echo64Busy = busy(a.cpu, a.result);
      f.echo64LoadBusy = busy(a.loadCpu, a.result);
      f.echo64LoadCoreBusy = a.loadCoreBusy;
      log('echo 64 B', `${f.echo64Rate.toFixed(0)} msg/s, ${f.echo64CpuUs.toFixed(2)} µs/msg, core ${f.echo64Busy.toFixed(0)}%, load ${f.echo64LoadBusy.toFixed(0)}% (its core ${f.echo64LoadCoreBusy.toFixed(0)}% busy)`);
    }
  }
  // (b) 16 connections × 16 KiB.
  if (phases.has('echo16k')) {
    const b = await runLoad({ kind: 'echo', port: ports.ws, conns: 16, size: 16384, durationMs: phaseMs, latency: false }, pid);
    if (check('echo 16 KiB', b.result)) {
      f.echo16kRate = b.result.count / (b.result.elapsedMs / 1000);
      f.echo16kCpuUs = (b.cpu * 1e6) / b.result.count;
      f.echo16kBusy = busy(b.cpu, b.result);
      log('echo 16 KiB', `${f.echo16kRate.toFixed(0)} msg/s, ${f.echo16kCpuUs.toFixed(2)} µs/msg, core ${f.echo16kBusy.toFixed(0)}%`);
    }
  }
  if (js) {
    if (ports.l4 !== null && phases.has('l4')) await l4Phase(ports.l4);
    return f;
  }
  // (c) one connection: round-trip latency.
  if (phases.has('latency')) {
    const c = await runLoad({ kind: 'echo', port: ports.ws, conns: 1, size: 64, durationMs: phaseMs, latency: true }, pid);
    if (check('latency', c.result)) {
      f.latencyP50Us = c.result.p50Us ?? NaN;
      f.latencyP99Us = c.result.p99Us ?? NaN;
      log('latency', `p50 ${f.latencyP50Us.toFixed(0)} µs, p99 ${f.latencyP99Us.toFixed(0)} µs`);
    }
  }
  // (d) sessions.
  if (phases.has('sessions')) {
    if (sessionWarmMs > 0) await runLoad({ kind: 'sessions', port: ports.ws, workers: 32, durationMs: sessionWarmMs, maxSessions: 500_000 }, null);
    const d = await runLoad({ kind: 'sessions', port: ports.ws, workers: 32, durationMs: phaseMs, maxSessions: 500_000 }, pid);
    if (check('sessions', d.result)) {
      f.sessionRate = d.result.count / (d.result.elapsedMs / 1000);
      f.sessionCpuUs = (d.cpu * 1e6) / d.result.count;
      f.sessionBusy = busy(d.cpu, d.result);
      f.sessionLoadBusy = busy(d.loadCpu, d.result);
      log('sessions', `${f.sessionRate.toFixed(0)}/s, ${f.sessionCpuUs.toFixed(1)} µs/session, core ${f.sessionBusy.toFixed(0)}%, load ${f.sessionLoadBusy.toFixed(0)}%`);
    }
  }
  if (ports.l4 !== null && phases.has('l4')) await l4Phase(ports.l4);
  // (g) 20 clients that flood 64 KiB messages and never read: what the proxy holds for them (issue 9, item 21).
  if (pid !== null && phases.has('flood')) {
    const floodConns = 20;
    let rss0 = NaN;
    let rss1 = NaN;
    const g = await runLoad(
      { kind: 'flood', port: ports.ws, conns: floodConns, durationMs: Math.max(1000, phaseMs) },
      pid,
      async () => {
        await sleep(settleMs);
        rss0 = rssBytes(pid);
      },
      () => {
        rss1 = rssBytes(pid);
        return Promise.resolve();
      },
    );
    if (g.result.opened !== floodConns) fail(target, round, 'slow reader', `opened ${g.result.opened} of ${floodConns}`);
    f.slowReaderKBPerConn = (rss1 - rss0) / floodConns / 1000;
    log('slow reader', `${(g.result.count / 1e6).toFixed(0)} MB sent, RSS +${f.slowReaderKBPerConn.toFixed(0)} KB/conn`);
  }
  return f;
}

/** Medians of the drain figures over rounds; close codes from the first round. */
function medianDrain(list: readonly DrainFigures[]): DrainMedians['spread'] {
  return {
    peakPer100ms: median(list.map((f) => f.peakPer100ms)),
    peakPerSecond: median(list.map((f) => f.peakPerSecond)),
    spanMs: median(list.map((f) => f.spanMs)),
    reconnections: median(list.map((f) => f.reconnections)),
    wsgatePeakPer100ms: median(list.map((f) => f.wsgatePeakPer100ms)),
    wsgatePeakPerSecond: median(list.map((f) => f.wsgatePeakPerSecond)),
    closeCodes: list[0]?.closeCodes ?? {},
  };
}

/**
 * An idle `wsgate sidecar` (compiled, with wsgate's V8 flags, pinned to the proxy's core), in front of the bench's
 * echo port: its RSS and private memory after it has settled (issue 9, item 20: at most 80 MB, 30 MB private).
 */
async function idleSidecar(): Promise<{ rssMB: number; privateMB: number } | undefined> {
  const listen = 18301 + PORT_OFFSET;
  const admin = 18302 + PORT_OFFSET;
  const child = spawnPinned(PROXY_CPU, process.execPath, [
    ...NODE_FLAGS,
    join(BENCH, '..', 'bin', 'wsgate.js'),
    'sidecar', '--upstream', `127.0.0.1:${BACKEND_PORTS.ws}`, '--listen', `127.0.0.1:${listen}`, '--admin-addr', `127.0.0.1:${admin}`,
    '--log-level', 'warn',
  ], { stdio: 'ignore', env: { ...process.env, WSGATE_COMPILED: '1' } });
  try {
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`http://127.0.0.1:${admin}/healthz`).then((r) => r.ok, () => false);
      if (up) break;
      await sleep(100);
    }
    await sleep(2 * settleMs);
    const rss = rssBytes(child.pid!);
    const anon = anonBytes(child.pid!);
    return { rssMB: rss / 1e6, privateMB: anon.bytes / 1e6 };
  } catch {
    return undefined;
  } finally {
    child.kill('SIGKILL');
  }
}

/** The 1-minute load average: other work on the machine skews throughput and latency (CPU per unit less so). */
function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

async function main(): Promise<number> {
  const started = Date.now();
  const loadBefore = loadAverage();
  // wsgate runs as the image runs it: compiled (dist/), not its sources through the type stripper.
  const build = spawnSync(process.execPath, [join(BENCH, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(BENCH, '..', 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  if (build.status !== 0) throw new Error('npm run build failed: the bench runs the compiled wsgate');
  const sidecar = phases.has('idle') ? await idleSidecar() : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-bench-'));
  const resultsDir = join(BENCH, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const profDir = join(resultsDir, 'profile');
  const requested = flags.targets.split(',').map((t) => t.trim()) as TargetName[];
  const targets: TargetName[] = [];
  for (const t of requested) {
    if (t === 'direct') targets.push(t);
    else {
      const a = available(t);
      if (a.ok) targets.push(t);
      else notes.push(`${t} skipped: ${a.note}`);
    }
  }
  process.stdout.write(
    `wsgate bench: ${rounds} round(s), ${phaseMs / 1000} s per phase, ${held} idle connections, targets ${targets.join(', ')}; ` +
      `proxy on CPU ${PROXY_CPU ?? 'any'}, load and backend on CPU ${LOAD_CPU ?? 'any'}; work dir ${dir}\n`,
  );

  const backend = spawnPinned(LOAD_CPU, process.execPath, [join(BENCH, 'backend.ts'), String(BACKEND_PORTS.ws), String(BACKEND_PORTS.source)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  backendPid = backend.pid ?? 0;
  await new Promise<void>((res, rej) => {
    backend.stdout?.once('data', () => res());
    backend.once('exit', () => rej(new Error('backend exited at start')));
  });

  const perRound: Partial<Record<TargetName, Figures[]>> = {};
  // The same figures by round: a per-round ratio wsgate ÷ peer compares two targets measured minutes apart at most.
  const byRound: Partial<Record<TargetName, Figures>>[] = [];
  const proxyNotes = new Set<string>();
  // Only the scaling phase asked for: no target needs starting for the main table.
  const mainPhases = [...phases].some((p) => p !== 'scaling');
  let scalingRuns: ScalingRun[] = [];
  try {
    for (let round = 1; round <= rounds && mainPhases; round++) {
      for (const target of targets) {
        let proxy: RunningProxy | null = null;
        try {
          if (target !== 'direct') {
            proxy = await startProxy(target, {
              dir,
              backend: BACKEND_PORTS,
              cpu: PROXY_CPU,
              fds: Math.min(fdLimit, 2 * held + 2000),
              ...(flags.profile && target.startsWith('wsgate') ? { cpuProfDir: join(profDir, target) } : {}),
            });
            for (const n of proxy.notes) proxyNotes.add(`${target}: ${n}`);
          }
          const ports = proxy?.ports ?? { ws: BACKEND_PORTS.ws, l4: BACKEND_PORTS.source };
          const pid = proxy?.pid ?? null;
          const f = await measureTarget(target, round, ports, pid, proxy?.inspect ?? null);
          (perRound[target] ??= []).push(f);
          (byRound[round - 1] ??= {})[target] = f;
        } catch (err) {
          fail(target, round, 'run', err instanceof Error ? err.message : String(err));
        } finally {
          await proxy?.stop();
        }
      }
    }
    // The scaling phase: wsgate --workers 1 against --workers 2 (bench/scaling.ts), the proxy free on every core.
    if (phases.has('scaling') && targets.includes('wsgate')) {
      process.stdout.write(`scaling: wsgate --workers 1 and 2 on CPUs ${SCALING_CPUS ?? 'any'}, load and backend on CPU ${LOAD_CPU ?? 'any'}\n`);
      scalingRuns = await runScaling({
        rounds,
        phaseMs,
        sessionWarmMs,
        settleMs,
        l4BytesPerConn: (quick ? 256 : 8192) * 1024 * 1024,
        startWsgate: async (workers) => {
          const proxy = await startProxy('wsgate', { dir, backend: BACKEND_PORTS, cpu: SCALING_CPUS, fds: Math.min(fdLimit, 2 * held + 2000), workers });
          for (const n of proxy.notes) proxyNotes.add(`wsgate (scaling): ${n}`);
          return proxy;
        },
        runLoad,
        fail: (round, phase, problem) => fail('wsgate', round, phase, problem),
        log: (text) => void process.stdout.write(`${text}\n`),
      });
    }
  } finally {
    backend.kill('SIGTERM');
  }

  // 5. The drain row: spread, then all at once, per round.
  const drainRounds: { spread: DrainFigures; atOnce: DrainFigures }[] = [];
  const drainClients = Number(flags['drain-clients'] ?? (quick ? 500 : 2000));
  const drainWindow = Number(flags['drain-window'] ?? (quick ? 2 : 10));
  if (targets.includes('wsgate') && !flags['no-drain']) {
    for (let round = 1; round <= rounds; round++) {
      const run = async (windowSeconds: number): Promise<DrainFigures> => {
        const f = await runDrainBench({ clients: drainClients, windowSeconds, dir, cpu: PROXY_CPU });
        for (const p of f.problems) fail('wsgate', round, `drain ${windowSeconds} s`, p);
        process.stdout.write(
          `  wsgate r${round} drain ${windowSeconds === 0 ? 'all at once' : `over ${windowSeconds} s`}: ${f.reconnections}/${f.clients} reconnected, ` +
            `peak ${f.peakPer100ms}/100 ms, ${f.peakPerSecond}/s (wsgate's closes: ${f.wsgatePeakPer100ms}/100 ms, ${f.wsgatePeakPerSecond}/s), ` +
            `over ${(f.spanMs / 1000).toFixed(1)} s, codes ${JSON.stringify(f.closeCodes)}\n`,
        );
        return f;
      };
      try {
        drainRounds.push({ spread: await run(drainWindow), atOnce: await run(0) });
      } catch (err) {
        fail('wsgate', round, 'drain', err instanceof Error ? err.message : String(err));
      }
    }
  }
  const drainMedians: DrainMedians | undefined =
    drainRounds.length === 0
      ? undefined
      : {
          clients: drainClients,
          windowSeconds: drainWindow,
          spread: medianDrain(drainRounds.map((r) => r.spread)),
          atOnce: medianDrain(drainRounds.map((r) => r.atOnce)),
        };

  const medians: Partial<Record<TargetName, Figures>> = {};
  for (const t of targets) {
    const list = perRound[t];
    if (list === undefined) continue;
    const m = {} as Figures;
    for (const row of [...ROWS.map((r) => r.key), 'idleHeld' as const, 'echo64LoadCoreBusy' as const]) m[row] = median(list.map((f) => f[row]));
    medians[t] = m;
  }
  const table =
    (mainPhases ? renderTable({ targets, medians, byRound }, held) : '') +
    (drainMedians === undefined ? '' : `\n\n${renderDrainTable(drainMedians)}`) +
    (scalingRuns.length === 0 ? '' : `\n\n${renderScalingTable(scalingRuns, CORES)}`);
  const budget = renderFrameBudget({ targets, medians });
  if (sidecar !== undefined) {
    const ok = sidecar.rssMB <= 80 && sidecar.privateMB <= 30;
    notes.push(
      `idle wsgate sidecar (compiled, no connection): ${sidecar.rssMB.toFixed(1)} MB RSS, ${sidecar.privateMB.toFixed(1)} MB private ` +
        `(issue 9 target ≤ 80 MB, ≤ 30 MB private: ${ok ? 'met' : 'MISSED'})`,
    );
  }
  const seconds = (Date.now() - started) / 1000;
  const loadAfter = loadAverage();
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${CORES} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
 process.stdout.write(
    `\n${table}\n${budget === '' ? '' : `\n${budget}\n`}\nMachine: ${machine}. ${rounds} round(s), medians. Took ${seconds.toFixed(0)} s. ` +
      `Load average (1 min) before/after: ${loadBefore}/${loadAfter}.\n`,
  );
  for (const n of [...notes, ...proxyNotes]) process.stdout.write(`Note: ${n}\n`);

  let profile: string | undefined;
  if (flags.profile) {
    const parts: string[] = [];
    for (const t of targets.filter((x) => x.startsWith('wsgate'))) {
      const dirOf = join(profDir, t);
      const files = readdirSync(dirOf).filter((f) => f.endsWith('.cpuprofile'));
      parts.push(`${t} CPU profile (self time):\n${files.map((f) => summariseProfile(join(dirOf, f), 25)).join('\n')}`);
    }
    profile = parts.join('\n\n');
    process.stdout.write(`\n${profile}\n`);
  }
  const out = {
    date: new Date().toISOString(),
    machine,
    rounds,
    phaseSeconds: phaseMs / 1000,
    held,
    targets,
    medians,
    perRound,
    drain: drainMedians === undefined ? undefined : { medians: drainMedians, perRound: drainRounds },
    scaling: scalingRuns.length === 0 ? undefined : scalingRuns,
    failures,
    notes: [...notes, ...proxyNotes],
    seconds,
    loadAverage: { before: loadBefore, after: loadAfter },
  };
  writeFileSync(join(resultsDir, quick ? 'smoke.json' : flags.profile ? 'profile.json' : 'latest.json'), JSON.stringify(out, null, 2) + '\n');
  if (failures.length > 0) {
    process.stdout.write(`\n${failures.length} correctness failure(s):\n`);
    for (const f of failures) process.stdout.write(`  ${f.target} round ${f.round} ${f.phase}: ${f.problem}\n`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();
