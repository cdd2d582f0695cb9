// Questions the primary puts to every worker at once (a table to apply, metrics, status) and the answers it collects:
// one entry per sequence number, settled when every worker asked has answered, has died, or the time is up.
import type { ToPrimary } from './messages.ts';

export interface Answer {
  readonly worker: number;
  readonly message: ToPrimary;
}

interface Pending {
  readonly waiting: Set<number>;
  readonly answers: Answer[];
  readonly resolve: (answers: Answer[]) => void;
  readonly timer: NodeJS.Timeout;
}

export class Requests {
  readonly #pending = new Map<number, Pending>();

  /**
   * Waits for an answer of sequence `seq` from each worker in `asked` (to whom the caller sends the question), for
   * at most timeoutMs; `onTimeout` is told which workers had not answered by then. Resolves with the answers.
   */
  ask(seq: number, asked: readonly number[], timeoutMs: number, onTimeout?: (late: number[]) => void): Promise<Answer[]> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(seq);
        if (p) onTimeout?.([...p.waiting]);
        this.#settle(seq);
      }, timeoutMs);
      timer.unref();
      this.#pending.set(seq, { waiting: new Set(asked), answers: [], resolve, timer });
      if (asked.length === 0) this.#settle(seq);
    });
  }

  /** A worker's answer; one not waited for (late, or never asked) is ignored. */
  answer(worker: number, seq: number, message: ToPrimary): void {
    const p = this.#pending.get(seq);
    if (!p || !p.waiting.delete(worker)) return;
    p.answers.push({ worker, message });
    if (p.waiting.size === 0) this.#settle(seq);
  }

  /** A worker died: whatever it was asked, it will not answer. */
  forget(worker: number): void {
    for (const [seq, p] of this.#pending) if (p.waiting.delete(worker) && p.waiting.size === 0) this.#settle(seq);
  }

  #settle(seq: number): void {
    const p = this.#pending.get(seq);
    if (!p) return;
    this.#pending.delete(seq);
    clearTimeout(p.timer);
    p.resolve(p.answers);
  }
}
