// Pod addresses for controller tests. The API server refuses loopback EndpointSlice addresses, so backends live at
// TEST-NET-3 addresses (203.0.113.0/24, RFC 5737) inside a network namespace this test creates, joined to the host
// by a veth pair (docs/testing-kubernetes.md). Each test file takes its own /28 (`slot` 1..14) so that files
// running in parallel do not collide. Needs root and iproute2.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface PodNetwork {
  /** The i-th pod address of this network: i = 0..3 are on the namespace's interface (4..12 are in the /28, unassigned). */
  podIP(i: number): string;
  /**
   * Starts an echo backend (echo-backend.ts) at ip:port that answers `name:message`: a WebSocket server, or with
   * `mode` a plain TCP or TLS (`tls`: its certificate and key) server.
   */
  startEchoBackend(
    ip: string, port: number, name: string,
    o?: { mode?: 'ws' | 'tcp' | 'tls'; tls?: { certPem: string; keyPem: string } },
  ): Promise<{ stop(): Promise<void> }>;
  destroy(): void;
}

const ECHO = fileURLToPath(new URL('./echo-backend.ts', import.meta.url));

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Removes what a test process killed before its cleanup left in `slot`: its namespace (and with it the veth pair)
 * would keep the slot's /28 routed to a namespace nobody serves. Names end in the slot's hex digit and start with
 * the owner's pid (mod 100000); a live pid's namespace belongs to a run in progress and is left alone.
 */
function removeStaleNamespaces(slot: number): void {
  let names: string[];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '');
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^wsgate-ctl-(\d+)([0-9a-f])$/.exec(name);
    if (!m || m[2] !== slot.toString(16)) continue;
    const pid = Number(m[1]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      // No such process: the namespace is stale.
    }
    if (!alive) {
      try {
        ip('netns', 'del', name);
      } catch {
        // Gone meanwhile.
      }
    }
  }
}

export function createPodNetwork(slot: number): PodNetwork {
  removeStaleNamespaces(slot);
  const base = 16 * slot;
  const tag = `${process.pid % 100000}${slot.toString(16)}`;
  const ns = `wsgate-ctl-${tag}`;
  const host = `wgh${tag}`;
  const peer = `wgp${tag}`;
  const hostIP = `203.0.113.${base + 1}`;
  const podIP = (i: number): string => `203.0.113.${base + 2 + i}`;
  const children = new Set<ChildProcess>();
  ip('netns', 'add', ns);
  try {
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', ns);
    ip('addr', 'add', `${hostIP}/28`, 'dev', host);
    ip('link', 'set', host, 'up');
    for (let i = 0; i < 4; i++) ip('-n', ns, 'addr', 'add', `${podIP(i)}/28`, 'dev', peer);
    ip('-n', ns, 'link', 'set', peer, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  } catch (err) {
    destroy();
    throw err;
  }
  function destroy(): void {
    for (const c of children) c.kill('SIGKILL');
    try { ip('link', 'del', host); } catch { /* already gone */ }
    try { ip('netns', 'del', ns); } catch { /* already gone */ }
  }
  process.once('exit', destroy);
  return {
    podIP,
    async startEchoBackend(address, port, name, o = {}) {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ECHO, address, String(port), name, o.mode ?? 'ws'], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, ECHO_TLS_CERT: o.tls?.certPem ?? '', ECHO_TLS_KEY: o.tls?.keyPem ?? '' },
      });
      children.add(child);
      const [line] = (await Promise.race([
        once(child.stdout, 'data'),
        once(child, 'exit').then(() => { throw new Error(`echo backend ${name} exited before it was ready`); }),
      ])) as [Buffer];
      if (!String(line).includes('ready')) throw new Error(`echo backend ${name}: ${String(line)}`);
      return {
        async stop() {
          if (child.exitCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGTERM');
          await exited;
          children.delete(child);
        },
      };
    },
    destroy,
  };
}
