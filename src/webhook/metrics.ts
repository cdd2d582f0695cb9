// The injector's metrics, in their own registry: it is a process of its own (`wsgate webhook`), with none of the
// data plane's series.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ADMISSION_RESULTS } from './review.ts';

export interface WebhookMetrics {
  readonly registry: Registry;
  /** Admissions answered, by result (injected, not_annotated, already_injected, bad_annotation, not_a_pod, malformed). */
  readonly admissions: Counter<'result'>;
  /** Unix time until which the serving certificate is valid. */
  readonly certificateExpiry: Gauge;
  /** caBundle updates of the MutatingWebhookConfiguration (self-signed mode), by result (success, failure). */
  readonly caBundleUpdates: Counter<'result'>;
}

export function createWebhookMetrics(version: string, opts: { defaultMetrics?: boolean } = {}): WebhookMetrics {
  const registry = new Registry();
  const registers = [registry];
  const m: WebhookMetrics = {
    registry,
    admissions: new Counter({
      name: 'wsgate_webhook_admissions_total',
      help: 'Pod admissions answered by the sidecar injector, by result; every one is allowed.',
      labelNames: ['result'],
      registers,
    }),
    certificateExpiry: new Gauge({
      name: 'wsgate_webhook_certificate_expiry_timestamp_seconds',
      help: 'Unix time at which the serving certificate expires.',
      registers,
    }),
    caBundleUpdates: new Counter({
      name: 'wsgate_webhook_ca_bundle_updates_total',
      help: 'Writes of the caBundle into the MutatingWebhookConfiguration (self-signed mode), by result.',
      labelNames: ['result'],
      registers,
    }),
  };
  for (const result of ADMISSION_RESULTS) m.admissions.inc({ result }, 0);
  new Gauge({ name: 'wsgate_build_info', help: 'Always 1; the version label says which wsgate is running.', labelNames: ['version'], registers }).set({ version }, 1);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'wsgate_' });
  return m;
}
