// TCP keepalive for accepted connections, set once on the listening socket (issue 13). Linux copies a listener's
// socket options into every connection it accepts (SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT:
// `ss -o` shows the accepted socket's keepalive timer), so a connection then costs no setsockopt for it; nginx's
// `listen ... so_keepalive=` works the same way. Before, each tunnel made the four calls itself: net.Server's
// `keepAlive` option on L4 listeners, and Socket.setKeepAlive() when a WebSocket handshake became a tunnel. Every
// connection a listener accepts now has keepalive, plain HTTP and ssl-passthrough ones included, which is what a
// proxy in front of long-lived connections wants anyway (a peer that vanished is found, its slot given back).
// Where the listener's handle cannot take it (not Linux, another Node), each connection is set as before.
import type net from 'node:net';

/** Idle time before the first keepalive probe (libuv then probes every second, ten times). */
export const KEEPALIVE_IDLE_MS = 60_000;

interface KeepAliveHandle {
  /** libuv's uv_tcp_keepalive on the handle's socket; the delay in seconds (what Socket.setKeepAlive passes). */
  setKeepAlive?(enable: boolean, delaySeconds: number): number;
}

/**
 * Sets keepalive on `server`'s listening socket, once it listens. `inherited(true)` is called when the connections
 * it accepts from then on have it: not at once, but after the loop's next poll. A client whose handshake the kernel
 * completed between listen() and this call is already in the accept queue, cloned from the listener without
 * keepalive; libuv accepts everything queued in the first poll after it, and the caller sets those connections itself
 * until `inherited` says otherwise (a few redundant setsockopt calls in the first instant, never a connection without).
 */
export function keepAliveOnListener(server: net.Server, inherited: (yes: boolean) => void): void {
  if (process.platform !== 'linux') return;
  const handle = (server as unknown as { _handle?: KeepAliveHandle | null })._handle;
  if (typeof handle?.setKeepAlive !== 'function') return;
  if (handle.setKeepAlive(true, KEEPALIVE_IDLE_MS / 1000) === 0) setImmediate(() => inherited(true));
}

/** Keepalive on one connection, where its listener's could not be inherited. */
export function keepAliveOn(socket: net.Socket): void {
  socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
}
