// Reads one HTTP/1.1 response head from a backend socket: the answer to a WebSocket handshake. This parser faces
// backends, not clients (clients go through Node's llhttp); it only needs the status and the framing of a
// non-101 body, and it refuses anything it does not understand rather than guess.
export interface ResponseHead {
  readonly status: number;
  /** The head exactly as received, through the blank line, to relay unchanged. */
  readonly raw: Buffer;
  /** Bytes received after the head (the first WebSocket frames, or the start of a body). */
  readonly rest: Buffer;
  /** Content-Length, when present and valid; undefined otherwise. */
  readonly contentLength: number | undefined;
  readonly chunked: boolean;
}

/** Largest response head accepted from a backend (bytes). */
export const MAX_RESPONSE_HEAD = 64 * 1024;

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Parses a complete head from `buf`. Returns 'need-more' when the blank line has not arrived yet, 'invalid' when
 * the bytes are not an HTTP/1.x response head or exceed MAX_RESPONSE_HEAD.
 */
export function parseResponseHead(buf: Buffer): ResponseHead | 'need-more' | 'invalid' {
  const end = buf.indexOf(CRLFCRLF);
  if (end < 0) return buf.length > MAX_RESPONSE_HEAD ? 'invalid' : 'need-more';
  if (end + 4 > MAX_RESPONSE_HEAD) return 'invalid';
  const text = buf.toString('latin1', 0, end);
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return 'invalid';
  let contentLength: number | undefined;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) return 'invalid';
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value))) return 'invalid';
      contentLength = Number(value);
    } else if (name === 'transfer-encoding') {
      chunked = value.toLowerCase().split(',').some((t) => t.trim() === 'chunked');
    }
  }
  return {
    status: Number(m[1]),
    raw: buf.subarray(0, end + 4),
    rest: buf.subarray(end + 4),
    contentLength: chunked ? undefined : contentLength,
    chunked,
  };
}
