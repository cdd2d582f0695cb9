// The WebSocket metrics of one route, resolved once as deferred series (metrics/deferred.ts), and the
// flush that the registry's sweep runs once a second for each session: counters accumulate in the trackers and
// sessions, never a prom-client call per frame.
import type { DeferredSeries } from '../metrics/deferred.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { WsSession } from './ws-session.ts';

export interface WsSeries {
  readonly messagesUp: DeferredSeries;
  readonly messagesDown: DeferredSeries;
  /** [direction 0 = upstream, 1 = downstream][kind 0 data, 1 ping, 2 pong, 3 close] */
  readonly frames: readonly (readonly DeferredSeries[])[];
  readonly keepaliveClient: DeferredSeries;
  readonly keepaliveBackend: DeferredSeries;
  readonly limitSize: DeferredSeries;
  readonly limitRate: DeferredSeries;
  readonly throttled: DeferredSeries;
  readonly protocolErrors: Map<string, DeferredSeries>;
  readonly closes: Map<string, DeferredSeries>;
}

const KINDS = ['data', 'ping', 'pong', 'close'] as const;

const INITIATORS = ['client', 'backend', 'wsgate', 'none'] as const;
const CODE_BUCKETS = ['1000', '1001', '1002', '1006', '1008', '1009', '1011', '4xxx', 'other'] as const;

export function wsSeries(m: Metrics, route: string): WsSeries {
  const frames = (direction: string): DeferredSeries[] => KINDS.map((kind) => m.deferred.wsFrames.series({ route, direction, kind }));
  // Every close series exists from the route's first WebSocket, at 0: a series born at its first increment hides
  // that increment from rate() and increase().
  const closes = new Map<string, DeferredSeries>();
  for (const initiator of INITIATORS) {
    for (const code of CODE_BUCKETS) {
      const c = m.deferred.wsCloses.series({ route, initiator, code });
      c.inc(0);
      closes.set(`${initiator}\0${code}`, c);
    }
  }
  return {
    messagesUp: m.deferred.wsMessages.series({ route, direction: 'upstream' }),
    messagesDown: m.deferred.wsMessages.series({ route, direction: 'downstream' }),
    frames: [frames('upstream'), frames('downstream')],
    keepaliveClient: m.deferred.wsKeepaliveTimeouts.series({ route, side: 'client' }),
    keepaliveBackend: m.deferred.wsKeepaliveTimeouts.series({ route, side: 'backend' }),
    limitSize: m.deferred.wsLimitCloses.series({ route, limit: 'message_size' }),
    limitRate: m.deferred.wsLimitCloses.series({ route, limit: 'message_rate' }),
    throttled: m.deferred.wsThrottledSeconds.series({ route }),
    protocolErrors: new Map(),
    closes,
  };
}

/** Adds what the session's trackers counted since the last flush to the metrics, and resets those counters. */
export function flushSession(m: Metrics, route: string, s: WsSeries, session: WsSession): void {
  for (let d = 0; d < 2; d++) {
    // A parked tracker has nothing to count (it was parked at rest, counters read).
    const t = session.tracker(d === 0);
    if (t === null) continue;
    if (t.messages > 0) {
      (d === 0 ? s.messagesUp : s.messagesDown).inc(t.messages);
      if (d === 0) session.messagesUp += t.messages;
      else session.messagesDown += t.messages;
      t.messages = 0;
    }
    const f = s.frames[d]!;
    if (t.dataFrames > 0) f[0]!.inc(t.dataFrames);
    if (t.pings > 0) f[1]!.inc(t.pings);
    if (t.pongs > 0) f[2]!.inc(t.pongs);
    if (t.closes > 0) f[3]!.inc(t.closes);
    t.dataFrames = 0;
    t.pings = 0;
    t.pongs = 0;
    t.closes = 0;
  }
  const ev = session.events;
  if (ev === undefined) return;
  session.events = undefined;
  if (ev.keepaliveTimeouts.client > 0) s.keepaliveClient.inc(ev.keepaliveTimeouts.client);
  if (ev.keepaliveTimeouts.backend > 0) s.keepaliveBackend.inc(ev.keepaliveTimeouts.backend);
  if (ev.limitCloses.message_size > 0) s.limitSize.inc(ev.limitCloses.message_size);
  if (ev.limitCloses.message_rate > 0) s.limitRate.inc(ev.limitCloses.message_rate);
  if (ev.throttledMs > 0) s.throttled.inc(ev.throttledMs / 1000);
  if (ev.protocolErrors) {
    for (const [reason, n] of ev.protocolErrors) {
      let c = s.protocolErrors.get(reason);
      if (!c) {
        c = m.deferred.wsProtocolErrors.series({ route, reason });
        s.protocolErrors.set(reason, c);
      }
      c.inc(n);
    }
  }
}

/** The close code as a bounded label: the codes that mean something to an operator, 4xxx, or other. */
export function closeCodeBucket(code: number): string {
  switch (code) {
    case 0:
      // No close frame was seen: the TCP connection ended without one (what a client reports as 1006).
      return '1006';
    case 1000:
    case 1001:
    case 1002:
    case 1006:
    case 1008:
    case 1009:
    case 1011:
      return String(code);
    default:
      return code >= 4000 && code <= 4999 ? '4xxx' : 'other';
  }
}

/** Counts how a WebSocket tunnel ended (wsgate_ws_closes_total). */
export function countClose(m: Metrics, route: string, s: WsSeries, session: WsSession): void {
  const code = closeCodeBucket(session.closeCode);
  const key = `${session.initiator}\0${code}`;
  let c = s.closes.get(key);
  if (!c) {
    c = m.deferred.wsCloses.series({ route, initiator: session.initiator, code });
    s.closes.set(key, c);
  }
  c.inc();
}
