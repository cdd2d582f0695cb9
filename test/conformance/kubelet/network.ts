// TEST FIXTURE — never ships; no code under src/ knows it exists.
//
// The pod network of the process kubelet: one Linux bridge in the root network namespace holding the node's
// address, and per Pod a network namespace joined to the bridge by a veth pair, with its own address and a default
// route via the node. So the host reaches every pod IP, pods reach each other and the host (the API server listens on
// the node address), and nothing is routed anywhere else.
//
// Addresses come from TEST-NET-2 (198.51.100.0/24, RFC 5737), cut into four /26 blocks: a network claims one (or
// two, for a /25) by creating /run/wsgate-kubelet/blocks/<block> atomically (mkdir), so parallel test runs never share
// a block. TEST-NET-3 belongs to the controller tests (test/controller/pod-network.ts), and TEST-NET-1 collides with
// this machine's eth0 (docs/testing-kubernetes.md).
//
// Everything it makes is named with a random id (bridge `wskb<id>`, namespaces `wsgate-kubelet-<id>-<n>`, veths
// `wkv<8 hex>`) and recorded under /run/wsgate-kubelet/<id>/ with the owner's pid. destroy() removes it all; a
// network whose owner died without destroy() (SIGKILL) is swept by the next createPodNetwork() on the machine.
// Needs root and iproute2.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const STATE_DIR = '/run/wsgate-kubelet';
const BLOCKS_DIR = join(STATE_DIR, 'blocks');
/** The /26 blocks of TEST-NET-2, in the order they are tried. */
const BLOCKS = [0, 64, 128, 192];

export interface PodNetworkOptions {
  /** [prefix=26] 26: one block of 64 addresses (61 usable); 25: two adjacent blocks (125 usable). */
  readonly prefix?: 25 | 26;
}

export interface PodInterface {
  readonly netns: string;
  readonly ip: string;
  /** The bridge end of the pod's veth pair. */
  readonly hostVeth?: string;
}

export interface PodNetwork {
  /** The random id in every name this network made. */
  readonly id: string;
  readonly bridge: string;
  /** The node's address on the bridge (the Node's InternalIP, the pods' default gateway). */
  readonly hostIP: string;
  /** e.g. 198.51.100.64/26. */
  readonly cidr: string;
  /** A new network namespace with the next free address, up and routed. */
  addPod(): PodInterface;
  /** Kills what still runs in the namespace, deletes its veth pair and the namespace, and frees the address. */
  removePod(p: PodInterface): void;
  /**
   * Takes a free address of the block for something other than a pod (a LoadBalancer address the harness adds to
   * the bridge): taken from the top of the block, pods from the bottom.
   */
  allocateAddress(): string;
  releaseAddress(ip: string): void;
  /** Removes every namespace, the bridge and the claim. Safe to call twice. */
  destroy(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The processes in a network namespace (`ip netns pids`); none when it is gone. */
function netnsPids(netns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function netnsList(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
  } catch {
    return [];
  }
}

/** Removes what networks of dead owners left behind: their namespaces, bridges and block claims. */
export function sweepStaleNetworks(): void {
  if (!existsSync(STATE_DIR)) return;
  for (const id of readdirSync(STATE_DIR)) {
    if (id === 'blocks') continue;
    const dir = join(STATE_DIR, id);
    const ownerFile = join(dir, 'owner');
    const owner = existsSync(ownerFile) ? Number(readFileSync(ownerFile, 'utf8')) : NaN;
    if (Number.isInteger(owner) && alive(owner)) continue;
    removeNetwork(id);
  }
}

function removeNetwork(id: string): void {
  for (const ns of netnsList()) if (ns.startsWith(`wsgate-kubelet-${id}-`)) tryIp('netns', 'del', ns);
  tryIp('link', 'del', `wskb${id}`);
  if (existsSync(BLOCKS_DIR)) {
    for (const b of readdirSync(BLOCKS_DIR)) {
      const f = join(BLOCKS_DIR, b, 'id');
      if (existsSync(f) && readFileSync(f, 'utf8') === id) rmSync(join(BLOCKS_DIR, b), { recursive: true, force: true });
    }
  }
  rmSync(join(STATE_DIR, id), { recursive: true, force: true });
}

/** Claims `count` adjacent free /26 blocks (mkdir is atomic); returns the first block's last octet. */
function claimBlocks(id: string, count: 1 | 2): number {
  mkdirSync(BLOCKS_DIR, { recursive: true });
  for (const first of BLOCKS) {
    if (first % (64 * count) !== 0) continue;
    const wanted = Array.from({ length: count }, (_, i) => first + 64 * i);
    const taken: string[] = [];
    for (const b of wanted) {
      const dir = join(BLOCKS_DIR, `198.51.100.${b}`);
      try {
        mkdirSync(dir);
      } catch {
        break;
      }
      writeFileSync(join(dir, 'id'), id);
      taken.push(dir);
    }
    if (taken.length === count) return first;
    for (const dir of taken) rmSync(dir, { recursive: true, force: true });
  }
  throw new Error(`no free /${32 - Math.log2(64 * count)} of 198.51.100.0/24 for a pod network: ${readdirSync(BLOCKS_DIR).join(', ')} are claimed (by other test runs, or stale: see ${STATE_DIR})`);
}

export function createPodNetwork(o: PodNetworkOptions = {}): PodNetwork {
  sweepStaleNetworks();
  const prefix = o.prefix ?? 26;
  const size = prefix === 25 ? 128 : 64;
  const id = randomBytes(3).toString('hex');
  const dir = join(STATE_DIR, id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'owner'), String(process.pid));
  let first: number;
  try {
    first = claimBlocks(id, prefix === 25 ? 2 : 1);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const bridge = `wskb${id}`;
  const addr = (i: number): string => `198.51.100.${first + i}`;
  const hostIP = addr(1);
  const cidr = `${addr(0)}/${prefix}`;
  // Offsets in the block: 0 network, 1 node, 2.. pods, ..size-2 other addresses, size-1 broadcast.
  const used = new Set<number>([0, 1, size - 1]);
  let destroyed = false;
  let seq = 0;

  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    process.removeListener('exit', destroy);
    removeNetwork(id);
  };
  process.once('exit', destroy);
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${hostIP}/${prefix}`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
  } catch (err) {
    destroy();
    throw err;
  }

  const take = (from: number, step: 1 | -1): number => {
    for (let i = from; i > 0 && i < size - 1; i += step) {
      if (!used.has(i)) {
        used.add(i);
        return i;
      }
    }
    throw new Error(`pod network ${cidr} is full`);
  };
  const offsetOf = (address: string): number => Number(address.split('.')[3]) - first;

  return {
    id,
    bridge,
    hostIP,
    cidr,
    addPod() {
      if (destroyed) throw new Error('the pod network is destroyed');
      const i = take(2, 1);
      const podIP = addr(i);
      const netns = `wsgate-kubelet-${id}-${++seq}`;
      const tag = randomBytes(4).toString('hex');
      const host = `wkv${tag}`;
      const peer = `wkp${tag}`;
      try {
        ip('netns', 'add', netns);
        ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
        ip('link', 'set', host, 'master', bridge);
        ip('link', 'set', host, 'up');
        ip('link', 'set', peer, 'netns', netns);
        ip('-n', netns, 'link', 'set', peer, 'name', 'eth0');
        ip('-n', netns, 'addr', 'add', `${podIP}/${prefix}`, 'dev', 'eth0');
        // An address is reused soon after its last pod went: the bridge (and every other pod) may still map it to
        // that pod's MAC for tens of seconds (a REACHABLE neighbour entry), and traffic to the new pod is lost until
        // it expires. Announce the new MAC (gratuitous ARP when eth0 comes up), and drop the host's entry.
        execFileSync('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.conf.eth0.arp_notify=1'], { stdio: ['ignore', 'ignore', 'pipe'] });
        tryIp('neigh', 'flush', 'to', podIP, 'dev', bridge);
        ip('-n', netns, 'link', 'set', 'eth0', 'up');
        ip('-n', netns, 'link', 'set', 'lo', 'up');
        ip('-n', netns, 'route', 'add', 'default', 'via', hostIP);
      } catch (err) {
        tryIp('link', 'del', host);
        tryIp('netns', 'del', netns);
        used.delete(i);
        throw err;
      }
      return { netns, ip: podIP, hostVeth: host };
    },
    removePod(p) {
      // `ip netns del` only unmounts the namespace: while a process is left in it (a worker its parent did not take
      // down), it lives on with its eth0 on the bridge and the address, which the next pod gets. Two interfaces then
      // answer ARP for one address, and traffic to the new pod is lost until the old one goes.
      for (const pid of netnsPids(p.netns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      if (p.hostVeth !== undefined) tryIp('link', 'del', p.hostVeth);
      tryIp('netns', 'del', p.netns);
      used.delete(offsetOf(p.ip));
    },
    allocateAddress() {
      return addr(take(size - 2, -1));
    },
    releaseAddress(address) {
      used.delete(offsetOf(address));
    },
    destroy,
  };
}
