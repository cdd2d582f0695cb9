// What the bench reads about a proxy from /proc: CPU time (utime + stime, every thread, summed over the process
// and its descendants, e.g. nginx's master and worker) and resident memory (VmRSS, summed likewise).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux almost everywhere). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  readonly ppid: number;
  /** utime + stime in clock ticks. */
  readonly ticks: number;
}

function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** `pid` and every process descending from it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const p = Number(name);
    if (!Number.isInteger(p)) continue;
    const st = readStat(p);
    if (st === null) continue;
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [p]);
    else list.push(p);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU seconds (user + system) used so far by `pid` and its descendants. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) ticks += readStat(p)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/** CPU seconds so far per process of `pid`'s tree (a wsgate primary and its workers: who did the work). */
export function cpuByProcess(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of processTree(pid)) {
    const st = readStat(p);
    if (st !== null) out.set(p, st.ticks / CLK_TCK);
  }
  return out;
}

/** Resident set size in bytes of `pid` and its descendants. */
export function rssBytes(pid: number): number {
  let bytes = 0;
  for (const p of processTree(pid)) bytes += ownRssBytes(p);
  return bytes;
}

/** Resident set size in bytes of `pid` alone (0 once it has gone). */
export function ownRssBytes(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Private resident memory (RssAnon) in bytes of `pid` and its descendants, and how many processes that is. */
export function anonBytes(pid: number): { bytes: number; processes: number } {
  let kb = 0;
  let processes = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
      processes++;
    } catch {
      // The process has gone.
    }
  }
  return { bytes: kb * 1024, processes };
}

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * Busy and total jiffies of one CPU from /proc/stat (every process on it, ours or not); `cpu` null: all CPUs (the
 * first line, the sum over cores: busy ÷ total × cores is the machine's busy time in cores).
 */
export function cpuJiffies(cpu: number | null): { busy: number; total: number } {
  const prefix = cpu === null ? 'cpu ' : `cpu${cpu} `;
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(prefix)) ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Asks the V8 of a Node process for full garbage collections, through its inspector (opened by SIGUSR1 on the
 * `--inspect-port` it was started with; bench/proxies.ts), and waits for them to finish. Without this, the RSS of
 * a Node proxy holding N connections includes whatever garbage its last collection left, and its figure per
 * connection moved by ±1 KB from one round to the next at 5,000 connections: more than the frame tracker's whole
 * budget. nginx and HAProxy free what they do not hold at once, so this measures the Node ones the same way.
 */
export async function collectGarbage(pid: number, inspectPort: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  process.kill(pid, 'SIGUSR1');
  let url: string | undefined;
  for (;;) {
    try {
      const list = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl?: string }[];
      url = list[0]?.webSocketDebuggerUrl;
    } catch {
      // Not listening yet.
    }
    if (url !== undefined) break;
    if (Date.now() > deadline) throw new Error(`no inspector on 127.0.0.1:${inspectPort} after SIGUSR1`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('inspector: no answer to HeapProfiler.collectGarbage')), Math.max(1, deadline - Date.now()));
      ws.onerror = () => reject(new Error(`inspector: cannot connect to ${url}`));
      ws.onopen = () => {
        // Twice: the first collection may leave what finalizers freed for the second.
        ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
        ws.send(JSON.stringify({ id: 2, method: 'HeapProfiler.collectGarbage' }));
      };
      ws.onmessage = (e) => {
        if ((JSON.parse(String(e.data)) as { id?: number }).id === 2) {
          clearTimeout(timer);
          resolve();
        }
      };
    });
  } finally {
    ws.close();
  }
}
