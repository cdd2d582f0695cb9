// Connection limits across workers: the primary holds the one count per pod (PrimaryBudget), workers ask it for a
// slot when a connection reaches a limited rule (WorkerBudget, the SlotBudget of their ConnectionLimits).
//
// The primary answers on its event loop at once, so a slot costs one IPC round trip; a worker that dies gives its
// slots back, as its connections died with it.
import { ConnectionLimits, type SlotBudget } from '../proxy/limits.ts';

/** The primary's side: the pod's count, and which worker holds which slot. */
export class PrimaryBudget {
  readonly #limits = new ConnectionLimits();
  /** Worker id → `routeId\0clientIP` → slots held. */
  readonly #held = new Map<number, Map<string, number>>();

  acquire(worker: number, routeId: string, clientIP: string, maxConnections: number, maxPerClient: number): boolean {
    if (!this.#limits.tryAcquireNow(routeId, clientIP, maxConnections, maxPerClient)) return false;
    let mine = this.#held.get(worker);
    if (mine === undefined) this.#held.set(worker, (mine = new Map<string, number>()));
    const key = `${routeId}\0${clientIP}`;
    mine.set(key, (mine.get(key) ?? 0) + 1);
    return true;
  }

  release(worker: number, routeId: string, clientIP: string): void {
    const mine = this.#held.get(worker);
    const key = `${routeId}\0${clientIP}`;
    const n = mine?.get(key) ?? 0;
    // Only what this worker holds: a stray release must not free another worker's slot.
    if (mine === undefined || n <= 0) return;
    if (n === 1) mine.delete(key);
    else mine.set(key, n - 1);
    this.#limits.release(routeId, clientIP);
  }

  /** A worker is gone: every slot it held is free again. Returns how many. */
  releaseWorker(worker: number): number {
    const mine = this.#held.get(worker);
    this.#held.delete(worker);
    let released = 0;
    for (const [key, n] of mine ?? []) {
      const [routeId = '', clientIP = ''] = key.split('\0');
      for (let i = 0; i < n; i++) this.#limits.release(routeId, clientIP);
      released += n;
    }
    return released;
  }

  /** Slots held on a rule across the pod. */
  active(routeId: string): number {
    return this.#limits.active(routeId);
  }
}

export type SlotRequest = {
  readonly type: 'acquire';
  readonly id: number;
  readonly routeId: string;
  readonly clientIP: string;
  readonly maxConnections: number;
  readonly maxPerClient: number;
};
export type SlotRelease = { readonly type: 'release'; readonly routeId: string; readonly clientIP: string };
export type SlotAnswer = { readonly type: 'slot'; readonly id: number; readonly granted: boolean };

/** The worker's side: a SlotBudget whose answers come from the primary. */
export class WorkerBudget implements SlotBudget {
  readonly #send: (m: SlotRequest | SlotRelease) => boolean;
  readonly #pending = new Map<number, (granted: boolean) => void>();
  #nextId = 0;

  /** `send` returns false when the primary cannot be reached (the channel is closed). */
  constructor(send: (m: SlotRequest | SlotRelease) => boolean) {
    this.#send = send;
  }

  acquire(routeId: string, clientIP: string, maxConnections: number, maxPerClient: number): Promise<boolean> {
    const id = ++this.#nextId;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      // Without the primary there is no count to take a slot from: refuse rather than exceed the limit.
      if (!this.#send({ type: 'acquire', id, routeId, clientIP, maxConnections, maxPerClient })) this.answer({ type: 'slot', id, granted: false });
    });
  }

  release(routeId: string, clientIP: string): void {
    this.#send({ type: 'release', routeId, clientIP });
  }

  /** The primary's answer to acquire(). */
  answer(m: SlotAnswer): void {
    const resolve = this.#pending.get(m.id);
    this.#pending.delete(m.id);
    resolve?.(m.granted);
  }

  /** The channel to the primary closed: every question still open is refused. */
  disconnected(): void {
    for (const resolve of this.#pending.values()) resolve(false);
    this.#pending.clear();
  }
}
