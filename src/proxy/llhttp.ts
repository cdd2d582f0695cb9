// llhttp, the parser Node's own HTTP client and server use, as wsgate reads heads with it: a backend's answer to a
// handshake (backend-response.ts) and a client's first request head (handshake-front.ts). Node exposes it as
// `HTTPParser` through the `_http_common` module, which its http client and server are built on. It is not
// documented, so this file is the only place that touches it, and test/proxy/backend-response.test.ts and
// test/proxy/handshake-front.test.ts pin the behaviour wsgate relies on.
//
// Parsers are reused, as Node's own http module does (its FreeList of parsers): a native parser per head would cost
// an allocation and its C++ object every time. The callbacks are shared functions that find what they read for
// through PARSER_OWNER (llhttp calls them with the parser as `this`).
import { createRequire } from 'node:module';

/** What a pooled parser is reading for now. */
export const PARSER_OWNER = Symbol('wsgate.llhttpOwner');

export interface LlhttpParser<O> {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): undefined | (Error & { code?: string });
  remove(): void;
  free(): void;
  close(): void;
  [key: number]: unknown;
  [PARSER_OWNER]: O | undefined;
}

interface LlhttpParserClass {
  new (): LlhttpParser<unknown>;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpParserClass; methods: string[] };
const { HTTPParser } = common;
/** llhttp's method names by its method number (what onHeadersComplete is given). */
export const HTTP_METHODS: readonly string[] = common.methods;

export interface ParserCallbacks<O> {
  /** Header pairs and url pieces of a head that spans several reads (llhttp's slow path). */
  readonly onHeaders: (this: LlhttpParser<O>, headers: string[], url: string) => void;
  /** The head is complete; the return value is llhttp's (0: go on, 2: no body, stop here). */
  readonly onHeadersComplete: (
    this: LlhttpParser<O>,
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    status: number,
    statusMessage: string,
    upgrade: boolean,
  ) => number;
  readonly onMessageComplete?: (this: LlhttpParser<O>) => void;
}

const NOOP = (): void => {};
const POOL_MAX = 256;

/** A pool of strict parsers of one kind (requests or responses), with one set of callbacks. */
export class ParserPool<O> {
  readonly #free: LlhttpParser<O>[] = [];
  readonly #callbacks: ParserCallbacks<O>;
  readonly #type: number;
  readonly #maxHeaderSize: number;

  /** `maxHeaderSize` 0: the process's limit (--max-http-header-size), as http.Server passes `maxHeaderSize || 0`. */
  constructor(kind: 'request' | 'response', maxHeaderSize: number, callbacks: ParserCallbacks<O>) {
    this.#type = kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE;
    this.#maxHeaderSize = maxHeaderSize;
    this.#callbacks = callbacks;
  }

  acquire(owner: O): LlhttpParser<O> {
    let p = this.#free.pop();
    if (p === undefined) {
      p = new HTTPParser() as LlhttpParser<O>;
      p[HTTPParser.kOnHeaders] = this.#callbacks.onHeaders;
      p[HTTPParser.kOnHeadersComplete] = this.#callbacks.onHeadersComplete;
      p[HTTPParser.kOnBody] = NOOP;
      p[HTTPParser.kOnMessageComplete] = this.#callbacks.onMessageComplete ?? NOOP;
    }
    p.initialize(this.#type, {}, this.#maxHeaderSize, HTTPParser.kLenientNone);
    p[PARSER_OWNER] = owner;
    return p;
  }

  release(p: LlhttpParser<O>): void {
    p[PARSER_OWNER] = undefined;
    p.remove();
    if (this.#free.length < POOL_MAX) {
      p.free();
      this.#free.push(p);
    } else {
      // Let the stack unwind before the C++ object goes (as Node's freeParser does).
      setImmediate(() => p.close());
    }
  }
}
