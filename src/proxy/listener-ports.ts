// [issue 14] The Gateway API's HTTP and HTTPS listener ports (RoutingTable.listeners): one server per port, bound
// when a table first has the port, kept (its router and certificates swapped in place) while later tables keep it,
// and closed when a table drops it. Closing stops accepting only: tunnels belong to the registry and live on, as
// on every other listener. A port that fails to bind is named by failedPorts() (readiness) and tried again with the
// next update.
//
// An HTTPS port chooses its certificate by SNI: an exact name, then the most specific `*.` wildcard (any number of
// labels, as Gateway API hostnames go), then the port's default: the certificate of its listener without a hostname,
// else the first (the translator sorts them so).
import type http from 'node:http';
import type https from 'node:https';
import { createSecureContext, type SecureContext, type TlsOptions } from 'node:tls';
import type { Logger } from '../log/logger.ts';
import type { Certificate, ListenerPort } from '../model/table.ts';
import { MIN_TLS_VERSION } from '../tls/cert-store.ts';
import { Router } from './router.ts';

export interface ListenerPortsDeps {
  readonly log: Logger;
  /**
   * Creates a server for `port` with the L7 handlers installed (routing with `router()`), and binds it on the
   * listeners' host. `tls`: the HTTPS server's options. Rejects when the port cannot be bound.
   */
  readonly serve: (proto: 'http' | 'https', port: number, router: () => Router, tls?: TlsOptions) => Promise<http.Server>;
}

interface Bound {
  readonly proto: 'http' | 'https';
  readonly server: http.Server;
  router: Router;
  /** HTTPS: the contexts by hostname, and the default one. */
  sni: Sni | undefined;
}

interface Sni {
  readonly byName: ReadonlyMap<string, SecureContext>;
  readonly fallback: SecureContext;
  /** The default certificate's PEM, to tell whether the server's own context must change. */
  readonly defaultPem: string;
}

export class ListenerPorts {
  readonly #d: ListenerPortsDeps;
  readonly #bound = new Map<number, Bound>();
  readonly #failed = new Map<number, Error>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /** Contexts already built, by certificate and key PEM: a table swap does not rebuild unchanged ones. */
  #contexts = new Map<string, SecureContext>();

  constructor(deps: ListenerPortsDeps) {
    this.#d = deps;
  }

  /** Makes `ports` the served ones; resolves when every bind has succeeded or failed. Serialised with close(). */
  update(ports: readonly ListenerPort[]): Promise<void> {
    const next = this.#queue.then(() => this.#apply(ports));
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Ports of the current table whose server could not bind, ascending. */
  failedPorts(): number[] {
    return [...this.#failed.keys()].sort((a, b) => a - b);
  }

  /** Bound ports, ascending. */
  listening(): number[] {
    return [...this.#bound.keys()].sort((a, b) => a - b);
  }

  close(): Promise<void> {
    const next = this.#queue.then(() => {
      this.#closed = true;
      for (const [port, b] of this.#bound) this.#closeServer(port, b);
      this.#failed.clear();
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #apply(ports: readonly ListenerPort[]): Promise<void> {
    if (this.#closed) return;
    const wanted = new Map(ports.map((p) => [p.port, p]));
    const contexts = new Map<string, SecureContext>();
    for (const [port, b] of this.#bound) {
      const p = wanted.get(port);
      if (p === undefined || protoOf(p) !== b.proto) this.#closeServer(port, b);
    }
    for (const port of this.#failed.keys()) if (!wanted.has(port)) this.#failed.delete(port);
    const binds: Promise<void>[] = [];
    for (const p of ports) {
      const router = new Router(p, { wildcardAnyDepth: true });
      const sni = p.protocol === 'HTTPS' ? this.#sni(p.certificates, contexts) : undefined;
      const held = this.#bound.get(p.port);
      if (held !== undefined) {
        held.router = router;
        if (sni !== undefined && held.sni?.defaultPem !== sni.defaultPem) {
          const first = p.certificates[0]!;
          (held.server as https.Server).setSecureContext({ cert: first.certPem, key: first.keyPem, minVersion: MIN_TLS_VERSION });
        }
        held.sni = sni;
        continue;
      }
      binds.push(this.#bind(p, router, sni));
    }
    this.#contexts = contexts;
    await Promise.all(binds);
  }

  async #bind(p: ListenerPort, router: Router, sni: Sni | undefined): Promise<void> {
    const proto = protoOf(p);
    // The SNI callback and the router getter read this record, which later tables update in place.
    const entry: { router: Router; sni: Sni | undefined } = { router, sni };
    const tls: TlsOptions | undefined =
      proto === 'https'
        ? {
            cert: p.certificates[0]!.certPem,
            key: p.certificates[0]!.keyPem,
            minVersion: MIN_TLS_VERSION,
            SNICallback: (name, cb) => {
              const s = entry.sni;
              cb(null, s === undefined ? undefined : contextFor(s, name));
            },
          }
        : undefined;
    try {
      const server = await this.#d.serve(proto, p.port, () => entry.router, tls);
      if (this.#closed) {
        server.close();
        return;
      }
      this.#bound.set(p.port, Object.assign<typeof entry, Pick<Bound, 'proto' | 'server'>>(entry, { proto, server }));
      this.#failed.delete(p.port);
      this.#d.log.info({ port: p.port, proto }, 'gateway listener bound');
    } catch (err) {
      this.#failed.set(p.port, err as Error);
      this.#d.log.error({ port: p.port, proto, err }, 'gateway listener failed to bind');
    }
  }

  #closeServer(port: number, b: Bound): void {
    // close() stops accepting now; its callback would wait for every socket, tunnels included (nodejs/node#53536).
    b.server.close();
    b.server.closeIdleConnections();
    this.#bound.delete(port);
    this.#d.log.info({ port }, 'gateway listener closed');
  }

  #sni(certs: readonly Certificate[], built: Map<string, SecureContext>): Sni {
    const byName = new Map<string, SecureContext>();
    let fallback: SecureContext | undefined;
    for (const c of certs) {
      const key = `${c.certPem}\0${c.keyPem}`;
      let ctx = built.get(key) ?? this.#contexts.get(key);
      if (ctx === undefined) {
        try {
          ctx = createSecureContext({ cert: c.certPem, key: c.keyPem, minVersion: MIN_TLS_VERSION });
        } catch (err) {
          this.#d.log.error({ secret: c.secret, err }, 'certificate not loaded');
          continue;
        }
      }
      built.set(key, ctx);
      fallback ??= ctx;
      for (const h of c.hostnames) if (h !== '*' && !byName.has(h)) byName.set(h, ctx);
    }
    const first = certs[0];
    return { byName, fallback: fallback ?? createSecureContext({ minVersion: MIN_TLS_VERSION }), defaultPem: first === undefined ? '' : `${first.certPem}\0${first.keyPem}` };
  }
}

function protoOf(p: ListenerPort): 'http' | 'https' {
  return p.protocol === 'HTTPS' ? 'https' : 'http';
}

/** An exact name, then the most specific wildcard covering it, then the port's default. */
function contextFor(s: Sni, servername: string): SecureContext {
  const name = servername.toLowerCase().replace(/\.$/, '');
  const exact = s.byName.get(name);
  if (exact !== undefined) return exact;
  for (let dot = name.indexOf('.'); dot > 0; dot = name.indexOf('.', dot + 1)) {
    const wild = s.byName.get(`*${name.slice(dot)}`);
    if (wild !== undefined) return wild;
  }
  return s.fallback;
}
