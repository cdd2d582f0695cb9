// Request paths as rules match them. Requests are normalised before routing (src/proxy/normalize.ts), so a rule's
// path is put in the same form here (unreserved characters decoded, other escapes' hex upper-cased), and a path
// that no normalised request can have (a dot segment, a backslash) is an error rather than a rule that never matches. Prefix matching is by path element, as Ingress specifies: `/foo` matches `/foo`
// and `/foo/bar`, never `/foobar`; so `/foo/` and `/foo` are the same prefix, and the table stores it without the
// trailing slash. An Exact path is kept as written: `/foo/` and `/foo` are different requests.
import type { PathType } from '../api/types.ts';
import { normalizeTarget } from '../proxy/normalize.ts';

// Printable ASCII without space, '?' (a query is not part of the path) and '#' (a fragment never reaches a server).
const PATH_CHARS = /^\/[\x21-\x7e]*$/;

/** An error message when the path value cannot be matched against a request path, else undefined. */
export function checkPath(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string starting with "/"';
  if (!value.startsWith('/')) return `"${value}" must start with "/"`;
  if (!PATH_CHARS.test(value) || value.includes('?') || value.includes('#')) {
    return `"${value}" must be printable ASCII without spaces, "?" or "#"`;
  }
  // Encoded slashes are kept: a gateway run with --path-escaped-slashes=keep routes requests that carry them.
  const n = normalizeTarget(value, { escapedSlashes: 'keep' });
  if (!n.ok) return `"${value}": ${n.message.charAt(0).toLowerCase()}${n.message.slice(1)}`;
  if (/(^|\/)\.\.?(\/|$)/.test(value.replace(/%2e/gi, '.'))) {
    return `"${value}" has a "." or ".." segment, which no request has once normalised: write ${JSON.stringify(n.path)}`;
  }
  return undefined;
}

/**
 * The path in the form requests are normalised to (a path checkPath accepted), and for a Prefix without its
 * trailing slashes (the root stays `/`).
 */
export function normalizePath(type: PathType, value: string): string {
  const n = normalizeTarget(value, { escapedSlashes: 'keep' });
  const path = n.ok ? n.path : value;
  if (type === 'Exact') return path;
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** How many path elements a path has: `/` has 0, `/foo/bar` has 2. Longer prefixes are tried first. */
export function pathElements(path: string): number {
  return path.split('/').filter((e) => e !== '').length;
}
