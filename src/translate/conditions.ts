// What translation says about one object. Each object translated gets an ObjectReport; the kind translators record
// problems on it as they go (bad input is data, not an exception), and the report becomes the object's status:
// the `Accepted` and `ResolvedRefs` conditions, each True when nothing was recorded for it.
//
// Accepted is False as soon as any part of the object is not served as written — an invalid or conflicted rule, a
// bad annotation that fell back to its default — even when its other rules still serve. Status is where users look
// for what is wrong; a True that hides a rule that does not serve would send them elsewhere. The reason is that of
// the first problem recorded; the message lists every problem, each naming its field path, and says what still
// serves.
import type { Condition, ObjectMeta } from '../api/types.ts';
import type { ObjectStatus, StatusKind } from './snapshot.ts';
import { compareStrings } from './hostnames.ts';

/** Reasons of Accepted=False. */
export type NotAcceptedReason = 'Invalid' | 'Conflicted' | 'InvalidAnnotation';
/** Reasons of ResolvedRefs=False. */
export type UnresolvedReason = 'BackendNotFound' | 'SecretNotFound' | 'InvalidCertificate';
/**
 * Reasons of an Accepted=True that still has something to say: the object serves as written, but part of what it
 * says is ignored (an ingress-nginx annotation wsgate does not implement: ./ingress-nginx.ts). Such a condition gets
 * an Event and a log line as a False one does: nothing is ever silently ignored.
 */
export type WarningReason = 'UnsupportedAnnotation';
export const WARNING_REASONS: ReadonlySet<string> = new Set<WarningReason>(['UnsupportedAnnotation']);

/** A condition a person should see: False, or True with a warning reason. */
export function needsAttention(c: Pick<Condition, 'status' | 'reason'>): boolean {
  return c.status === 'False' || WARNING_REASONS.has(c.reason);
}

interface Problem<R extends string> {
  readonly reason: R;
  readonly message: string;
}

export class ObjectReport {
  readonly kind: StatusKind;
  readonly namespace: string;
  readonly name: string;
  /** `namespace/name`: the route label of everything this object contributes. */
  readonly key: string;
  /** Milliseconds since the epoch from metadata.creationTimestamp; +Infinity (newest) when absent or unparseable. */
  readonly created: number;
  readonly generation: number;
  readonly #notAccepted: Problem<NotAcceptedReason>[] = [];
  readonly #unresolved: Problem<UnresolvedReason>[] = [];
  readonly #warnings: Problem<WarningReason>[] = [];

  constructor(kind: StatusKind, metadata: ObjectMeta | undefined) {
    this.kind = kind;
    this.namespace = metadata?.namespace || 'default';
    this.name = metadata?.name ?? '';
    this.key = `${this.namespace}/${this.name}`;
    this.created = timestampMillis(metadata?.creationTimestamp);
    this.generation = typeof metadata?.generation === 'number' ? metadata.generation : 0;
  }

  /** `Kind namespace/name`, as messages name other objects. */
  get display(): string {
    return `${this.kind} ${this.key}`;
  }

  notAccepted(reason: NotAcceptedReason, message: string): void {
    push(this.#notAccepted, { reason, message });
  }

  unresolved(reason: UnresolvedReason, message: string): void {
    push(this.#unresolved, { reason, message });
  }

  /** Something ignored that does not stop the object from being accepted; said in the Accepted condition's message. */
  warn(reason: WarningReason, message: string): void {
    push(this.#warnings, { reason, message });
  }

  toStatus(): ObjectStatus {
    const accepted = condition('Accepted', this.#notAccepted, 'Accepted', `${this.kind} is accepted`);
    const warning = this.#warnings[0];
    if (warning !== undefined) {
      const warnings = this.#warnings.map((w) => w.message).join('; ');
      if (accepted.status === 'True') {
        accepted.reason = warning.reason;
        accepted.message = `${this.kind} is accepted, with warnings: ${warnings}`;
      } else {
        accepted.message = `${accepted.message}; ${warnings}`;
      }
    }
    const conditions: Condition[] = [accepted, condition('ResolvedRefs', this.#unresolved, 'ResolvedRefs', 'all references are resolved')];
    for (const c of conditions) c.observedGeneration = this.generation;
    return {
      kind: this.kind,
      namespace: this.namespace,
      name: this.name,
      observedGeneration: this.generation,
      conditions,
    };
  }
}

/** Adds a problem once: a route-level problem found again by each of its rules is said once. */
function push<R extends string>(list: Problem<R>[], p: Problem<R>): void {
  if (!list.some((q) => q.reason === p.reason && q.message === p.message)) list.push(p);
}

function condition(
  type: Condition['type'],
  problems: readonly Problem<string>[],
  okReason: string,
  okMessage: string,
): Condition {
  const first = problems[0];
  if (first === undefined) return { type, status: 'True', reason: okReason, message: okMessage };
  return { type, status: 'False', reason: first.reason, message: problems.map((p) => p.message).join('; ') };
}

function timestampMillis(value: unknown): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isFinite(ms) ? ms : Number.POSITIVE_INFINITY;
}

/**
 * Precedence between objects, as the Gateway API specifies: the oldest creationTimestamp wins, then
 * namespace/name in code-unit order, then kind (so that an Ingress and a WebSocketRoute of one name still order).
 */
export function compareObjects(a: ObjectReport, b: ObjectReport): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return compareStrings(a.key, b.key) || compareStrings(a.kind, b.kind);
}

/** The order of TranslateResult.statuses: kind, namespace, name. */
export function compareStatuses(a: ObjectStatus, b: ObjectStatus): number {
  return compareStrings(a.kind, b.kind) || compareStrings(a.namespace, b.namespace) || compareStrings(a.name, b.name);
}
