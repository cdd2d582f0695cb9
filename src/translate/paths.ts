// Request paths as rules match them. Prefix matching is by path element, as Ingress specifies: `/foo` matches `/foo`
// and `/foo/bar`, never `/foobar`; so `/foo/` and `/foo` are the same prefix, and the table stores it without the
// trailing slash. An Exact path is kept as written: `/foo/` and `/foo` are different requests.
import type { PathType } from '../api/types.ts';

// Printable ASCII without space, '?' (a query is not part of the path) and '#' (a fragment never reaches a server).
const PATH_CHARS = /^\/[\x21-\x7e]*$/;

/** An error message when the path value cannot be matched against a request path, else undefined. */
export function checkPath(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'must be a string starting with "/"';
  if (!value.startsWith('/')) return `"${value}" must start with "/"`;
  if (!PATH_CHARS.test(value) || value.includes('?') || value.includes('#')) {
    return `"${value}" must be printable ASCII without spaces, "?" or "#"`;
  }
  return undefined;
}

/** Drops trailing slashes of a Prefix path (the root stays `/`); Exact paths are returned unchanged. */
export function normalizePath(type: PathType, value: string): string {
  if (type === 'Exact') return value;
  const trimmed = value.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** How many path elements a path has: `/` has 0, `/foo/bar` has 2. Longer prefixes are tried first. */
export function pathElements(path: string): number {
  return path.split('/').filter((e) => e !== '').length;
}
