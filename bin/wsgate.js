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
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
