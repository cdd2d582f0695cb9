// WebSocket handshakes against a limited route, as the limit tests count them: each admitted one held open (it holds
// a slot), each refused one with its status.
import { WebSocket } from 'ws';

export interface HandshakeAttempt {
  readonly status: number;
  readonly ws: WebSocket;
  readonly closed: Promise<void>;
}

/** One handshake with Host `host`: 101 (kept open) or the refusal's status. */
export function attemptHandshake(port: number, host: string): Promise<HandshakeAttempt> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { Host: host } });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ status: 101, ws, closed }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve({ status: res.statusCode ?? 0, ws, closed });
    });
    ws.once('error', reject);
  });
}

/** `n` handshakes at once; the statuses counted, the admitted ones held. */
export async function concurrentHandshakes(
  port: number,
  host: string,
  n: number,
): Promise<{ admitted: HandshakeAttempt[]; counts: Record<number, number> }> {
  const all = await Promise.all(Array.from({ length: n }, () => attemptHandshake(port, host)));
  const counts: Record<number, number> = {};
  for (const a of all) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return { admitted: all.filter((a) => a.status === 101), counts };
}
