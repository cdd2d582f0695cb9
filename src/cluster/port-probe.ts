// Is a port free for this process group? Workers bind with SO_REUSEPORT, and Linux lets any socket of the same user
// with SO_REUSEPORT join a group of listeners: a second wsgate would silently share the first one's port, each
// answering half the connections with its own configuration. A bind WITHOUT SO_REUSEPORT fails with EADDRINUSE when
// anyone listens there, with or without it; that is the probe, made by the primary (and by one process started
// without a table) before anything binds to serve.
//
// The probe must not listen: a client connecting in that instant would be accepted by a socket that is about to close
// (and reset). Node cannot bind a TCP socket without listening or connecting, so the probe binds the port as the
// LOCAL end of a connection to itself (a TCP self-connect: its SYN reaches its own socket, no listener involved), and
// resets it at once. A port in use fails the bind (EADDRINUSE, or EACCES, EADDRNOTAVAIL for other reasons). Port 0
// is the exception: the OS picks the port by a listen, which no client can know of yet.
//
// The probe is closed before the workers bind, so two instances starting within the same instant can still both
// pass it (docs/architecture.md, "Process lifecycle"); anything later is refused.
//
// Port 0 is held from its probe until the workers have bound it (holdPort()). The OS chose that port from the
// ephemeral range, which is where it also takes the source port of every outgoing connection: released between the
// probe and the workers' bind (the time to fork them and load wsgate, about half a second), it could be given to a
// connection of this host, and the start failed with EADDRINUSE. The hold is the probe's self-connect, kept open: a
// port bound explicitly is never chosen for an outgoing connection, and a socket that does not listen lets the
// workers' listeners bind beside it (both have SO_REUSEADDR, and it is not listening) while a client that connects
// before they do is refused, as with nothing bound: nothing listens before it can route.

import net from 'node:net';
import { ErrorCodes, WsgateError } from '../errors.ts';

/** A self-connect that neither completes nor fails (a firewall dropping it) has bound the port all the same (ms). */
const SELF_CONNECT_TIMEOUT_MS = 2000;

/**
 * Binds `host:port` exclusively, releases it again, and resolves with the port (the one the OS chose for 0).
 * Rejects with WSGATE_ERR_LISTEN whose cause is the bind error (EADDRINUSE, EACCES, EADDRNOTAVAIL, ...).
 */
export function probePort(host: string, port: number, what: string): Promise<number> {
  const failed = (err: Error): WsgateError => new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${host}:${port} (${what})`, { cause: err });
  if (port === 0) {
    const server = net.createServer();
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(failed(err)));
      server.listen({ host, port, exclusive: true }, () => {
        const bound = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(bound));
      });
    });
  }
  return holdPort(host, port, what).then((hold) => {
    hold.release();
    return port;
  });
}

/** A port held until the workers that bind it hold it themselves (holdPort()). */
export interface PortHold {
  readonly port: number;
  release(): void;
}

/**
 * Binds `host:port` as the local end of a TCP connection to itself, and keeps it (see the top of this file): for a
 * port the OS has just chosen (port 0). Rejects as probePort() does when the port cannot be bound.
 */
export function holdPort(host: string, port: number, what: string): Promise<PortHold> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress: host, localPort: port });
    // Once the port is bound, what happens to the connection does not matter: the bind is what holds it.
    socket.on('error', () => {});
    // A reset, not a close: no TIME_WAIT left on the port. (A self-connect that never completed is just closed.)
    const hold: PortHold = { port, release: () => void (socket.connecting ? socket.destroy() : socket.resetAndDestroy()) };
    const bound = (): void => {
      clearTimeout(timer);
      socket.off('error', failed);
      resolve(hold);
    };
    const failed = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      socket.destroy();
      // The bind's errors (libuv reports them at connect). Anything else happened after the port was bound.
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL' || err.code === 'EPERM') {
        reject(new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${host}:${port} (${what})`, { cause: err }));
      } else resolve(hold);
    };
    const timer = setTimeout(bound, SELF_CONNECT_TIMEOUT_MS);
    socket.once('connect', bound);
    socket.once('error', failed);
  });
}
