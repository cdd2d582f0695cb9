// `npm run image` (scripts/image/build.sh) picks the container engine the machine has. This machine has none that
// works (a docker CLI without a daemon), so the engines here are stand-ins on PATH: small scripts that answer
// `info` as told and record the command line they were given. That is the only fake: the script, its checks and
// its messages run for real.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'image', 'build.sh');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const scratch = mkdtempSync(join(tmpdir(), 'wsgate-image-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let dirs = 0;
/** A directory of stand-in engines: NAME -> whether its `info` succeeds. Each records its arguments in NAME.args. */
function engines(spec: Record<string, boolean>): string {
  const dir = join(scratch, `bin-${++dirs}`);
  mkdirSync(dir);
  for (const [name, infoWorks] of Object.entries(spec)) {
    const file = join(dir, name);
    writeFileSync(
      file,
      `#!/bin/bash\nif [ "$1" = info ]; then ${infoWorks ? 'exit 0' : 'echo "Cannot connect to the engine" >&2; exit 1'}; fi\n` +
        `printf '%s\\n' "$@" >> "${file}.args"\n`,
    );
    chmodSync(file, 0o755);
  }
  return dir;
}

/** Runs the script with PATH = the stand-ins and the system's own directories (not /usr/local/bin's docker). */
function image(bin: string, ...args: string[]): { code: number | null; stderr: string; recorded: (name: string) => string[] } {
  const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` }, timeout: 20_000 });
  const recorded = (name: string): string[] => {
    try {
      return readFileSync(join(bin, `${name}.args`), 'utf8').trimEnd().split('\n');
    } catch {
      return [];
    }
  };
  return { code: r.status, stderr: r.stderr, recorded };
}

describe('npm run image', () => {
  test('with no engine that works, exits 1 saying docker has no engine and podman and buildah are absent', () => {
    const r = image(engines({ docker: false }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no container engine on this machine/);
    assert.match(r.stderr, /docker is installed, but no Docker engine answers \(Cannot connect to the engine\)/);
    assert.match(r.stderr, /no podman/);
    assert.match(r.stderr, /no buildah/);
    assert.deepEqual(r.recorded('docker'), [], 'docker build was not attempted');
  });

  test('builds with docker when its engine answers, tagged with the version and stamped with the revision', () => {
    const r = image(engines({ docker: true, podman: true }));
    assert.equal(r.code, 0, r.stderr);
    const args = r.recorded('docker');
    assert.deepEqual(args.slice(0, 5), ['build', '-t', `wsgate:${VERSION}`, '--build-arg', `VERSION=${VERSION}`]);
    assert.match(args[6] ?? '', /^REVISION=[0-9a-f]{40}$/);
    assert.equal(args.at(-1), ROOT.replace(/\/$/, ''));
    assert.deepEqual(r.recorded('podman'), []);
  });

  test('falls back to podman when docker has no engine, and pushes with it on --push', () => {
    const r = image(engines({ docker: false, podman: true }), 'registry.example.com:5000/team/wsgate:1.2.3', '--push');
    assert.equal(r.code, 0, r.stderr);
    const args = r.recorded('podman');
    assert.deepEqual(args.slice(0, 3), ['build', '-t', 'registry.example.com:5000/team/wsgate:1.2.3']);
    assert.deepEqual(args.slice(-2), ['push', 'registry.example.com:5000/team/wsgate:1.2.3']);
    assert.match(r.stderr, /--set image\.repository=registry\.example\.com:5000\/team\/wsgate --set image\.tag=1\.2\.3$/m);
  });

  test('uses buildah when it is the only engine', () => {
    const r = image(engines({ buildah: true }));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.recorded('buildah').slice(0, 3), ['bud', '-t', `wsgate:${VERSION}`]);
  });
});
