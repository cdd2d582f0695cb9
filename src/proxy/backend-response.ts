// Reads a backend's answer to a WebSocket handshake with llhttp, the parser Node's own HTTP client uses, in strict
// mode: the status and framing of a response are never guessed by hand-written code. The raw bytes are kept so
// that what the client receives is exactly what the backend sent: the 101 head as received, and any frames that
// shared its read (h2o#1272).
//
// The parser is llhttp, pooled (llhttp.ts).
import { PARSER_OWNER, ParserPool, type LlhttpParser } from './llhttp.ts';

/** Largest response head accepted from a backend (bytes); a larger one is an invalid response. */
export const MAX_RESPONSE_HEAD = 64 * 1024;

const parsers = new ParserPool<BackendResponse>('response', MAX_RESPONSE_HEAD, {
  onHeaders(headers) {
    this[PARSER_OWNER]?.onHeaders(headers);
  },
  onHeadersComplete(_major, _minor, headers, _method, _url, status, statusMessage, upgrade) {
    this[PARSER_OWNER]?.onHeadersComplete(headers, status, statusMessage, upgrade);
    return 0;
  },
  onMessageComplete() {
    this[PARSER_OWNER]?.onMessageComplete();
  },
});

export interface ResponseHead {
  readonly status: number;
  readonly statusMessage: string;
  /** [name, value, name, value, ...] as received. */
  readonly rawHeaders: readonly string[];
  /** True for a 101 with Upgrade (llhttp stops parsing there: what follows belongs to the new protocol). */
  readonly upgrade: boolean;
}

/** What one chunk of backend bytes amounted to. */
export type ResponseEvent =
  /** The head is not complete yet; keep feeding. */
  | { readonly kind: 'need-more' }
  /** Not a valid HTTP/1.x response (or a head over MAX_RESPONSE_HEAD); `code` is llhttp's (HPE_*). */
  | { readonly kind: 'invalid'; readonly code: string }
  /**
   * A 101: `raw` is every byte received up to and including the head's blank line, `rest` the bytes after it
   * (already the new protocol's). Nothing more is parsed.
   */
  | { readonly kind: 'switched'; readonly head: ResponseHead; readonly raw: Buffer; readonly rest: Buffer }
  /**
   * A final (non-1xx) response head arrived: `raw` is every byte received so far (1xx informational heads
   * included), to relay as it is; every chunk fed after is relayed too, until `complete` is true.
   */
  | { readonly kind: 'response'; readonly head: ResponseHead; readonly raw: Buffer; readonly complete: boolean }
  /** A chunk of a response whose head was reported already. */
  | { readonly kind: 'body'; readonly complete: boolean };

/**
 * One backend response, fed chunk by chunk. Not reusable: make one per handshake.
 *
 * The numbered flow:
 *  1. feed(chunk) until the event is not 'need-more'; 1xx heads other than 101 are swallowed into `need-more`
 *     (they are relayed with the final response, since their bytes are part of the received stream);
 *  2. 'switched': the caller writes `raw` and `rest` to the client and makes a tunnel;
 *  3. 'response': the caller relays every chunk (and every chunk after, each fed here) until `complete`;
 *     a close-delimited body completes with end().
 */
export class BackendResponse {
  readonly #parser: LlhttpParser<BackendResponse>;
  /** Chunks received before the head was complete (their bytes belong to the head, or to a 1xx before it). */
  #pending: Buffer[] = [];
  #head: ResponseHead | undefined;
  #extraHeaders: string[] | undefined;
  #complete = false;
  #closed = false;

  constructor() {
    this.#parser = parsers.acquire(this);
  }

  /** llhttp: more than 32 header pairs arrive in batches before the head completes. */
  onHeaders(headers: string[]): void {
    (this.#extraHeaders ??= []).push(...headers);
  }

  onHeadersComplete(headers: string[] | undefined, status: number, statusMessage: string, upgrade: boolean): void {
    const rawHeaders = this.#extraHeaders ? [...this.#extraHeaders, ...(headers ?? [])] : (headers ?? []);
    this.#extraHeaders = undefined;
    // 1xx other than 101 (100 Continue, 103 Early Hints): informational, a final response follows.
    if (status >= 100 && status < 200 && status !== 101) return;
    this.#head = { status, statusMessage, rawHeaders, upgrade: upgrade && status === 101 };
  }

  onMessageComplete(): void {
    if (this.#head) this.#complete = true;
  }

  get head(): ResponseHead | undefined {
    return this.#head;
  }

  get complete(): boolean {
    return this.#complete;
  }

  feed(chunk: Buffer): ResponseEvent {
    if (this.#closed) return { kind: 'body', complete: true };
    const hadHead = this.#head !== undefined;
    const ret = this.#parser.execute(chunk);
    if (typeof ret !== 'number') {
      this.close();
      return { kind: 'invalid', code: ret.code ?? 'HPE_INVALID' };
    }
    const head = this.#head;
    if (head === undefined) {
      this.#pending.push(chunk);
      return { kind: 'need-more' };
    }
    if (hadHead) return { kind: 'body', complete: this.#complete };
    if (head.upgrade) {
      // llhttp stops at the end of a 101 head and returns how much of this chunk it consumed.
      const pending = this.#pending;
      pending.push(chunk.subarray(0, ret));
      const raw = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      this.#pending = [];
      this.close();
      return { kind: 'switched', head, raw, rest: chunk.subarray(ret) };
    }
    const pending = this.#pending;
    pending.push(chunk);
    this.#pending = [];
    return { kind: 'response', head, raw: pending.length === 1 ? pending[0]! : Buffer.concat(pending), complete: this.#complete };
  }

  /** The backend ended its side: completes a close-delimited body. Returns whether the response is complete. */
  end(): boolean {
    if (this.#closed) return this.#complete;
    const err = this.#parser.finish();
    if (err !== undefined) return false;
    return this.#complete;
  }

  /** Done with this response: its parser goes back to the pool. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    parsers.release(this.#parser);
  }
}
