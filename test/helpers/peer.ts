// A socket's far end in a test: buffers what it receives, so that tests read exact byte counts without racing
// 'data' events, and records how it ended.
import type net from 'node:net';

/** Buffers what a socket receives, so that tests read exact byte counts without racing 'data' events. */
export class Peer {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  sawEnd = false;
  #chunks: Buffer[] = [];
  #length = 0;
  #done = false;
  #wake: (() => void) | undefined;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
      this.#notify();
    });
    socket.on('end', () => {
      this.sawEnd = true;
      this.#done = true;
      this.#notify();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#done = true;
        this.#notify();
        resolve();
      }),
    );
  }

  get received(): number {
    return this.#length;
  }

  async read(n: number): Promise<Buffer> {
    while (this.#length < n) {
      if (this.#done) throw new Error(`peer closed after ${this.#length} of ${n} bytes`);
      await this.#changed();
    }
    const all = Buffer.concat(this.#chunks, this.#length);
    this.#chunks = [all.subarray(n)];
    this.#length -= n;
    return all.subarray(0, n);
  }

  /** Waits for the peer's FIN (or close); returns everything not read yet. */
  async readToEnd(): Promise<Buffer> {
    while (!this.#done) await this.#changed();
    return this.read(this.#length);
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }
}
