// Source allow and deny lists (issue 12): allowedSourceRanges and deniedSourceRanges of a route rule, a TCPTunnel or
// an ssl-passthrough host, compared with the real client address (client-address.ts). Denied first, then allowed:
// an address in deniedSourceRanges is refused even when an allowed range covers it, and a non-empty
// allowedSourceRanges refuses every address outside it. L7 answers 403 (source_denied); L4 closes at once.
//
// The lists are CIDRs normalised by translation (IPv4 and IPv6); each list is compiled once into a net.BlockList,
// kept beside the frozen list it came from, so a table swap drops them with the table.
import net from 'node:net';
import { addCidr, inList } from './client-address.ts';

const compiled = new WeakMap<readonly string[], net.BlockList>();

function blockList(cidrs: readonly string[]): net.BlockList {
  let list = compiled.get(cidrs);
  if (list === undefined) {
    list = new net.BlockList();
    for (const c of cidrs) addCidr(list, c);
    compiled.set(cidrs, list);
  }
  return list;
}

/** Whether `client` (unmapped, as client-address.ts gives it) may connect under these lists. */
export function sourceAllowed(client: string, allowed: readonly string[] | undefined, denied: readonly string[] | undefined): boolean {
  if (denied !== undefined && denied.length > 0 && inList(blockList(denied), client)) return false;
  if (allowed !== undefined && allowed.length > 0 && !inList(blockList(allowed), client)) return false;
  return true;
}
