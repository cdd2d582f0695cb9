// Request-target and Host normalisation: the one place where what a client sent becomes what wsgate routes on and
// what the backend receives. Pure (no sockets, logger, metrics or clock); called once per request, at the edge, and
// everything downstream sees only the normalised form (a backend never receives a path wsgate did not route on).
//
// normalizeTarget(target, options) takes the request-target exactly as llhttp delivered it (`req.url`, a latin1
// string) and returns either the normalised path and query, or a 400 with a stable snake_case reason. The steps, in
// order (numbers are referred to below):
//
//  1. Form (RFC 9112 §3.2). Origin-form `/p?q` is the normal case. Absolute-form `http://host:port/p?q` (§3.2.2) is
//     accepted for the schemes http and https: its authority is returned lower-cased and normalised (see
//     normalizeHost), userinfo (`user@host`) is refused (`userinfo`, as RFC 9110 §4.2.4 says a recipient should
//     treat it as an error), an empty path becomes `/`, and the backend is always sent origin-form (`changed` is
//     true). Asterisk-form `*` (OPTIONS only; llhttp passes it for any method) names no resource to route on and
//     is refused (`asterisk_form`); authority-form `host:port` (CONNECT only; llhttp refuses it for other methods)
//     is refused (`authority_form`). Anything else is `bad_target`.
//  2. A fragment is refused (`fragment`): llhttp passes `#` through (`GET /a#b` gives req.url `/a#b`), browsers never
//     send one, and Envoy rejects it by default. A raw NUL anywhere is `nul`; other control characters, space, DEL
//     and any byte above 0x7E anywhere are `bad_character` (llhttp's strict parser already refuses them, so they
//     only reach this function from a lenient parser or another caller; we refuse rather than guess an encoding).
//  3. The target is split at the first `?`. The query is never decoded, re-encoded or otherwise changed.
//  4. One percent-decoding pass over the path: `%XX` of an unreserved character (ALPHA DIGIT - . _ ~, RFC 3986
//     §2.3) is decoded; every other `%XX` keeps its encoding with its hex digits upper-cased (§6.2.2.1). A `%` not
//     followed by two hex digits is `bad_percent_encoding`; `%00` is `nul`. Only one pass: `%252e` is `%25` then
//     the literal `2e`, never a dot. Overlong UTF-8 (`%c0%ae`) is not unreserved, so it stays encoded (`%C0%AE`).
//     Encoded slashes follow options.escapedSlashes: `%2F` → `encoded_slash` ('reject', the default), `%2F`
//     ('keep'), or `/` ('decode', after which it separates segments); `%5C` likewise (`encoded_backslash`, `%5C`,
//     or a raw backslash that step 5 then handles).
//  5. A raw backslash follows options.backslash: `backslash` ('reject', the default) or `/` ('slash'). llhttp
//     passes `\` through (`GET /a\..\b` gives req.url `/a\..\b`); Windows servers and Chromium treat it as `/`.
//  6. Dot-segment removal, RFC 3986 §5.2.4: `/a/./b` → `/a/b`, `/a/b/../c` → `/a/c`, a trailing `.` or `..` leaves a
//     trailing slash, and `..` above the root is dropped (`/../x` → `/x`). A dot segment carrying path parameters
//     (`..;jsessionid=x`, `.;x`) counts as `..` / `.`: Tomcat and other servlet containers strip `;params` before
//     resolving dot segments, so `/public/..;/admin` reaches their `/admin` while a proxy that kept the segment
//     routed it as `/public/...`. Other `;` parameters are left alone.
//  7. options.mergeSlashes (default false) replaces each run of `/` with one.
//
// Where Envoy and nginx differ, what wsgate does and why:
//  - Which escapes are decoded. nginx decodes every `%XX` before matching locations (so `%2F` is a separator and
//    `%3F` a literal `?`); Envoy's normalize_path (Chromium's URL canonicaliser) decodes only unreserved characters
//    and leaves the rest as sent. wsgate follows Envoy, and also upper-cases the hex (RFC 3986 §6.2.2.1), so that
//    `%c3%a9` and `%C3%A9` route alike; Envoy keeps the case as sent.
//  - Invalid escapes (`%G1`, a trailing `%`): nginx refuses with 400, Envoy passes them on. wsgate refuses (nginx).
//  - Encoded slashes: Envoy's path_with_escaped_slashes_action (KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_FORWARD)
//    is options.escapedSlashes, but wsgate's default is 'reject': a route on `/public` must not receive
//    `/public/..%2Fadmin`, which some backends decode and resolve to `/admin`.
//  - Backslash: Chromium (hence Envoy) turns `\` into `/`; nginx on Unix treats it as an ordinary character.
//    wsgate refuses it by default (neither of the two silently wins against a backend that does the other), and
//    options.backslash: 'slash' gives Envoy's behaviour.
//  - `..` above the root: nginx refuses with 400, Envoy and RFC 3986 clamp to `/`. wsgate clamps (Envoy, RFC).
//  - Dot segments with parameters: nginx treats `..;` as an ordinary segment; Envoy strips the parameters since
//    its fix for CVE-2026-73551 (`envoy.reloadable_features.strip_dotdot_segments_with_parameters`). wsgate
//    follows Envoy, and does it after step 4, so `%2e%2e;x` is caught too.
//  - Order of merge and dot removal: nginx merges slashes while it resolves dots (`/a//..` → `/`); Envoy resolves
//    dots first and merges after (`/a//..` → `/a/`). wsgate follows Envoy; the backend receives the same path that
//    was routed on, so either order is consistent.
//
// normalizeHost(host) normalises a Host header or an absolute-form authority for routing; see its comment.
import { isIPv6 } from 'node:net';

/** Stable reasons a request-target or Host is refused; metric labels and docs/errors.md use these names. */
export type TargetRejectReason =
  | 'bad_target'
  | 'asterisk_form'
  | 'authority_form'
  | 'userinfo'
  | 'fragment'
  | 'nul'
  | 'bad_character'
  | 'bad_percent_encoding'
  | 'encoded_slash'
  | 'encoded_backslash'
  | 'backslash'
  | HostRejectReason;

export type HostRejectReason = 'missing_host' | 'bad_host' | 'bad_port';

export interface TargetRejection {
  readonly ok: false;
  readonly status: 400;
  readonly reason: TargetRejectReason;
  readonly message: string;
}

export interface HostRejection extends TargetRejection {
  readonly reason: HostRejectReason;
}

/** One frozen rejection per reason: refusing a request allocates nothing. */
export const TARGET_REJECTIONS = {
  bad_target: rejection('bad_target', 'Malformed request-target'),
  asterisk_form: rejection('asterisk_form', 'The asterisk-form request-target names no resource'),
  authority_form: rejection('authority_form', 'The authority-form request-target is only for CONNECT'),
  userinfo: rejection('userinfo', 'The request-target must not carry userinfo'),
  fragment: rejection('fragment', 'The request-target must not carry a fragment'),
  nul: rejection('nul', 'The request-target contains a NUL character'),
  bad_character: rejection('bad_character', 'The request-target contains a character that is not allowed'),
  bad_percent_encoding: rejection('bad_percent_encoding', 'The path contains an invalid percent-encoding'),
  encoded_slash: rejection('encoded_slash', 'The path contains an encoded slash (%2F)'),
  encoded_backslash: rejection('encoded_backslash', 'The path contains an encoded backslash (%5C)'),
  backslash: rejection('backslash', 'The path contains a backslash'),
  missing_host: rejection('missing_host', 'The request has no host'),
  bad_host: rejection('bad_host', 'The host is not a valid host name or IP literal'),
  bad_port: rejection('bad_port', 'The port is not a number between 1 and 65535'),
} as const satisfies { [R in TargetRejectReason]: TargetRejection };

function rejection<R extends TargetRejectReason>(reason: R, message: string) {
  return Object.freeze({ ok: false, status: 400, reason, message } as const);
}

export interface NormalizeOptions {
  /**
   * `%2F` and `%5C` in the path. [default 'reject'] 'reject': 400 `encoded_slash` / `encoded_backslash`.
   * 'keep': left encoded (hex upper-cased); never a segment separator. 'decode': `%2F` becomes `/` and separates
   * segments, `%5C` becomes `\` and is then subject to `backslash`.
   */
  readonly escapedSlashes?: 'reject' | 'keep' | 'decode';
  /** A raw `\` in the path. [default 'reject'] 'reject': 400 `backslash`. 'slash': read as `/`. */
  readonly backslash?: 'reject' | 'slash';
  /** Replace each run of `/` in the path with one, after dot-segment removal. [default false] */
  readonly mergeSlashes?: boolean;
}

export interface NormalizedTarget {
  readonly ok: true;
  /** The normalised path: starts with `/`, holds no dot segment, no raw `\`, no `%` but valid upper-case `%XX`. */
  readonly path: string;
  /** The query exactly as received, with its leading `?`; `''` when there is none (`/a?` keeps `?`). */
  readonly query: string;
  readonly form: 'origin' | 'absolute';
  /** Absolute-form only: the normalised authority, `host` or `host:port` (IPv6 as `[::1]:8080`). */
  readonly authority?: string;
  /** Whether the backend must be sent `path + query` instead of the target as received. */
  readonly changed: boolean;
}

export type TargetResult = NormalizedTarget | TargetRejection;

/** Normalises a request-target as received from llhttp (`req.url`). See the file header for the steps. */
export function normalizeTarget(target: string, options: NormalizeOptions = {}): TargetResult {
  // Step 2 over the whole target: these are refused wherever they appear, query included.
  const bad = FORBIDDEN.exec(target);
  if (bad !== null) return TARGET_REJECTIONS[forbiddenReason(bad[0].charCodeAt(0))];

  let form: 'origin' | 'absolute' = 'origin';
  let authority: string | undefined;
  let rest = target;
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    if (target === '*') return TARGET_REJECTIONS.asterisk_form;
    const abs = ABSOLUTE.exec(target);
    if (abs === null) return TARGET_REJECTIONS[AUTHORITY_FORM.test(target) ? 'authority_form' : 'bad_target'];
    const scheme = abs[1]!.toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return TARGET_REJECTIONS.bad_target;
    const auth = abs[2]!;
    if (auth.includes('@')) return TARGET_REJECTIONS.userinfo;
    const host = normalizeHost(auth);
    if (!host.ok) return host;
    authority = host.port === undefined ? host.hostname : `${host.hostname}:${host.port}`;
    form = 'absolute';
    rest = target.slice(abs[0].length);
    if (rest.charCodeAt(0) !== 0x2f) rest = '/' + rest; // `http://h` and `http://h?q` have an empty path
  }

  const q = rest.indexOf('?');
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q);
  const path = normalizePath(rawPath, options);
  if (typeof path !== 'string') return path;
  const changed = form === 'absolute' || path !== rawPath;
  return authority === undefined
    ? { ok: true, path, query, form, changed }
    : { ok: true, path, query, form, authority, changed };
}

// Anything that is refused wherever it appears in a target (step 2). Bytes above 0x7E include every latin1 byte a
// lenient parser could hand over.
const FORBIDDEN = /[\x00-\x20#\x7f-\uffff]/;

function forbiddenReason(c: number): 'nul' | 'fragment' | 'bad_character' {
  return c === 0 ? 'nul' : c === 0x23 ? 'fragment' : 'bad_character';
}

// scheme "://" authority; the authority ends at the path, the query, or the end (a fragment was refused above).
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)/;
// host:port with no path (CONNECT's authority-form, RFC 9112 §3.2.3), also `[v6]:port`.
const AUTHORITY_FORM = /^(?:\[[^\]/]*\]|[^/?:[\]]+):[0-9]*$/;

// Characters that make a path need the slow path: an escape, a backslash, a dot segment (with or without
// parameters), or (when merging) a double slash. Everything else is returned as it came, without a copy.
const NEEDS_WORK = /[%\\]|\/\.\.?(?:[/;]|$)/;

const HEX = '0123456789ABCDEF';
const ESCAPED_SLASHES = { reject: 0, keep: 1, decode: 2 } as const;

/** Steps 4–7 on a path that starts with `/` and passed step 2. Returns the path or the rejection. */
function normalizePath(raw: string, options: NormalizeOptions): string | TargetRejection {
  const merge = options.mergeSlashes === true;
  if (!NEEDS_WORK.test(raw) && !(merge && raw.includes('//'))) return raw;
  const escaped = ESCAPED_SLASHES[options.escapedSlashes ?? 'reject'];
  const slashForBackslash = options.backslash === 'slash';

  // Steps 4 and 5: one left-to-right pass.
  let out = '';
  let copied = 0; // raw[copied, i) is still to be appended unchanged
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return TARGET_REJECTIONS.bad_percent_encoding;
      const v = (hi << 4) | lo;
      let piece: string;
      if (v === 0) return TARGET_REJECTIONS.nul;
      if (isUnreserved(v)) piece = String.fromCharCode(v);
      else if (v === 0x2f) {
        if (escaped === ESCAPED_SLASHES.reject) return TARGET_REJECTIONS.encoded_slash;
        piece = escaped === ESCAPED_SLASHES.keep ? '%2F' : '/';
      } else if (v === 0x5c) {
        if (escaped === ESCAPED_SLASHES.reject) return TARGET_REJECTIONS.encoded_backslash;
        if (escaped === ESCAPED_SLASHES.keep) piece = '%5C';
        else if (slashForBackslash) piece = '/';
        else return TARGET_REJECTIONS.backslash;
      } else piece = '%' + HEX[v >> 4]! + HEX[v & 15]!;
      out += raw.slice(copied, i) + piece;
      i += 2;
      copied = i + 1;
    } else if (c === 0x5c /* \ */) {
      if (!slashForBackslash) return TARGET_REJECTIONS.backslash;
      out += raw.slice(copied, i) + '/';
      copied = i + 1;
    }
  }
  out += raw.slice(copied);

  // Step 6. Segments after the leading `/`; a `.` or `..` that ends the path leaves an empty last segment, which
  // keeps the trailing slash RFC 3986 §5.2.4 produces.
  const segments = out.slice(1).split('/');
  const kept: string[] = [];
  const last = segments.length - 1;
  for (let s = 0; s <= last; s++) {
    const seg = segments[s]!;
    const dots = dotSegment(seg);
    if (dots === 0) kept.push(seg);
    else {
      if (dots === 2) kept.pop();
      if (s === last) kept.push('');
    }
  }
  let path = '/' + kept.join('/');

  // Step 7.
  if (merge) path = path.replace(MULTI_SLASH, '/');
  return path;
}

const MULTI_SLASH = /\/{2,}/g;

/** 1 for `.` or `.;params`, 2 for `..` or `..;params`, 0 for any other segment. */
function dotSegment(seg: string): 0 | 1 | 2 {
  if (seg.charCodeAt(0) !== 0x2e) return 0;
  if (seg.length === 1 || seg.charCodeAt(1) === 0x3b /* ; */) return 1;
  if (seg.charCodeAt(1) === 0x2e && (seg.length === 2 || seg.charCodeAt(2) === 0x3b)) return 2;
  return 0;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1; // also NaN past the end of the string
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
function isUnreserved(v: number): boolean {
  return (
    (v >= 0x41 && v <= 0x5a) ||
    (v >= 0x61 && v <= 0x7a) ||
    (v >= 0x30 && v <= 0x39) ||
    v === 0x2d ||
    v === 0x2e ||
    v === 0x5f ||
    v === 0x7e
  );
}

export interface NormalizedHost {
  readonly ok: true;
  /** Lower-case, without a trailing dot; an IPv6 literal keeps its brackets, in canonical form (`[::1]`). */
  readonly hostname: string;
  /** The port when one was given (`host:` with an empty port, allowed by RFC 3986, gives none). */
  readonly port?: number;
}

export type HostResult = NormalizedHost | HostRejection;

// A DNS name, leniently: labels of letters, digits, `-` and `_` (seen in real internal names), separated by single
// dots. Stricter than RFC 3986's reg-name, which also allows sub-delims and percent-encoding: a Host that is not a
// name or an IP literal can match no route, and refusing it keeps odd bytes out of logs and the `*` route.
const HOST_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/**
 * Normalises a Host header value or an absolute-form authority (`host`, `host:port`, `[v6]`, `[v6]:port`) for
 * routing: lower-cased, one trailing dot removed (`example.com.` is `example.com`), an IPv6 literal validated and
 * put in canonical form, the port parsed. Refuses a missing or empty host (`missing_host`), a host that is not a
 * name or an IP literal, a bare IPv6 address, an IPv6 zone (`bad_host`), and a port that is not 1–65535
 * (`bad_port`). Like nginx's ngx_http_validate_host, but stricter on characters (see HOST_NAME).
 */
export function normalizeHost(host: string | undefined): HostResult {
  if (host === undefined || host === '') return TARGET_REJECTIONS.missing_host;
  let name: string;
  let portText: string;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const end = host.indexOf(']');
    if (end < 0) return TARGET_REJECTIONS.bad_host;
    const literal = host.slice(1, end);
    // isIPv6 accepts a zone (`fe80::1%eth0`), which names an interface of the client's machine: refuse it.
    if (!isIPv6(literal) || literal.includes('%')) return TARGET_REJECTIONS.bad_host;
    const after = host.slice(end + 1);
    if (after !== '' && after.charCodeAt(0) !== 0x3a) return TARGET_REJECTIONS.bad_host;
    portText = after.slice(1);
    name = new URL(`http://[${literal}]/`).hostname; // canonical: lower case, zeros compressed
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0 && host.indexOf(':', colon + 1) >= 0) return TARGET_REJECTIONS.bad_host; // bare IPv6
    name = (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
    portText = colon < 0 ? '' : host.slice(colon + 1);
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (name === '' || name.length > 253 || !HOST_NAME.test(name)) return TARGET_REJECTIONS.bad_host;
  }
  if (portText === '') return { ok: true, hostname: name };
  if (!/^[0-9]{1,5}$/.test(portText)) return TARGET_REJECTIONS.bad_port;
  const port = Number(portText);
  if (port < 1 || port > 65535) return TARGET_REJECTIONS.bad_port;
  return { ok: true, hostname: name, port };
}
