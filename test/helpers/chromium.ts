// Headless Chromium (Debian's `chromium`, /usr/bin/chromium) driven over the Chrome DevTools Protocol with the `ws`
// package: no browser-automation dependency. A test opens a page (about:blank is enough: a WebSocket to a loopback
// ws:// URL is not mixed content) and runs scripts in it with Runtime.evaluate, awaiting their promises.
//
//   const browser = await launchChromium();
//   const page = await browser.newPage();
//   const result = await page.evaluate<number>('new Promise((r) => setTimeout(() => r(42), 10))');
//   await browser.close();
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';

export const CHROMIUM = '/usr/bin/chromium';

/** The flags of a quiet, self-contained headless browser: no sandbox (tests run as root), no network of its own. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-dev-shm-usage',
  '--remote-debugging-port=0',
];

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
  sessionId?: string;
}

/** One DevTools connection (the browser target); page sessions are multiplexed on it (flatten: true). */
class Cdp {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => {
      const msg = JSON.parse((data as Buffer).toString()) as CdpMessage;
      if (msg.id === undefined) return;
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result ?? {});
    });
    ws.once('close', () => {
      for (const p of this.#pending.values()) p.reject(new Error(`${p.method}: the DevTools connection closed`));
      this.#pending.clear();
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  close(): void {
    this.#ws.close();
  }
}

export interface Page {
  /**
   * Evaluates `expression` in the page; a promise is awaited. Resolves with its value (JSON-serialisable values
   * only); rejects with the page's exception text.
   */
  evaluate<T>(expression: string): Promise<T>;
}

export interface Browser {
  readonly version: string;
  newPage(url?: string): Promise<Page>;
  close(): Promise<void>;
}

/** Whether the Debian package is installed (scripts/setup/deps.sh installs it for `npm test`). */
export function chromiumInstalled(): boolean {
  return existsSync(CHROMIUM);
}

/** Starts headless Chromium and connects to its DevTools endpoint (bounded: 30 s). */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'wsgate-chromium-'));
  const child: ChildProcess = spawn(CHROMIUM, [...FLAGS, `--user-data-dir=${profile}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const exited = once(child, 'exit');
  const cleanup = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    // Chromium writes the port it bound (and the browser target's path) once DevTools listens.
    const portFile = join(profile, 'DevToolsActivePort');
    const deadline = Date.now() + 30_000;
    let endpoint: string | undefined;
    while (endpoint === undefined) {
      if (child.exitCode !== null) throw new Error(`chromium exited (${child.exitCode}): ${stderr}`);
      if (Date.now() > deadline) throw new Error(`chromium wrote no DevToolsActivePort in 30 s: ${stderr}`);
      const lines = existsSync(portFile) ? readFileSync(portFile, 'utf8').split('\n') : [];
      if (lines.length >= 2 && /^\d+$/.test(lines[0]!) && lines[1]!.startsWith('/devtools/browser/')) {
        endpoint = `ws://127.0.0.1:${lines[0]}${lines[1]}`;
      } else await new Promise((r) => setTimeout(r, 50));
    }
    const ws = new WebSocket(endpoint, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    await once(ws, 'open');
    const cdp = new Cdp(ws);
    const { product } = (await cdp.send('Browser.getVersion')) as { product: string };
    return {
      version: product,
      async newPage(url = 'about:blank') {
        const { targetId } = (await cdp.send('Target.createTarget', { url })) as { targetId: string };
        const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
        await cdp.send('Runtime.enable', {}, sessionId);
        return {
          async evaluate<T>(expression: string): Promise<T> {
            const r = (await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId)) as {
              result: { value?: T };
              exceptionDetails?: { text: string; exception?: { description?: string } };
            };
            if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
            return r.result.value as T;
          },
        };
      },
      async close() {
        cdp.close();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
