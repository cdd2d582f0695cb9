#!/usr/bin/env -S node --max-semi-space-size=2
// The wsgate command runs its TypeScript sources directly: Node 24 strips the types. The V8 flags on the first
// line are src/cli/node-flags.ts's (why: there).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `wsgate needs Node.js 24 or newer (this is ${process.version}). Run it through npm (npx wsgate, npm start), ` +
      'which uses the Node.js 24 installed as a devDependency, or install Node.js 24.\n',
  );
  process.exit(1);
}
// A checkout runs its sources; the container image, which ships dist/ (npm run build) and no src/, runs the
// compiled JavaScript, and so saves each process the type stripper's memory (tsconfig.build.json says why).
// WSGATE_COMPILED=1 runs dist/ in a checkout too: the benchmark measures what the image runs.
const { existsSync } = await import('node:fs');
const sources = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/cli/main.js', import.meta.url);
const entry = existsSync(sources) && process.env.WSGATE_COMPILED !== '1' ? sources : compiled;
const { main } = await import(entry.href);
await main(process.argv.slice(2));
