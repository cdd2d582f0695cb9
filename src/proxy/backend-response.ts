// Reads a backend's answer to a WebSocket handshake with llhttp, the parser Node's own HTTP client uses, in strict
// mode: the status and framing of a response are never guessed by hand-written code. The raw bytes are kept so
// that what the client receives is exactly what the backend sent: the 101 head as received, and any frames that
// shared its read (h2o#1272).
//
// Node exposes llhttp as `HTTPParser` through the `_http_common` module, which its http client and server are built
// on. It is not documented, so this file is the only place that touches it, and test/proxy/backend-response.test.ts
// pins the behaviour wsgate relies on.
import { createRequire } from 'node:module';

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): undefined | (Error & { code?: string });
  remove(): void;
  free(): void;
  close(): void;
  [key: number]: unknown;
  [OWNER]: BackendResponse | undefined;
}

interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}

const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpParserClass };

/** The BackendResponse a pooled parser is reading for now. */
const OWNER = Symbol('wsgate.backendResponse');

// Parsers are reused, as Node's own http module does (its FreeList of parsers): a native parser per handshake would
// cost an allocation and its C++ object every time. The callbacks are shared functions that find their response
// through OWNER (llhttp calls them with the parser as `this`).
const pool: LlhttpParser[] = [];
const POOL_MAX = 256;

function parserOnHeaders(this: LlhttpParser, headers: string[]): void {
  this[OWNER]?.onHeaders(headers);
}

function parserOnHeadersComplete(
  this: LlhttpParser,
  _major: number,
  _minor: number,
  headers: string[] | undefined,
  _method: unknown,
  _url: unknown,
  status: number,
  statusMessage: string,
  upgrade: boolean,
): number {
  this[OWNER]?.onHeadersComplete(headers, status, statusMessage, upgrade);
  return 0;
}

function parserOnBody(): void {}

function parserOnMessageComplete(this: LlhttpParser): void {
  this[OWNER]?.onMessageComplete();
}

function acquireParser(owner: BackendResponse): LlhttpParser {
  let p = pool.pop();
  if (p === undefined) {
    p = new HTTPParser();
    p[HTTPParser.kOnHeaders] = parserOnHeaders;
    p[HTTPParser.kOnHeadersComplete] = parserOnHeadersComplete;
    p[HTTPParser.kOnBody] = parserOnBody;
    p[HTTPParser.kOnMessageComplete] = parserOnMessageComplete;
  }
  p.initialize(HTTPParser.RESPONSE, {}, MAX_RESPONSE_HEAD, HTTPParser.kLenientNone);
  p[OWNER] = owner;
  return p;
}

function releaseParser(p: LlhttpParser): void {
  p[OWNER] = undefined;
  p.remove();
  if (pool.length < POOL_MAX) {
    p.free();
    pool.push(p);
  } else {
    // Let the stack unwind before the C++ object goes (as Node's freeParser does).
    setImmediate(() => p.close());
  }
}

/** Largest response head accepted from a backend (bytes); a larger one is an invalid response. */
export const MAX_RESPONSE_HEAD = 64 * 1024;

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
  readonly #parser: LlhttpParser;
  /** Chunks received before the head was complete (their bytes belong to the head, or to a 1xx before it). */
  #pending: Buffer[] = [];
  #head: ResponseHead | undefined;
  #extraHeaders: string[] | undefined;
  #complete = false;
  #closed = false;

  constructor() {
    this.#parser = acquireParser(this);
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
    releaseParser(this.#parser);
  }
}
