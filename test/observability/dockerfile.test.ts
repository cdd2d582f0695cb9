// The Dockerfile's build, run as written without a Docker engine: each stage gets a directory as its root
// filesystem, COPY copies from the build context (the repository filtered by .dockerignore) or from another
// stage's root, RUN runs the same shell command in the stage's WORKDIR with Node.js 24 first on PATH (as the
// node:24 image has it). The final stage's root is then the image's content: it must hold only production
// dependencies, and its ENTRYPOINT, run with Node.js 24, must work (help, version, and serve stopped by SIGTERM
// while it is PID 1 of its own PID namespace, as in a container).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from './promql.ts';

/** The Node.js 24 binary of the `node` devDependency: what the images' `node` is. */
const NODE24 = join(ROOT, 'node_modules', 'node', 'bin', 'node');

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions in order: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const m = /^(\S+)\s+([\s\S]*)$/.exec(current);
    if (!m) throw new Error(`cannot parse Dockerfile line: ${current}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    current = '';
  }
  return out;
}

/** A .dockerignore pattern as a regex over slash-separated relative paths (`*` within a segment, `**` across). */
function patternRegex(pattern: string): RegExp {
  const p = posix.normalize(pattern).replace(/^\/+/, '');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Docker's rule: the last pattern matching the path or one of its parents decides; `!` re-includes. */
function ignoredBy(patterns: readonly { re: RegExp; negate: boolean }[], path: string): boolean {
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const p of patterns) if (prefixes.some((x) => p.re.test(x))) ignored = !p.negate;
  return ignored;
}

/** The build context: the repository's files that .dockerignore lets through, copied to a new directory. */
function buildContext(dest: string): string[] {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => ({ negate: l.startsWith('!'), re: patternRegex(l.replace(/^!/, '')) }));
  const files: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(ROOT, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (statSync(join(ROOT, path)).isDirectory()) {
        // A directory nothing re-includes below is skipped whole (node_modules, .git).
        const reincluded = patterns.some((p) => p.negate && p.re.source.startsWith(`^${path.replace(/[.]/g, '\\.')}/`));
        if (ignoredBy(patterns, path) && !reincluded) continue;
        walk(path);
      } else if (!ignoredBy(patterns, path)) {
        mkdirSync(dirname(join(dest, path)), { recursive: true });
        cpSync(join(ROOT, path), join(dest, path));
        files.push(path);
      }
    }
  };
  walk('');
  return files;
}

interface Stage {
  readonly name: string;
  readonly image: string;
  readonly root: string;
  workdir: string;
  readonly env: Record<string, string>;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
  readonly labels: Record<string, string>;
  readonly args: Record<string, string>;
}

let work: string;
let binDir: string;
let context: string;
let contextFiles: string[];
const stages: Stage[] = [];
const runs: string[] = [];
const instructions = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

function inStage(s: Stage, path: string): string {
  return join(s.root, posix.resolve(s.workdir, path));
}

function splitWords(args: string): string[] {
  return args.split(/\s+/).filter((w) => w !== '');
}

/** Runs the Dockerfile's instructions as described at the top of this file. */
function build(): void {
  for (const { op, args } of instructions) {
    const s = stages.at(-1);
    switch (op) {
      case 'FROM': {
        const [image, as, name] = splitWords(args);
        assert.ok(image);
        const root = join(work, `stage${stages.length}`);
        mkdirSync(root);
        stages.push({ name: as?.toUpperCase() === 'AS' && name ? name : String(stages.length), image, root, workdir: '/', env: {}, labels: {}, args: {} });
        break;
      }
      case 'WORKDIR':
        s!.workdir = posix.resolve(s!.workdir, args);
        mkdirSync(inStage(s!, '.'), { recursive: true });
        break;
      case 'COPY': {
        const words = splitWords(args);
        const from = words[0]?.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
        const dest = words.pop()!;
        const source = from === undefined ? undefined : stages.find((x) => x.name === from);
        if (from !== undefined) assert.ok(source, `COPY --from=${from}: no such stage`);
        for (const src of words) {
          const path = source ? join(source.root, src) : join(context, src);
          assert.ok(existsSync(path), `COPY ${src}: not in the ${source ? `stage ${from}` : 'build context'}`);
          const target = dest.endsWith('/') || words.length > 1 ? join(inStage(s!, dest), posix.basename(src)) : inStage(s!, dest);
          mkdirSync(dirname(target), { recursive: true });
          // A directory's contents go to the destination, as COPY does.
          cpSync(path, target, { recursive: true });
        }
        break;
      }
      case 'RUN':
        runs.push(args);
        try {
          execFileSync('sh', ['-c', args], {
            cwd: inStage(s!, '.'),
            env: { ...process.env, ...s!.env, PATH: `${binDir}:${process.env.PATH ?? ''}` },
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
            timeout: 300_000,
          });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string };
          throw new Error(`RUN ${args} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
        }
        break;
      case 'ENV':
      case 'LABEL':
      case 'ARG':
        for (const m of args.matchAll(/([\w.-]+)=(?:"([^"]*)"|(\S+))/g)) {
          const value = (m[2] ?? m[3] ?? '').replace(/\$\{(\w+)\}/g, (_, k: string) => s!.args[k] ?? '');
          (op === 'ENV' ? s!.env : op === 'LABEL' ? s!.labels : s!.args)[m[1]!] = value;
        }
        break;
      case 'USER':
        s!.user = args;
        break;
      case 'ENTRYPOINT':
        s!.entrypoint = JSON.parse(args) as string[];
        break;
      case 'CMD':
        s!.cmd = JSON.parse(args) as string[];
        break;
      case 'EXPOSE':
        break;
      default:
        throw new Error(`the test does not know the Dockerfile instruction ${op}`);
    }
  }
}

function final(): Stage {
  return stages.at(-1)!;
}

/** The image's ENTRYPOINT as a command here: its node is Node.js 24, its /app is the final stage's. */
function entrypoint(): [string, string[]] {
  const [node, ...rest] = final().entrypoint!;
  assert.equal(node, '/nodejs/bin/node', "distroless's node");
  return [NODE24, rest.map((a) => (a.startsWith('/') ? join(final().root, a) : a))];
}

function runImage(args: string[]): string {
  const [cmd, base] = entrypoint();
  return execFileSync(cmd, [...base, ...args], {
    cwd: inStage(final(), '.'),
    env: { PATH: '/usr/bin:/bin', ...final().env },
    encoding: 'utf8',
  });
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'wsgate-docker-'));
  binDir = join(work, 'bin');
  mkdirSync(binDir);
  // `node` on PATH is Node.js 24, as in the node:24 image (npm and npx run on it through their shebang).
  writeFileSync(join(binDir, 'node'), `#!/bin/sh\nexec ${NODE24} "$@"\n`, { mode: 0o755 });
  context = join(work, 'context');
  contextFiles = buildContext(context);
  build();
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the Dockerfile, built without Docker', { timeout: 600_000 }, () => {
  test('sends only the files it copies as the build context', () => {
    const top = new Set(contextFiles.map((f) => f.split('/')[0]));
    assert.deepEqual([...top].sort(), ['bin', 'examples', 'native', 'package-lock.json', 'package.json', 'src', 'tsconfig.build.json', 'tsconfig.json']);
    assert.ok(!contextFiles.some((f) => f.startsWith('native/build/')), "a checkout's own native build stays out");
  });

  test('builds on the official Node.js 24 image and runs on distroless Node.js 24 as a numeric non-root user', () => {
    assert.equal(stages.length, 2);
    assert.match(stages[0]!.image, /^node:24-/);
    assert.equal(final().image, 'gcr.io/distroless/nodejs24-debian12:nonroot');
    assert.match(final().user ?? '', /^[1-9]\d*:[1-9]\d*$/, 'USER uid:gid, not root');
    assert.equal(final().env.NODE_ENV, 'production');
  });

  test('type-checks the sources, compiles them, and installs production dependencies in the build stage', () => {
    assert.ok(runs.some((r) => /^npm ci\b/.test(r) && !r.includes('--omit=dev')), 'a full npm ci');
    assert.ok(runs.some((r) => r.includes('tsc --noEmit')), 'the type check');
    assert.ok(runs.some((r) => r.includes('tsc -p tsconfig.build.json')), 'the build of dist/');
    assert.match(runs.at(-1) ?? '', /^npm ci .*--omit=dev/, 'the last step prunes to production dependencies');
  });

  test('labels the image with the OCI keys, its version that of package.json', () => {
    const l = final().labels;
    for (const k of ['title', 'description', 'licenses', 'version', 'revision']) assert.ok(l[`org.opencontainers.image.${k}`], k);
    assert.equal(l['org.opencontainers.image.version'], packageJson.version);
    assert.equal(l['org.opencontainers.image.licenses'], 'Apache-2.0');
  });

  test('leaves in the image the compiled code and production dependencies only, and no TypeScript', () => {
    const app = inStage(final(), '.');
    assert.deepEqual(readdirSync(app).sort(), ['bin', 'dist', 'native', 'node_modules', 'package.json']);
    // Of the native relay, only the addon (issue 13).
    assert.deepEqual(readdirSync(join(app, 'native'), { recursive: true }).sort(), ['build', 'build/Release', 'build/Release/wsgate_relay.node']);
    const ts = (readdirSync(join(app, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
    assert.deepEqual(ts, [], 'no .ts file in dist/');
    assert.ok(existsSync(join(app, 'dist', 'cli', 'main.js')));
    assert.ok(existsSync(join(app, 'dist', 'cluster', 'worker-main.js')));
    // package-lock.json marks every package only devDependencies need with "dev": true.
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const wrong: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path.startsWith('node_modules/')) continue;
      const present = existsSync(join(app, path));
      if (entry.dev === true && present) wrong.push(`${path} (dev) is in the image`);
      if (entry.dev !== true && entry.optional !== true && !present) wrong.push(`${path} (production) is missing`);
    }
    assert.deepEqual(wrong, []);
    const modules = join(app, 'node_modules');
    for (const dep of Object.keys(packageJson.dependencies)) assert.ok(existsSync(join(modules, dep)), `${dep} is installed`);
    assert.ok(!existsSync(join(modules, '.bin', 'tsc')));
  });

  test('runs wsgate help and version from the image contents', () => {
    assert.match(runImage(['--help']), /^wsgate 0\.\d+\.\d+: an ingress proxy/);
    assert.equal(runImage(['version']).trim(), packageJson.version);
    assert.deepEqual(final().cmd, ['controller']);
    assert.match(runImage(['controller', '--help']), /^Usage: wsgate controller \[flags\]$/m);
  });

  test('serves, and stops on SIGTERM as PID 1 of its own PID namespace', async () => {
    const config = join(work, 'config');
    mkdirSync(config);
    writeFileSync(join(config, 'empty.yaml'), '');
    const [cmd, base] = entrypoint();
    const wsgate = [cmd, ...base, 'serve', '--config', config, '--workers', '1', '--http-addr', '127.0.0.1:0', '--https-addr', 'off', '--admin-addr', 'off', '--tunnel-host', '127.0.0.1'];
    // unshare(1) makes wsgate PID 1 of a new PID namespace, where only signals with a handler are delivered.
    const asPid1 = process.getuid?.() === 0;
    const [file, args] = asPid1 ? ['unshare', ['--pid', '--fork', '--kill-child', ...wsgate]] : [wsgate[0]!, wsgate.slice(1)];
    const child = spawn(file, args, { cwd: inStage(final(), '.'), env: { PATH: '/usr/bin:/bin', ...final().env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 15_000;
    while (!out.includes('wsgate serving')) {
      assert.ok(Date.now() < deadline, `wsgate did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // With unshare, wsgate is unshare's child: signal it, not unshare (which would forward nothing).
    const target = asPid1 ? Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) : child.pid!;
    if (asPid1) assert.match(readFileSync(`/proc/${target}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'wsgate is PID 1 in its namespace');
    process.kill(target, 'SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    assert.equal(code, 0, `wsgate's exit after SIGTERM:\n${out}`);
    assert.match(out, /"msg":"stopped"/);
    // The image relays L4 tunnels natively: its addon loads.
    assert.match(out, /"relay":"native","msg":"L4 tunnel relay"/);
  });
});
