// Writes deploy/crds/*.yaml and the Helm chart's charts/wsgate/crds/*.yaml (the same bytes) from ./crds.ts. Run
// with `npm run gen`; commit the result. test/api/crds.test.ts fails when the committed files differ from what this
// would write.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCrds, renderCrdYaml } from './crds.ts';

const root = join(import.meta.dirname, '..', '..');
for (const outDir of [join(root, 'deploy', 'crds'), join(root, 'charts', 'wsgate', 'crds')]) {
  mkdirSync(outDir, { recursive: true });
  for (const { file, crd } of allCrds()) {
    const path = join(outDir, file);
    writeFileSync(path, renderCrdYaml(crd));
    process.stdout.write(`wrote ${path}\n`);
  }
}
