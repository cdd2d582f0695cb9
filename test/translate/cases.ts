// The golden cases: `testdata/<case>.in.yaml` (multi-document YAML of objects) and `<case>.out.yaml` (what
// renderResult prints for them). The leading `#` comment of an input says what the case shows.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const TESTDATA = join(import.meta.dirname, 'testdata');

export interface GoldenCase {
  readonly name: string;
  /** The input's leading comment, one line. */
  readonly description: string;
  readonly objects: readonly unknown[];
  readonly outPath: string;
}

export function loadCases(): GoldenCase[] {
  return readdirSync(TESTDATA)
    .filter((f) => f.endsWith('.in.yaml'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.in.yaml'.length);
      const text = readFileSync(join(TESTDATA, f), 'utf8');
      const docs = parseAllDocuments(text);
      if (!Array.isArray(docs)) throw new Error(`${f}: not a YAML stream`);
      for (const d of docs) if (d.errors.length > 0) throw new Error(`${f}: ${d.errors[0]?.message}`);
      const description = text
        .split('\n')
        .filter((line) => line.startsWith('#'))
        .map((line) => line.replace(/^#\s?/, ''))
        .join(' ')
        .split('. ')[0] ?? name;
      return {
        name,
        description,
        objects: docs.map((d) => d.toJS() as unknown).filter((o) => o !== null),
        outPath: join(TESTDATA, `${name}.out.yaml`),
      };
    });
}
