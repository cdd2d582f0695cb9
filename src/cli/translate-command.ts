// `wsgate translate -f PATH`: what a set of objects translates to, without running anything. Loaded by main.ts
// only when this command runs.
import { existsSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { ErrorCodes, WsgateError } from '../errors.ts';
import { loadConfig } from '../sources/files.ts';
import { snapshotFromObjects } from '../translate/objects.ts';
import { renderResult } from '../translate/render.ts';
import { translate } from '../translate/translate.ts';
import { BadFlagError, parseFlags, parseName } from './flags.ts';

const TRANSLATE_OPTIONS = {
  file: { type: 'string', short: 'f' },
  'ingress-class': { type: 'string', default: 'wsgate' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const TRANSLATE_USAGE = `Usage: wsgate translate -f PATH [flags]

Prints the routing table and the objects' statuses that the objects in a YAML file or directory translate to, as
\`wsgate serve\` and \`wsgate controller\` would build them. Problems go to stderr, one per line, and the exit code is 1.

Flags:
  -f, --file PATH            YAML file or directory (required)
  --ingress-class NAME       IngressClass whose Ingresses are translated (default wsgate)

Example: wsgate translate -f examples/quickstart/
`;

export async function runTranslate(args: string[]): Promise<void> {
  const v = parseFlags(args, TRANSLATE_OPTIONS, 'translate');
  if (v.help) {
    process.stdout.write(TRANSLATE_USAGE);
    return;
  }
  if (!v.file) throw new BadFlagError('translate needs -f PATH: a YAML file or a directory of YAML files');
  const ingressClass = parseName('ingress-class', v['ingress-class']);
  // Nothing to translate: say so, rather than print the empty table that no objects give (exit 1, as for any
  // configuration that cannot be read).
  if (!existsSync(v.file)) {
    throw new WsgateError(ErrorCodes.CONFIG_PARSE, `-f ${v.file}: no such file or directory; give a YAML file or a directory of them`);
  }
  const { objects, problems } = await loadConfig(v.file);
  for (const p of problems) {
    const where = [p.file, p.kind, p.namespace && p.name ? `${p.namespace}/${p.name}` : p.name, p.field].filter(Boolean).join(' ');
    process.stderr.write(`${p.code}: ${where}: ${p.message}\n`);
  }
  const result = translate(snapshotFromObjects(objects, ingressClass));
  process.stdout.write(renderResult(result));
  if (problems.length > 0) process.exitCode = 1;
}
