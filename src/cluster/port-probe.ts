// Is a port free for this process group? Workers bind with SO_REUSEPORT, and Linux lets any socket of the same user
// with SO_REUSEPORT join a group of listeners: a second wsgate would silently share the first one's port, each
// answering half the connections with its own configuration. A bind WITHOUT SO_REUSEPORT fails with EADDRINUSE when
// anyone listens there, with or without it; that is the probe, made by the primary before any worker binds.
//
// The probe is closed before the workers bind, so two instances starting within the same instant can still both
// pass it (docs/architecture.md, "A second instance"); anything later is refused.
import net from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';

/**
 * Binds `host:port` exclusively, closes it again, and resolves with the port bound (the one the OS chose for 0).
 * Rejects with WSGATE_ERR_LISTEN whose cause is the bind error (EADDRINUSE, EACCES, EADDRNOTAVAIL, ...).
 */
export function probePort(host: string, port: number, what: string): Promise<number> {
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${host}:${port} (${what})`, { cause: err })));
    server.listen({ host, port, exclusive: true }, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}
