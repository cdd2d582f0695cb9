import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `check` returns a value other than undefined `times` times in a row (polling every `everyMs`), and
 * returns the last one; fails with `what` and the last error after `timeoutMs` (gateway-api's AwaitConvergence).
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  o: { timeoutMs?: number; times?: number; everyMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  const times = o.times ?? 3;
  let streak = 0;
  let last: unknown = 'never checked';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) {
        if (++streak >= times) return v;
      } else {
        streak = 0;
        last = 'not yet';
      }
    } catch (err) {
      streak = 0;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : String(last)})`);
    await sleep(o.everyMs ?? 200);
  }
}
