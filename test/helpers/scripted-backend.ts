// A `ws` backend for interop tests of the frame-aware relay, which records everything its peer (wsgate, and the
// client behind it) makes it see: messages, pings, pongs, the close. It echoes, except for two commands:
//   'frag-me'         answers 'fragment' as a fragmented text message ('frag' + 'ment', two frames);
//   'close-me CODE'   closes with CODE and the reason 'server bye'.
import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type PerMessageDeflateOptions, type RawData, type WebSocket } from 'ws';
import { Queue } from './l7-peers.ts';

export interface ScriptedConnection {
  readonly ws: WebSocket;
  readonly req: http.IncomingMessage;
  /** Messages received, as 'text:<content>' or 'binary:<hex>' (a long binary: 'binary:<length> bytes'). */
  readonly messages: string[];
  /** Payloads of the pings and pongs received (ws answers pings itself). */
  readonly pings: Buffer[];
  readonly pongs: Buffer[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

export interface ScriptedBackend {
  readonly port: number;
  readonly connections: Queue<ScriptedConnection>;
  close(): Promise<void>;
}

export function describeMessage(data: RawData, isBinary: boolean): string {
  const b = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  if (!isBinary) return `text:${b.toString()}`;
  return b.length <= 32 ? `binary:${b.toString('hex')}` : `binary:${b.length} bytes`;
}

export async function startScriptedBackend(perMessageDeflate: boolean | PerMessageDeflateOptions): Promise<ScriptedBackend> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate, maxPayload: 0 });
  await once(server, 'listening');
  const connections = new Queue<ScriptedConnection>();
  server.on('connection', (ws, req) => {
    const c: ScriptedConnection = {
      ws,
      req,
      messages: [],
      pings: [],
      pongs: [],
      closed: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
    };
    ws.on('error', () => {});
    ws.on('ping', (p) => c.pings.push(p));
    ws.on('pong', (p) => c.pongs.push(p));
    ws.on('message', (data, isBinary) => {
      c.messages.push(describeMessage(data, isBinary));
      const text = isBinary ? '' : (data as Buffer).toString();
      if (text === 'frag-me') {
        ws.send('frag', { fin: false });
        ws.send('ment', { fin: true });
      } else if (text.startsWith('close-me ')) {
        ws.close(Number(text.slice('close-me '.length)), 'server bye');
      } else ws.send(data, { binary: isBinary });
    });
    connections.push(c);
  });
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}
