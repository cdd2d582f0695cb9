// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it. Every replica serves
// traffic; only the leader writes status and Events. Each `retryPeriodMs` (with jitter) a replica:
//
//   1. reads the Lease; creates it, holding it, when there is none;
//   2. if it holds it: renews (renewTime = now), with the resourceVersion read as a precondition. If renewals fail
//      for `renewDeadlineMs`, it steps down before the others may take over;
//   3. if another holds it: notes when the record last changed, by the local clock (never comparing clocks across
//      machines); once it has not changed for leaseDurationSeconds, or has no holder, takes it over (conflicts
//      settle who won).
//
// stop() releases a held Lease (holder cleared, duration 1 s) so that another replica takes over at its next try
// rather than after the lease expires. abandon() (tests only) stops without a word to the API server, as a crash
// would: the others take over once the lease expires.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../log/logger.ts';
import { describeError } from './informers.ts';

export interface LeaderElectorOptions {
  readonly kc: KubeConfig;
  readonly log: Logger;
  readonly namespace: string;
  /** The Lease's name (`--leader-election-id`). */
  readonly name: string;
  /** This replica's identity in holderIdentity: unique per process (pod name + random suffix). */
  readonly identity: string;
  /** [leaseDurationMs=15000] How long others wait after the last renewal they saw before taking over. */
  readonly leaseDurationMs?: number;
  /** [renewDeadlineMs=10000] A leader that could not renew for this long steps down. < leaseDurationMs. */
  readonly renewDeadlineMs?: number;
  /** [retryPeriodMs=2000] Time between tries (plus up to 20% jitter). */
  readonly retryPeriodMs?: number;
  /** Called on every change of leadership. */
  readonly onChange: (isLeader: boolean) => void;
}

export class LeaderElector {
  readonly #o: LeaderElectorOptions;
  readonly #api: CoordinationV1Api;
  readonly #log: Logger;
  #leader = false;
  #lastRenew = 0;
  /** The other holder's record as last seen, and when it was seen to change (local clock). */
  #observed: { record: string; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Steps down when no renewal succeeds within renewDeadlineMs, even if a request hangs. */
  #deadline: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  /** abandon() was called: leadership is never taken again, whatever a request in flight returns. */
  #abandoned = false;

  constructor(o: LeaderElectorOptions) {
    this.#o = o;
    this.#api = o.kc.makeApiClient(CoordinationV1Api);
    this.#log = o.log.child({ lease: `${o.namespace}/${o.name}`, identity: o.identity });
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#tick();
  }

  /** Stops trying; releases the Lease if held. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    await this.#running;
    if (!this.#leader) return;
    this.#setLeader(false);
    try {
      const lease = await this.#api.readNamespacedLease({ namespace: this.#o.namespace, name: this.#o.name });
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      const now = new V1MicroTime();
      lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now };
      await this.#api.replaceNamespacedLease({ namespace: this.#o.namespace, name: this.#o.name, body: lease });
      this.#log.info('leader lease released');
    } catch (err) {
      this.#log.warn({ err: describeError(err) }, 'leader lease not released; it expires instead');
    }
  }

  /**
   * For tests only: simulates a crash. Stops trying and forgets leadership at once, without releasing the Lease
   * and without calling onChange. Resolves once a request already in flight has settled, so that the Lease in the
   * API server is the last one this replica wrote. The other replicas take over once the Lease has not changed
   * for its duration.
   */
  async abandon(): Promise<void> {
    this.#stopped = true;
    this.#abandoned = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#leader = false;
    await this.#running;
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#running = this.#try()
      .catch((err: unknown) => this.#log.warn({ err: describeError(err) }, 'leader election failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#stopped) return;
        const period = this.#o.retryPeriodMs ?? 2000;
        this.#timer = setTimeout(() => this.#tick(), period + Math.random() * period * 0.2);
        this.#timer.unref();
      });
  }

  async #try(): Promise<void> {
    const { namespace, name, identity } = this.#o;
    const leaseDurationMs = this.#o.leaseDurationMs ?? 15_000;
    const renewDeadlineMs = this.#o.renewDeadlineMs ?? 10_000;
    try {
      let lease: V1Lease;
      try {
        lease = await this.#api.readNamespacedLease({ namespace, name });
      } catch (err) {
        if ((err as { code?: unknown }).code !== 404) throw err;
        const now = new V1MicroTime();
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.#renewed();
        return;
      }
      const spec = lease.spec ?? {};
      if (spec.holderIdentity === identity) {
        spec.renewTime = new V1MicroTime();
        spec.leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
        lease.spec = spec;
        await this.#api.replaceNamespacedLease({ namespace, name, body: lease });
        this.#renewed();
        return;
      }
      if (this.#leader) this.#setLeader(false); // someone else holds it: we lost it
      const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.leaseTransitions, lease.metadata?.resourceVersion]);
      const now = Date.now();
      if (this.#observed?.record !== record) this.#observed = { record, at: now };
      const duration = (spec.leaseDurationSeconds ?? Math.ceil(leaseDurationMs / 1000)) * 1000;
      const free = !spec.holderIdentity || now - this.#observed.at >= duration;
      if (!free) return;
      const t = new V1MicroTime();
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
        acquireTime: t,
        renewTime: t,
        leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
      };
      // The resourceVersion read is the precondition: if another replica got there first, this is a 409.
      await this.#api.replaceNamespacedLease({ namespace, name, body: lease });
      this.#renewed();
    } catch (err) {
      if (this.#leader && Date.now() - this.#lastRenew > renewDeadlineMs) {
        this.#log.warn({ err: describeError(err) }, 'leader lease not renewed in time; stepping down');
        this.#setLeader(false);
      } else if ((err as { code?: unknown }).code !== 409) {
        throw err;
      }
    }
  }

  #renewed(): void {
    if (this.#abandoned) return;
    this.#lastRenew = Date.now();
    this.#observed = undefined;
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      if (!this.#leader) return;
      this.#log.warn('leader lease not renewed in time; stepping down');
      this.#setLeader(false);
    }, this.#o.renewDeadlineMs ?? 10_000);
    this.#deadline.unref();
    if (!this.#leader) this.#setLeader(true);
  }

  #setLeader(leader: boolean): void {
    if (this.#abandoned) return;
    if (!leader) clearTimeout(this.#deadline);
    this.#leader = leader;
    this.#log.info({ leader }, leader ? 'became leader' : 'no longer leader');
    this.#o.onChange(leader);
  }
}
