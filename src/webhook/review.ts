// AdmissionReview v1 in, AdmissionReview v1 out: pure. Always `allowed: true` — the injector never blocks a Pod;
// what it did not do is said in the result and the reason, which the server logs and counts.
import { mutatePod, type InjectOptions, type InjectResult, type Pod } from './mutate.ts';

/** The results counted in wsgate_webhook_admissions_total{result}: the mutation's, or why none was tried. */
export type AdmissionResult = InjectResult | 'not_a_pod' | 'malformed';

export const ADMISSION_RESULTS: readonly AdmissionResult[] = [
  'injected',
  'not_annotated',
  'already_injected',
  'bad_annotation',
  'not_a_pod',
  'malformed',
];

export interface AdmissionOutcome {
  /** The AdmissionReview to answer with; undefined when the request had no uid to answer (HTTP 400). */
  readonly review: Record<string, unknown> | undefined;
  readonly result: AdmissionResult;
  readonly reason: string;
  /** For the log line. */
  readonly namespace?: string;
  readonly pod?: string;
}

interface AdmissionRequest {
  uid?: unknown;
  kind?: { group?: string; kind?: string };
  operation?: string;
  namespace?: string;
  object?: unknown;
}

export function admit(body: unknown, options: InjectOptions): AdmissionOutcome {
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequest } | null;
  const request = review?.request;
  if (review?.kind !== 'AdmissionReview' || typeof request?.uid !== 'string') {
    return { review: undefined, result: 'malformed', reason: 'not an AdmissionReview with a request uid' };
  }
  const answer = (patch?: readonly unknown[]): Record<string, unknown> => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid: request.uid,
      allowed: true,
      ...(patch && patch.length > 0
        ? { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }
        : {}),
    },
  });
  const namespace = request.namespace;
  if (request.kind?.group !== '' || request.kind.kind !== 'Pod' || request.operation !== 'CREATE') {
    return {
      review: answer(),
      result: 'not_a_pod',
      reason: `${request.operation ?? '?'} of ${request.kind?.kind ?? '?'}: only Pod creations are injected`,
      ...(namespace ? { namespace } : {}),
    };
  }
  const pod = request.object as Pod | null;
  if (pod === null || typeof pod !== 'object') {
    return { review: answer(), result: 'malformed', reason: 'the request carries no Pod object', ...(namespace ? { namespace } : {}) };
  }
  const m = mutatePod(pod, options);
  // Pods of a ReplicaSet have no name yet at admission: only generateName.
  const name = pod.metadata?.name || (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : undefined);
  return {
    review: answer(m.patch),
    result: m.result,
    reason: m.reason,
    ...(namespace ? { namespace } : {}),
    ...(name ? { pod: name } : {}),
  };
}
