// The native relay (issue 13, direction 3): an established L4 tunnel's two descriptors handed to native/relay.c,
// which relays them with splice(2) on its own thread, so that the bytes never enter the process. JavaScript keeps
// the tunnel's record (registry.ts): the sweep reads its byte counters, a drain or an idle timeout asks the relay to
// close it, and the relay reports its end with a reason.
//
// Handover, in this order (handOver()):
//  1. only a plain TCP socket pair with nothing in flight JavaScript would lose: connected, not ended either way,
//     nothing queued for writing; otherwise the tunnel stays on the JavaScript relay (relay.ts);
//  2. bytes already read into a socket's stream buffer (a paused socket may hold some) are taken out and handed to
//     the addon, to be written before anything else;
//  3. the addon dup()s both descriptors; then both JavaScript sockets are destroyed, which closes the originals
//     (libuv removes them from its epoll set). Each descriptor is thus closed exactly once, by its owner.
//
// Where the addon cannot load (not built, not Linux) or `--relay js` (WSGATE_RELAY=js) says so, every tunnel uses
// the JavaScript relay: one log line at start says which relay runs and why, and /debug/workers shows it.
import { createRequire } from 'node:module';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Outcome } from './outcomes.ts';

/** Which relay carries L4 tunnels: `native` (splice, when the addon loads) or `js` (relay.ts). */
export type RelayChoice = 'native' | 'js';
export const RELAY_CHOICES: readonly RelayChoice[] = ['native', 'js'];

/** What the process relays L4 tunnels with, and why (for the start-up log line and /debug/workers). */
export interface RelayStatus {
  readonly relay: RelayChoice;
  /** Why the JavaScript relay runs when native was asked for (the load error), or undefined. */
  readonly fallback: string | undefined;
}

/** The addon's interface (native/relay.c). */
interface Addon {
  init(counters: ArrayBuffer, onClose: (slot: number, reason: number, err: number) => void): number;
  add(slot: number, clientFd: number, upstreamFd: number, headUp: Buffer | undefined, headDown: Buffer | undefined): void;
  shutdown(slot: number): void;
  close(slot: number, resetClient: boolean, resetUpstream: boolean): void;
  ref(keep: boolean): void;
  pipes(): [pooled: number, inUse: number];
}

/** Reasons of relay.c's close reports, in its order (REASON_*). */
// RELAY_ERROR (no descriptor for a pipe: the process is out of them) counts as an upstream error: what the JS relay
// sees when the same shortage fails its connect to a backend.
const REASONS: readonly (Outcome | undefined)[] = [undefined, 'client_abort', 'upstream_error', undefined, 'upstream_error'];

/** Tunnels the relay can hold at once (16 B of counters each); past that, new tunnels use the JavaScript relay. */
const SLOTS = 65_536;

/**
 * The addon's path from this file: src/proxy/ (or dist/proxy/ in the image) → native/build/Release. WSGATE_RELAY_ADDON
 * names another (a test points it at nothing, to see the fallback).
 */
export const ADDON_PATH =
  process.env['WSGATE_RELAY_ADDON'] ?? fileURLToPath(new URL('../../native/build/Release/wsgate_relay.node', import.meta.url));

/** What owns a tunnel on the native relay: told once when the relay has closed both descriptors. */
export interface NativeOwner {
  relayClosed(link: NativeLink, outcome: Outcome | undefined): void;
}

/** One tunnel on the native relay: its slot and the client socket's counts at the handover. */
export class NativeLink {
  readonly slot: number;
  readonly readBase: number;
  readonly writtenBase: number;
  readonly owner: NativeOwner;
  /** The relay has reported the end: counts are final, the slot is free. */
  closed = false;
  #finalRead = 0;
  #finalWritten = 0;

  constructor(slot: number, readBase: number, writtenBase: number, owner: NativeOwner) {
    this.slot = slot;
    this.readBase = readBase;
    this.writtenBase = writtenBase;
    this.owner = owner;
  }

  /** Bytes read from the client, as client.bytesRead would count them (before the handover included). */
  get clientRead(): number {
    return this.closed ? this.#finalRead : this.readBase + counters![this.slot * 2]!;
  }

  /** Bytes written to the client, as client.bytesWritten would count them. */
  get clientWritten(): number {
    return this.closed ? this.#finalWritten : this.writtenBase + counters![this.slot * 2 + 1]!;
  }

  /** Graceful close: what is in flight is delivered, then a FIN each way; the relay reports the end. */
  shutdown(): void {
    if (!this.closed) addon!.shutdown(this.slot);
  }

  /** Closes both sockets now, an RST to the ones named. */
  close(resetClient: boolean, resetUpstream: boolean): void {
    if (!this.closed) addon!.close(this.slot, resetClient, resetUpstream);
  }

  /** @internal The end reported: freeze the counts. */
  finish(): void {
    this.#finalRead = this.readBase + counters![this.slot * 2]!;
    this.#finalWritten = this.writtenBase + counters![this.slot * 2 + 1]!;
    this.closed = true;
  }
}

let addon: Addon | undefined;
/** Why the addon did not load (tried once per process), or undefined. */
let loadError: string | undefined;
let counters: Float64Array | undefined;
/**
 * Slots are handed out in order and reused from `freeSlots`, so both arrays grow only as far as the most tunnels
 * ever open at once: filled up front for every slot, they were 1.5 MB of heap in every process, an idle sidecar's
 * included (issue 9's memory budget).
 */
const links: (NativeLink | undefined)[] = [];
const freeSlots: number[] = [];
let slotCount = 0;
let nextSlot = 0;

function takeSlot(): number | undefined {
  if (freeSlots.length > 0) return freeSlots.pop();
  return nextSlot < slotCount ? nextSlot++ : undefined;
}
let live = 0;
let status: RelayStatus | undefined;

function relayOnClose(slot: number, reason: number, _err: number): void {
  const link = links[slot];
  if (link === undefined) return;
  link.finish();
  links[slot] = undefined;
  freeSlots.push(slot);
  if (--live === 0) addon!.ref(false);
  link.owner.relayClosed(link, REASONS[reason]);
}

/** Loads the addon and starts its thread, once per process; returns why it cannot, or undefined. */
function loadAddon(): string | undefined {
  if (addon !== undefined || loadError !== undefined) return loadError;
  try {
    if (process.platform !== 'linux') throw new Error(`splice(2) is Linux-only (this is ${process.platform})`);
    const require = createRequire(import.meta.url);
    const a = require(ADDON_PATH) as Addon;
    const buffer = new ArrayBuffer(SLOTS * 16);
    const slots = a.init(buffer, relayOnClose);
    counters = new Float64Array(buffer);
    slotCount = slots;
    addon = a;
  } catch (err) {
    loadError = (err as Error).message;
  }
  return loadError;
}

/**
 * Chooses the relay of this process's L4 tunnels (a registry may override it: TunnelRegistry.relay): `native` loads
 * the addon, and falls back to `js`, with the reason, when it cannot. Default: WSGATE_RELAY, else native.
 */
export function chooseRelay(choice: RelayChoice = defaultRelayChoice()): RelayStatus {
  if (choice === 'js') return (status = { relay: 'js', fallback: undefined });
  const error = loadAddon();
  return (status = error === undefined ? { relay: 'native', fallback: undefined } : { relay: 'js', fallback: error });
}

/** WSGATE_RELAY (native or js), else native. An unknown value is refused where flags are checked (relay-flag.ts). */
export function defaultRelayChoice(): RelayChoice {
  return process.env['WSGATE_RELAY'] === 'js' ? 'js' : 'native';
}

/** The relay of this process; chooses the default one if nothing chose before. */
export function relayStatus(): RelayStatus {
  return status ?? chooseRelay();
}

/** Tunnels on the native relay now (for /debug/workers and tests). */
export function nativeTunnels(): number {
  return live;
}

/** The relay's pipes (two descriptors each): kept for reuse, and holding bytes of a busy direction now. */
export function nativePipes(): { pooled: number; inUse: number } {
  const [pooled, inUse] = addon?.pipes() ?? [0, 0];
  return { pooled, inUse };
}

interface HandleWithFd {
  fd?: number;
}

/** A plain TCP socket with nothing in flight that JavaScript would have to deliver itself. */
function transferable(s: net.Socket): boolean {
  const handle = (s as unknown as { _handle: HandleWithFd | null })._handle;
  return (
    Object.getPrototypeOf(s) === net.Socket.prototype &&
    handle !== null &&
    typeof handle.fd === 'number' &&
    handle.fd >= 0 &&
    !s.destroyed &&
    !s.connecting &&
    !s.readableEnded &&
    !(s as unknown as { _readableState: { ended: boolean } })._readableState.ended &&
    !s.writableEnded &&
    s.writableLength === 0
  );
}

/** What a paused socket has read and not delivered (then nothing: handOver destroys it before it reads again). */
function takeBuffered(s: net.Socket): Buffer | undefined {
  if (s.readableLength === 0) return undefined;
  s.pause();
  const chunk = s.read() as Buffer | null;
  return chunk ?? undefined;
}

/**
 * Moves a tunnel's two sockets onto the native relay, or returns undefined (nothing changed: the JavaScript relay
 * carries it) when the relay is not chosen (`choice`, default: the process's), not loaded, full, or a socket is not in a state to be handed over.
 */
export function handOver(
  client: net.Socket,
  upstream: net.Socket,
  owner: NativeOwner,
  choice: RelayChoice = relayStatus().relay,
): NativeLink | undefined {
  if (choice !== 'native' || loadAddon() !== undefined) return undefined;
  if (!transferable(client) || !transferable(upstream)) return undefined;
  const slot = takeSlot();
  if (slot === undefined) return undefined;
  const clientFd = (client as unknown as { _handle: HandleWithFd })._handle.fd!;
  const upstreamFd = (upstream as unknown as { _handle: HandleWithFd })._handle.fd!;
  const headUp = takeBuffered(client);
  const headDown = takeBuffered(upstream);
  try {
    addon!.add(slot, clientFd, upstreamFd, headUp, headDown);
  } catch {
    freeSlots.push(slot);
    // Nothing was handed over; what was taken out of the buffers goes back in front.
    if (headUp) client.unshift(headUp);
    if (headDown) upstream.unshift(headDown);
    return undefined;
  }
  const link = new NativeLink(slot, client.bytesRead, client.bytesWritten, owner);
  links[slot] = link;
  if (live++ === 0) addon!.ref(true);
  // 3. The duplicates are the relay's; the originals close with their sockets.
  client.destroy();
  upstream.destroy();
  return link;
}
