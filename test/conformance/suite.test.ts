// [issue 14] The Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance v1.6.3, the upstream Go tests)
// against wsgate, in `npm test`: `npm run conformance` (run.ts: a real cluster, the process kubelet as a test
// fixture, the wsgate controller and the proxies it provisions) with the GATEWAY-HTTP, GATEWAY-TLS and GATEWAY-TCP
// profiles and the features the GatewayClass publishes. It passes when the suite passes: every core test of the three
// profiles and every extended feature wsgate claims, HTTPRouteBackendProtocolWebSocket among them. And the report
// committed in docs/conformance/ must say what this run says, so that a change that moves a result refreshes it
// (docs/conformance/README.md says how).
// Needs root, iproute2 and the binaries of scripts/k8s/build.sh and scripts/conformance/build.sh (npm test builds them).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const COMMITTED = join(repoRoot, 'docs', 'conformance', 'report.yaml');

interface Results {
  result: string;
  statistics: { Failed: number; Passed: number; Skipped: number };
  failedTests?: string[];
  skippedTests?: string[];
  supportedFeatures?: string[];
}
interface Report {
  gatewayAPIVersion: string;
  profiles: ({ name: string; core: Results; extended?: Results })[];
}

/** What a report says, without its date and durations: per profile, the results of core and extended tests. */
function verdicts(r: Report): Record<string, unknown> {
  return Object.fromEntries(
    [...r.profiles]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((p) => [p.name, { core: p.core, ...(p.extended ? { extended: p.extended } : {}) }]),
  );
}

describe('the Gateway API conformance suite v1.6.3 against wsgate', { timeout: 20 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-conformance-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('passes GATEWAY-HTTP, GATEWAY-TLS and GATEWAY-TCP (core and every claimed extended feature), as docs/conformance/report.yaml says', { timeout: 20 * 60_000 }, async () => {
    const reportPath = join(dir, 'report.yaml');
    const outPath = join(dir, 'output.log');
    const out = openSync(outPath, 'w');
    const child = spawn(process.execPath, [join(repoRoot, 'test', 'conformance', 'run.ts'), '--report-output', reportPath], { cwd: repoRoot, stdio: ['ignore', out, out] });
    closeSync(out);
    const [code] = (await once(child, 'exit')) as [number | null];
    const tail = (): string => readFileSync(outPath, 'utf8').split('\n').filter((l) => /--- FAIL|^\[conformance|Error/.test(l)).slice(-40).join('\n');
    assert.equal(code, 0, `npm run conformance exited with ${String(code)}:\n${tail()}`);

    const report = parse(readFileSync(reportPath, 'utf8')) as Report;
    assert.equal(report.gatewayAPIVersion, 'v1.6.3');
    const byName = new Map(report.profiles.map((p) => [p.name, p]));
    for (const name of ['GATEWAY-HTTP', 'GATEWAY-TLS', 'GATEWAY-TCP']) {
      const p = byName.get(name);
      assert.ok(p, `${name} in the report`);
      assert.equal(p.core.result, 'success', `${name} core: ${JSON.stringify(p.core)}`);
      assert.equal(p.core.statistics.Failed, 0, name);
      assert.equal(p.core.statistics.Skipped, 0, `${name}: no core test skipped`);
      assert.ok(p.core.statistics.Passed > 0, name);
      if (p.extended) assert.equal(p.extended.result, 'success', `${name} extended: ${JSON.stringify(p.extended)}`);
    }
    assert.ok(byName.get('GATEWAY-HTTP')?.extended?.supportedFeatures?.includes('HTTPRouteBackendProtocolWebSocket'), 'the WebSocket feature claimed and tested');

    const committed = parse(readFileSync(COMMITTED, 'utf8')) as Report;
    assert.deepEqual(verdicts(committed), verdicts(report), 'docs/conformance/report.yaml is out of date: refresh it (docs/conformance/README.md)');
  });
});
