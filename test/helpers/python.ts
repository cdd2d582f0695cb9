// Python's `websockets` (Debian's python3-websockets 10.4, for /usr/bin/python3: the python3 on PATH is another
// interpreter) as an independent WebSocket peer: a script run as a real process, whose stdout lines the test reads
// and whose stdin it writes (to say "go on"). A real process can be frozen (SIGSTOP) to play a dead peer.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Queue } from './l7-peers.ts';

export const PYTHON = '/usr/bin/python3';

export interface Python {
  readonly proc: ChildProcess;
  readonly lines: Queue<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Writes one line to the script's stdin. */
  say(line: string): void;
  /** The next stdout line; rejects if the process exits first (with its stderr). */
  next(): Promise<string>;
  /** SIGKILL (after SIGCONT, in case it is stopped) and wait for the exit. */
  kill(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Kills every script still running: for after() hooks. */
export function killAllPython(): void {
  for (const p of running) {
    p.kill('SIGCONT');
    p.kill('SIGKILL');
  }
}

export function python(script: string, args: readonly string[] = []): Python {
  const proc = spawn(PYTHON, ['-u', '-c', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(proc);
  const lines = new Queue<string>();
  createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
  let stderr = '';
  proc.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  proc.stdin.on('error', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.once('close', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal, stderr });
    }),
  );
  return {
    proc,
    lines,
    exited,
    say: (line) => void proc.stdin.write(`${line}\n`),
    next: () =>
      Promise.race([
        lines.shift(),
        exited.then(async (e) => {
          // Lines printed just before the exit are still delivered first.
          if (lines.length > 0) return lines.shift();
          throw new Error(`python exited (${e.code ?? e.signal}) before the next line: ${e.stderr}`);
        }),
      ]),
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGCONT');
        proc.kill('SIGKILL');
      }
      await exited;
    },
  };
}
