// The default of --workers: the CPUs this process may use, a container's cgroup v2 CPU limit included.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultWorkers } from '../../src/cluster/plane.ts';

const dir = mkdtempSync(join(tmpdir(), 'wsgate-cpu-max-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function cpuMax(content: string): string {
  const file = join(dir, `cpu.max.${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, content);
  return file;
}

describe('defaultWorkers', () => {
  test('uses every available core when the cgroup sets no limit', () => {
    assert.equal(defaultWorkers(cpuMax('max 100000\n')), availableParallelism());
  });
  test('uses every available core when there is no cgroup file', () => {
    assert.equal(defaultWorkers(join(dir, 'absent')), availableParallelism());
  });
  test('rounds a fractional CPU limit up, to at least one worker', () => {
    assert.equal(defaultWorkers(cpuMax('50000 100000\n')), 1);
    assert.equal(defaultWorkers(cpuMax('150000 100000\n')), Math.min(2, availableParallelism()));
  });
  test('never runs more workers than the cores it may use, whatever the limit says', () => {
    assert.equal(defaultWorkers(cpuMax(`${100000 * (availableParallelism() + 8)} 100000\n`)), availableParallelism());
  });
});
