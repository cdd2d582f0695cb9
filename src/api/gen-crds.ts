// Writes deploy/crds/*.yaml from ./crds.ts. Run with `npm run gen`; commit the result.
// test/api/crds.test.ts fails when the committed files differ from what this would write.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCrds, renderCrdYaml } from './crds.ts';

const outDir = join(import.meta.dirname, '..', '..', 'deploy', 'crds');
mkdirSync(outDir, { recursive: true });
for (const { file, crd } of allCrds()) {
  const path = join(outDir, file);
  writeFileSync(path, renderCrdYaml(crd));
  process.stdout.write(`wrote ${path}\n`);
}
