// Flag values: parsing and the messages a user sees when one is wrong. A bad flag is a BadFlagError, which the
// entry point prints and turns into exit code 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import { LOG_LEVELS } from '../log/logger.ts';

export class BadFlagError extends WsgateError {
  constructor(message: string) {
    super(ErrorCodes.BAD_FLAG, message);
  }
}

/** `HOST:PORT`, `[IPV6]:PORT`, `:PORT` (all interfaces) or `off`. */
export function parseAddress(flag: string, value: string): ListenAddress | undefined {
  if (value === 'off') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new BadFlagError(`--${flag}=${value}: expected HOST:PORT (e.g. 0.0.0.0:8080, [::]:8080, :8080) or "off"`);
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** `10s`, `500ms`, `2m`, or a bare number of seconds. Returns milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new BadFlagError(`--${flag}=${value}: expected a duration such as 10s, 500ms or 2m`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

export function parseLogLevel(value: string): (typeof LOG_LEVELS)[number] {
  const l = LOG_LEVELS.find((x) => x === value);
  if (!l) throw new BadFlagError(`--log-level=${value}: expected one of ${LOG_LEVELS.join(', ')}`);
  return l;
}

export function parseName(flag: string, value: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value) || value.length > 253) {
    throw new BadFlagError(`--${flag}=${value}: expected a lower-case DNS name (e.g. wsgate)`);
  }
  return value;
}

/** An integer in [min, max]. */
export function parseCount(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new BadFlagError(`--${flag}=${value}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Parses a subcommand's flags strictly: an unknown flag or a missing value is a BadFlagError naming the help. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new BadFlagError(`${(err as Error).message.split('\n')[0]} (see: wsgate ${command} --help)`);
  }
}
