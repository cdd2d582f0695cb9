// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the functions with the most self time, as a share of the
// samples. `node bench/profile.ts FILE [N]` prints the top N (default 25).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
}

const REPO = new URL('..', import.meta.url).pathname;

export function summariseProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const self = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    total += hits;
    const { functionName, url, lineNumber } = n.callFrame;
    const where = url === '' ? '' : ` ${shorten(url)}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = [`${file}: ${total} samples`];
  for (const [name, hits] of rows) lines.push(`  ${((100 * hits) / total).toFixed(1).padStart(5)}%  ${name}`);
  return lines.join('\n');
}

function shorten(url: string): string {
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  return path.startsWith(REPO) ? relative(REPO, path) : path;
}

if (import.meta.main) {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: profile.ts FILE [N]');
  process.stdout.write(summariseProfile(file, Number(n ?? 25)) + '\n');
}
