// A preload for the module-loading test (`node --import ./test/cli/record-modules.ts`): appends every module URL
// this process loads, ESM or CommonJS, to $WSGATE_MODULE_LOG as "PID URL" lines, the moment it loads. Data-plane
// workers inherit the --import through cluster.fork()'s execArgv, so their loads are recorded too.
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.WSGATE_MODULE_LOG;
if (out !== undefined) {
  const seen = new Set<string>();
  registerHooks({
    load(url, context, nextLoad) {
      if (!seen.has(url)) {
        seen.add(url);
        // Written at once, not at exit: a process that is killed still leaves its list.
        appendFileSync(out, `${process.pid} ${url}\n`);
      }
      return nextLoad(url, context);
    },
  });
}
