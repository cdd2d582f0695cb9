// The process logger's stdout (logger.ts): asynchronous and batched, yet a line is never held for long and never
// lost at exit. Each case runs a real child process whose stdout is a pipe, as in a container.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const LOGGER = new URL('../../src/log/logger.ts', import.meta.url).href;

/** Runs `body` (after `const log = createLogger('info')`) in a child; yields its stdout lines as they arrive. */
function child(body: string): { lines: string[]; next: () => Promise<string>; exited: Promise<number | null>; kill: () => void } {
  const p = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(LOGGER)};\nconst log = createLogger('info');\n${body}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let partial = '';
  p.stdout.setEncoding('utf8').on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      lines.push(l);
      waiting.shift()?.(l);
    }
  });
  let read = 0;
  return {
    lines,
    next: () => (read < lines.length ? Promise.resolve(lines[read++]!) : new Promise((r) => waiting.push((l) => (read++, r(l))))),
    exited: once(p, 'exit').then(([code]) => code as number | null),
    kill: () => p.kill('SIGKILL'),
  };
}

test('a single line reaches stdout while the process runs on, without waiting for a batch to fill', async () => {
  // The child logs once, then stays alive (until it is killed below).
  const c = child(`log.info({ n: 1 }, 'alone'); setTimeout(() => {}, 60_000);`);
  const line = JSON.parse(await c.next()) as { msg: string; n: number };
  assert.equal(line.msg, 'alone');
  assert.equal(line.n, 1);
  assert.equal(c.lines.length, 1);
  // Still running: the line was written at the end of its turn, not at the exit.
  assert.equal(await Promise.race([c.exited.then(() => 'exited'), Promise.resolve('running')]), 'running');
  c.kill();
  await c.exited;
});

test('access-log lines are batched yet reach stdout while the process runs, and a later warning follows them at once', async () => {
  // Three access-log lines, then (a turn later) a warning: the warning takes the pending lines with it, in order.
  const c = child(
    `for (let i = 0; i < 3; i++) log.info({ i }, 'tunnel closed'); setImmediate(() => log.warn('after')); setTimeout(() => log.info({ i: 3 }, 'tunnel closed'), 5); setTimeout(() => {}, 60_000);`,
  );
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const l = JSON.parse(await c.next()) as { msg: string; i?: number };
    got.push(l.i === undefined ? l.msg : `${l.msg} ${l.i}`);
  }
  // The last one comes alone, by the flush timer: the process is still running.
  assert.deepEqual(got, ['tunnel closed 0', 'tunnel closed 1', 'tunnel closed 2', 'after', 'tunnel closed 3']);
  assert.equal(await Promise.race([c.exited.then(() => 'exited'), Promise.resolve('running')]), 'running');
  c.kill();
  await c.exited;
});

test('lines logged over several turns come out in order', async () => {
  const c = child(`let i = 0; const t = setInterval(() => { log.info({ i }, 'tick'); if (++i === 20) { clearInterval(t); setTimeout(() => {}, 60_000); } }, 1);`);
  const got: number[] = [];
  for (let i = 0; i < 20; i++) got.push((JSON.parse(await c.next()) as { i: number }).i);
  assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i));
  c.kill();
  await c.exited;
});

test('every buffered line is written when the process exits at once after logging', async () => {
  const c = child(`for (let i = 0; i < 50; i++) log.info({ i }, i % 2 === 0 ? 'tunnel closed' : 'line'); process.exit(3);`);
  assert.equal(await c.exited, 3);
  const got = c.lines.map((l) => (JSON.parse(l) as { i: number }).i);
  assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i));
});

test('several processes logging to one pipe, as the primary and its workers do, never cut each other\'s lines', async () => {
  // A FIFO is a real pipe, as a container's stdout is (a child's 'pipe' stdio is a socket pair, which has no
  // PIPE_BUF). Three writers log LINES access-log lines each as fast as they can; the reader takes a chunk per turn,
  // so the pipe runs full and the writers wait on it, which is when a write longer than PIPE_BUF is cut.
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-log-fifo-'));
  const fifo = join(dir, 'stdout');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
  const WRITERS = 3;
  const LINES = 20_000;
  try {
    // Read and write (Linux opens a FIFO so without waiting for the other end): the writers' stdout. Closed once they
    // have it, so that the reader sees the end when the last of them exits.
    const fd = openSync(fifo, 'r+');
    const reader = createReadStream(fifo, { highWaterMark: 4096 });
    await once(reader, 'open');
    const exits: Promise<unknown>[] = [];
    for (let w = 0; w < WRITERS; w++) {
      const p = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { createLogger } from ${JSON.stringify(LOGGER)};\nconst log = createLogger('info');\n` +
            `const pad = 'x'.repeat(200);\nfor (let i = 0; i < ${LINES}; i++) log.info({ w: ${w}, i, pad }, 'tunnel closed');`,
        ],
        { stdio: ['ignore', fd, 'inherit'] },
      );
      exits.push(once(p, 'exit'));
    }
    closeSync(fd);
    let text = '';
    reader.setEncoding('utf8');
    for await (const chunk of reader) {
      text += chunk as string;
      // One chunk per turn: a reader slower than three writers.
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(exits);
    const lines = text.split('\n');
    assert.equal(lines.pop(), '', 'the stream ends at the end of a line');
    const next = Array<number>(WRITERS).fill(0);
    for (const l of lines) {
      let parsed: { w: number; i: number };
      try {
        parsed = JSON.parse(l) as { w: number; i: number };
      } catch {
        assert.fail(`a line cut by another process's: ${l.slice(0, 120)}…`);
      }
      assert.equal(parsed.i, next[parsed.w], `writer ${parsed.w}'s lines in order`);
      next[parsed.w]!++;
    }
    assert.deepEqual(next, Array<number>(WRITERS).fill(LINES));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
