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
  /** Readiness false, listeners closed, tunnels given graceMs to end, then closed. */
  stop(graceMs?: number): Promise<void>;
  /** Closes every open tunnel now (a second SIGTERM). */
  closeTunnels(): Promise<void>;
}
