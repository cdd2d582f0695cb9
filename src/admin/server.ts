// The admin server: /metrics, /healthz, /readyz and /debug/routes. It runs on its own port so that probes and
// scrapes never compete with, or depend on, the data plane's listeners.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RoutingTable } from '../model/table.ts';

export interface AdminDeps {
  /** The exposition to serve at /metrics: one process's registry, or the workers' aggregated. */
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  /** Why the process is not ready, or undefined when it is. */
  readonly notReady: () => string | undefined;
  readonly table: () => RoutingTable;
  /** Extra JSON endpoints under /debug/ (e.g. `workers`). */
  readonly debug?: Readonly<Record<string, () => unknown>>;
}

/** The /metrics source of a single process. */
export function registryMetrics(metrics: Metrics): () => Promise<{ contentType: string; body: string }> {
  return async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() });
}

export class AdminServer {
  readonly #server: http.Server;

  constructor(deps: AdminDeps) {
    this.#server = http.createServer((req, res) => {
      void this.#handle(deps, req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`error: ${(err as Error).message}\n`);
      });
    });
    this.#server.keepAliveTimeout = 5_000;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err) =>
        reject(new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${host}:${port} (admin)`, { cause: err })),
      );
      this.#server.listen({ host, port }, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(deps: AdminDeps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/metrics': {
        const { contentType, body } = await deps.metrics();
        res.writeHead(200, { 'Content-Type': contentType });
        res.end(body);
        return;
      }
      case '/healthz':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok\n');
        return;
      case '/readyz': {
        const why = deps.notReady();
        res.writeHead(why ? 503 : 200, { 'Content-Type': 'text/plain' });
        res.end(why ? `not ready: ${why}\n` : 'ready\n');
        return;
      }
      case '/debug/routes':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(`${JSON.stringify(publicTable(deps.table()), null, 2)}\n`);
        return;
      default: {
        const extra = path?.startsWith('/debug/') ? deps.debug?.[path.slice(7)] : undefined;
        if (extra) {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(`${JSON.stringify(await extra(), null, 2)}\n`);
          return;
        }
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found: try /metrics, /healthz, /readyz, /debug/routes\n');
      }
    }
  }
}

/** The table without private keys or certificate bodies. */
export function publicTable(t: RoutingTable): unknown {
  return {
    virtualHosts: t.virtualHosts,
    certificates: t.certificates.map((c) => ({ secret: c.secret, hostnames: c.hostnames })),
    tunnels: t.tunnels,
  };
}
