// The README's test command on a fresh clone: `npm test` sets up what the tests need itself (scripts/setup/deps.sh),
// and with the Go components already in the cache, as on any run after the first, that set-up recognises them and
// builds nothing. The clone is of the committed HEAD, so an uncommitted file cannot make this pass. (The cold case,
// ~12 minutes of Go builds, is run by hand: see the README's set-up section.)
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('a fresh clone', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-clone-'));
  const clone = join(dir, 'wsgate');
  before(() => {
    execFileSync('git', ['clone', '--quiet', '--no-local', ROOT, clone], { stdio: 'pipe' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('is of the committed HEAD of this checkout', () => {
    const head = (cwd: string): string => execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    assert.equal(head(clone), head(ROOT));
  });

  test('npm test runs the set-up before anything else, and CI runs npm ci, the bench smoke and npm test last', () => {
    const pkg = JSON.parse(readFileSync(join(clone, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.test ?? '', /^bash scripts\/setup\/deps\.sh test && /);
    assert.match(pkg.scripts['bench:smoke'] ?? '', /^bash scripts\/setup\/deps\.sh bench && /);
    const commands = readFileSync(join(clone, '.ci', 'run'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'));
    assert.deepEqual(commands, ['set -euo pipefail', 'cd "$(dirname "$0")/.."', 'npm ci --no-audit --no-fund', 'npm run bench:smoke', 'npm test']);
  });

  test("the set-up recognises the Go components already cached and the Debian packages installed, and builds nothing", () => {
    // --no-build: were anything missing, fail rather than start a 10-minute build inside a test.
    const r = spawnSync('bash', ['scripts/setup/deps.sh', 'test', '--no-build'], { cwd: clone, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /building|installing/);
    assert.match(r.stderr, /^setup: Go components cached: kube-apiserver etcd kube-controller-manager echo-basic conformance.test helm /m);
  });

  test('the set-up refuses an unknown target with its usage', () => {
    const r = spawnSync('bash', ['scripts/setup/deps.sh', 'tests'], { cwd: clone, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: scripts\/setup\/deps\.sh test\|bench/);
  });
});
