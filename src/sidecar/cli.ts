// `wsgate sidecar --upstream 127.0.0.1:PORT [flags]`: flags, checked strictly (a bad one is a BadFlagError, exit 2),
// and the process around startSidecar(): logger, metrics, signals.
import type { ParseArgsConfig } from 'node:util';
import { ON_EXCEED_ACTIONS, type OnExceedAction } from '../api/types.ts';
import { BadFlagError, parseAddress, parseCount, parseDuration, parseFlags, parseLogLevel } from '../cli/flags.ts';
import type { LOG_LEVELS } from '../log/logger.ts';
import { createLogger } from '../log/logger.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { DEFAULT_POLICY, type Endpoint, type Policy } from '../model/table.ts';
import type { ListenAddress } from '../proxy/l7.ts';
// The route policy's own checks: a sidecar flag accepts exactly what a WebSocketRoute field does.
import { framesNeededBy, ORIGIN, TOKEN, type FrameKnob } from '../translate/policy.ts';
import { startSidecar, type SidecarOptions } from './sidecar.ts';

// A metric label value people can read: a pod name, or namespace/name.
const ROUTE_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_./]{0,251}[A-Za-z0-9])?$/;

export const SIDECAR_DEFAULTS = {
  listen: '0.0.0.0:8800',
  adminAddr: '0.0.0.0:9800',
  drainDelay: '5s',
  drainTimeout: '30s',
} as const;

/** The frame flags' defaults, as flag values: DEFAULT_POLICY's. */
const FRAME_DEFAULTS = {
  keepaliveInterval: `${DEFAULT_POLICY.keepalive.intervalSeconds}s`,
  keepaliveTimeout: `${DEFAULT_POLICY.keepalive.timeoutSeconds}s`,
} as const;

export const SIDECAR_OPTIONS = {
  upstream: { type: 'string' },
  listen: { type: 'string', default: SIDECAR_DEFAULTS.listen },
  'admin-addr': { type: 'string', default: SIDECAR_DEFAULTS.adminAddr },
  name: { type: 'string' },
  'allowed-origin': { type: 'string', multiple: true },
  subprotocol: { type: 'string', multiple: true },
  'max-connections': { type: 'string', default: '0' },
  'max-connections-per-client': { type: 'string', default: '0' },
  'idle-timeout': { type: 'string', default: '0' },
  'connect-timeout': { type: 'string', default: '5s' },
  'handshake-timeout': { type: 'string', default: '10s' },
  'probe-interval': { type: 'string', default: '1s' },
  'inspect-frames': { type: 'boolean' },
  'no-inspect-frames': { type: 'boolean' },
  'keepalive-interval': { type: 'string', default: FRAME_DEFAULTS.keepaliveInterval },
  'keepalive-timeout': { type: 'string', default: FRAME_DEFAULTS.keepaliveTimeout },
  'keepalive-to-backend': { type: 'boolean' },
  'max-message-bytes': { type: 'string', default: '0' },
  'max-backend-message-bytes': { type: 'string', default: '0' },
  'max-messages-per-second': { type: 'string', default: '0' },
  'on-exceed': { type: 'string', default: DEFAULT_POLICY.onExceed },
  strict: { type: 'boolean' },
  'no-strict': { type: 'boolean' },
  'drain-delay': { type: 'string', default: SIDECAR_DEFAULTS.drainDelay },
  'drain-timeout': { type: 'string', default: SIDECAR_DEFAULTS.drainTimeout },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const SIDECAR_USAGE = `Usage: wsgate sidecar --upstream HOST:PORT [flags]

Proxies one app in its pod: every host and path on --listen go to --upstream, with the checks and limits of a
WebSocketRoute, and /readyz follows the app's port. On SIGTERM it turns unready, waits --drain-delay,
closes the listener and gives open tunnels --drain-timeout. \`wsgate webhook\` injects it into annotated pods.

Flags:
  --upstream HOST:PORT       where the app listens, e.g. 127.0.0.1:8080 (required)
  --listen HOST:PORT         where clients connect; the pod's port "wsgate" (default ${SIDECAR_DEFAULTS.listen})
  --admin-addr HOST:PORT     /metrics, /healthz, /readyz, /debug/routes, or "off" (default ${SIDECAR_DEFAULTS.adminAddr})
  --name NAME                route label in metrics and logs (default: $POD_NAME, else "sidecar")
  --allowed-origin ORIGIN    an Origin allowed to connect, repeatable (default: any)
  --subprotocol P            a Sec-WebSocket-Protocol allowed, repeatable (default: pass through)
  --max-connections N        live connections, 0 = unlimited (default 0)
  --max-connections-per-client N   live connections per client IP, 0 = unlimited (default 0)
  --idle-timeout DUR         close a tunnel after this long without a byte either way, 0 = never (default 0)
  --connect-timeout DUR      TCP connect to the app (default 5s)
  --handshake-timeout DUR    time for a client's request head and the app's handshake answer (default 10s)
  --probe-interval DUR       how often the app's port is checked for readiness (default 1s)
  --no-inspect-frames        relay bytes without tracking WebSocket frames: no keepalive, message limits or close
                             frames (default: --inspect-frames)
  --keepalive-interval DUR   ping a client that sent nothing for this long, whole seconds, 0 = off (default ${FRAME_DEFAULTS.keepaliveInterval})
  --keepalive-timeout DUR    a pinged side that sends nothing for this long is closed as dead (default ${FRAME_DEFAULTS.keepaliveTimeout})
  --keepalive-to-backend     ping the app too, not only clients (default: off)
  --max-message-bytes N      largest client→app message, bytes on the wire, 0 = no limit (default 0; 1 MiB
                             is 1048576)
  --max-backend-message-bytes N   largest app→client message, bytes on the wire, 0 = no limit (default 0)
  --max-messages-per-second N     client→app messages per second per connection, 0 = no limit (default 0)
  --on-exceed ACTION         over the message rate: Throttle (pause reading) or Close (1008) (default Throttle)
  --no-strict                count WebSocket protocol violations and pass the frames on, instead of closing
                             (default: --strict)
  --drain-delay DUR          on SIGTERM, time between readiness false and the listener closing (default ${SIDECAR_DEFAULTS.drainDelay})
  --drain-timeout DUR        then, time open tunnels get to end before they are closed (default ${SIDECAR_DEFAULTS.drainTimeout})
  --log-level LEVEL          fatal, error, warn, info, debug, trace or silent (default info)

Example: wsgate sidecar --upstream 127.0.0.1:8080 --allowed-origin https://app.example.com
`;

export type SidecarFlags = Omit<SidecarOptions, 'log' | 'metrics'> & { readonly logLevel: (typeof LOG_LEVELS)[number] };

/** Checks and converts the flags; `env` supplies POD_NAME (the downward API) for the default --name. */
export function parseSidecarFlags(args: string[], env: NodeJS.ProcessEnv = process.env): { help: true } | ({ help: false } & SidecarFlags) {
  const v = parseFlags(args, SIDECAR_OPTIONS, 'sidecar');
  if (v.help) return { help: true };
  if (v.upstream === undefined) throw new BadFlagError('sidecar needs --upstream HOST:PORT: where the app listens, e.g. 127.0.0.1:8080');
  const upstream = required('upstream', v.upstream);
  const listen = required('listen', v.listen);
  const adminAddr = parseAddress('admin-addr', v['admin-addr']);
  const name = v.name ?? (env.POD_NAME || 'sidecar');
  if (!ROUTE_NAME.test(name)) {
    throw new BadFlagError(`--name=${name}: expected letters, digits, and - _ . / inside (e.g. chat or prod/chat)`);
  }
  const allowedOrigins = (v['allowed-origin'] ?? []).map((o) => {
    const lower = o.trim().toLowerCase();
    if (!ORIGIN.test(lower) && lower !== '*') {
      throw new BadFlagError(`--allowed-origin=${o}: expected scheme://host[:port], as browsers send it (e.g. https://app.example.com)`);
    }
    return lower;
  });
  const subprotocols = (v.subprotocol ?? []).map((p) => {
    if (!TOKEN.test(p)) throw new BadFlagError(`--subprotocol=${p}: expected a token such as chat.v1 (no spaces or commas)`);
    return p;
  });
  const seconds = (flag: string, value: string): number => parseDuration(flag, value) / 1000;
  const connectTimeoutSeconds = seconds('connect-timeout', v['connect-timeout']);
  if (connectTimeoutSeconds <= 0) throw new BadFlagError(`--connect-timeout=${v['connect-timeout']}: must be more than 0`);
  const handshakeTimeoutMs = parseDuration('handshake-timeout', v['handshake-timeout']);
  if (handshakeTimeoutMs <= 0) throw new BadFlagError(`--handshake-timeout=${v['handshake-timeout']}: must be more than 0`);
  const probeIntervalMs = parseDuration('probe-interval', v['probe-interval']);
  if (probeIntervalMs <= 0) throw new BadFlagError(`--probe-interval=${v['probe-interval']}: must be more than 0`);
  const policy: Policy = {
    ...DEFAULT_POLICY,
    idleTimeoutSeconds: seconds('idle-timeout', v['idle-timeout']),
    connectTimeoutSeconds,
    maxConnections: parseCount('max-connections', v['max-connections'], 0, 1_000_000_000),
    maxConnectionsPerClient: parseCount('max-connections-per-client', v['max-connections-per-client'], 0, 1_000_000_000),
    allowedOrigins,
    subprotocols,
    ...frameFlags(v),
  };
  return {
    help: false,
    name,
    upstream,
    listen,
    ...(adminAddr ? { adminAddr } : {}),
    policy,
    handshakeTimeoutMs,
    probeIntervalMs,
    drainDelayMs: parseDuration('drain-delay', v['drain-delay']),
    drainTimeoutMs: parseDuration('drain-timeout', v['drain-timeout']),
    logLevel: parseLogLevel(v['log-level']),
  };
}

type FrameFlagValues = {
  readonly 'inspect-frames'?: boolean | undefined;
  readonly 'no-inspect-frames'?: boolean | undefined;
  readonly 'keepalive-interval': string;
  readonly 'keepalive-timeout': string;
  readonly 'keepalive-to-backend'?: boolean | undefined;
  readonly 'max-message-bytes': string;
  readonly 'max-backend-message-bytes': string;
  readonly 'max-messages-per-second': string;
  readonly 'on-exceed': string;
  readonly strict?: boolean | undefined;
  readonly 'no-strict'?: boolean | undefined;
};

/**
 * The WebSocket frame knobs (issue 10), checked as a WebSocketRoute's are: whole seconds, whole bytes, and
 * --no-inspect-frames never with a flag that needs frames (a message limit, a keepalive other than the default or off).
 */
function frameFlags(v: FrameFlagValues): Pick<
  Policy,
  'inspectFrames' | 'keepalive' | 'maxMessageBytes' | 'maxBackendMessageBytes' | 'maxMessagesPerSecond' | 'onExceed' | 'strict'
> {
  const inspectFrames = onOff(v, 'inspect-frames', DEFAULT_POLICY.inspectFrames);
  const strict = onOff(v, 'strict', DEFAULT_POLICY.strict);
  const onExceed = v['on-exceed'];
  if (!ON_EXCEED_ACTIONS.includes(onExceed as OnExceedAction)) {
    throw new BadFlagError(`--on-exceed=${onExceed}: expected ${ON_EXCEED_ACTIONS.join(' or ')}`);
  }
  const frames = {
    inspectFrames,
    keepalive: {
      intervalSeconds: wholeSeconds('keepalive-interval', v['keepalive-interval'], 0, '0 = no keepalive'),
      timeoutSeconds: wholeSeconds('keepalive-timeout', v['keepalive-timeout'], 1, 'at least 1s'),
      toBackend: v['keepalive-to-backend'] === true,
    },
    maxMessageBytes: bytes('max-message-bytes', v['max-message-bytes'], 'e.g. 1048576 for 1 MiB'),
    maxBackendMessageBytes: bytes('max-backend-message-bytes', v['max-backend-message-bytes'], 'e.g. 16777216 for 16 MiB'),
    maxMessagesPerSecond: parseCount('max-messages-per-second', v['max-messages-per-second'], 0, 1_000_000_000),
    onExceed: onExceed as OnExceedAction,
    strict,
  };
  const needed = inspectFrames ? [] : framesNeededBy({ ...DEFAULT_POLICY, ...frames });
  if (needed.length > 0) {
    const given = needed.flatMap((knob) => FRAME_KNOB_FLAGS[knob].filter((f) => v[f] !== undefined && v[f] !== FLAG_DEFAULTS[f]));
    const flags = given.map((f) => (typeof v[f] === 'string' ? `--${f}=${v[f]}` : `--${f}`)).join(', ');
    throw new BadFlagError(
      `--no-inspect-frames relays bytes without tracking frames, so it cannot apply ${flags}: remove ${given.length === 1 ? 'it' : 'them'}, or --no-inspect-frames`,
    );
  }
  return frames;
}

/** The flags behind each knob that needs frames, for the message of a conflict. */
const FRAME_KNOB_FLAGS: Readonly<Record<FrameKnob, readonly (keyof FrameFlagValues)[]>> = {
  maxMessageBytes: ['max-message-bytes'],
  maxBackendMessageBytes: ['max-backend-message-bytes'],
  maxMessagesPerSecond: ['max-messages-per-second'],
  keepalive: ['keepalive-interval', 'keepalive-timeout', 'keepalive-to-backend'],
};
const FLAG_DEFAULTS: Partial<Record<keyof FrameFlagValues, string>> = {
  'keepalive-interval': FRAME_DEFAULTS.keepaliveInterval,
  'keepalive-timeout': FRAME_DEFAULTS.keepaliveTimeout,
  'max-message-bytes': '0',
  'max-backend-message-bytes': '0',
  'max-messages-per-second': '0',
};

/** `--NAME` / `--no-NAME`: the one given, else the default; both is an error. */
function onOff(v: FrameFlagValues, name: 'inspect-frames' | 'strict', fallback: boolean): boolean {
  const on = v[name] === true;
  const off = v[`no-${name}`] === true;
  if (on && off) throw new BadFlagError(`--${name} and --no-${name}: give one of them`);
  return on ? true : off ? false : fallback;
}

/** A duration in whole seconds >= min, as the route's keepalive fields are. */
function wholeSeconds(flag: string, value: string, min: number, hint: string): number {
  const ms = parseDuration(flag, value);
  if (ms % 1000 !== 0 || ms / 1000 < min) throw new BadFlagError(`--${flag}=${value}: expected whole seconds, e.g. 30s (${hint})`);
  return ms / 1000;
}

function bytes(flag: string, value: string, example: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new BadFlagError(`--${flag}=${value}: expected a whole number of bytes, ${example} (0 = no limit)`);
  }
  return n;
}

/** An address that cannot be "off" and needs a real port. */
function required(flag: string, value: string): ListenAddress & Endpoint {
  const a = parseAddress(flag, value);
  if (a === undefined || a.port === 0) throw new BadFlagError(`--${flag}=${value}: expected HOST:PORT with a port from 1 to 65535`);
  return { address: a.host, host: a.host, port: a.port };
}

export async function runSidecar(args: string[], o: { version: string }): Promise<void> {
  const flags = parseSidecarFlags(args);
  if (flags.help) {
    process.stdout.write(SIDECAR_USAGE);
    return;
  }
  const { logLevel, ...options } = flags;
  const log = createLogger(logLevel);
  const sidecar = await startSidecar({ ...options, log, metrics: createMetrics(o.version) });
  const a = sidecar.addresses();
  log.info(
    { name: options.name, listen: a.listen, admin: a.admin, upstream: `${options.upstream.address}:${options.upstream.port}`, version: o.version },
    'wsgate sidecar serving',
  );
  let signals = 0;
  const onSignal = (signal: string): void => {
    signals++;
    if (signals > 1) log.warn({ signal }, 'second signal: closing every tunnel now');
    else log.info({ signal }, 'signal received');
    void sidecar.drain().then(() => {
      log.flush();
      process.exitCode = 0;
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
