// What a configuration source drives: one in-process Gateway, or a pool of worker processes that each run one.
import type { AddressInfo } from 'node:net';
import type { RoutingTable } from './model/table.ts';

export interface CertificateError {
  readonly secret: string;
  readonly message: string;
}

export interface DataPlane {
  /** Binds the listeners (and the admin server, where this plane has it). */
  start(): Promise<void>;
  /** Makes a table live everywhere; resolves once every process serves it. Never closes a connection. */
  apply(table: RoutingTable): Promise<{ certificateErrors: readonly CertificateError[] }>;
  /** The table live now. */
  readonly table: RoutingTable;
  /** Why this plane should not receive traffic, or undefined. */
  notReady(): string | undefined;
  addresses(): { http?: AddressInfo; https?: AddressInfo; admin?: AddressInfo };
  /** Open tunnels (for logs). */
  tunnels(): number | Promise<number>;
  /**
   * Readiness false, the listeners still accepting: the first step of a drain, while load balancers notice
   * (--drain-delay). stop() follows.
   */
  beginDrain(): void;
  /**
   * Readiness false, listeners closed, every tunnel closed gracefully with the closes spread over graceMs (a 1001
   * and its close handshake for a WebSocket, a FIN otherwise), what is left cut a close handshake's time later.
   */
  stop(graceMs?: number): Promise<void>;
  /** Closes every open tunnel now (a second SIGTERM). */
  closeTunnels(): Promise<void>;
}
