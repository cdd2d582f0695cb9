// TEST FIXTURE — never ships; no code under src/ knows it exists.
//
// How the process kubelet starts one container's program: in the pod's network namespace (`ip netns exec`), in a
// mount and UTS namespace of its own (`unshare`), where a small shell script bind-mounts the pod's volumes at their
// mountPaths, sets the hostname to the pod's name, and execs the program (so the pid the kubelet holds is the
// program's, and its signals reach it).
//
// A mountPath that does not exist on the host (`/etc/secret-volume`, `/var/run/secrets/kubernetes.io/serviceaccount`)
// is made without touching the host: its deepest existing ancestor is covered, inside the private mount namespace
// only, by an overlay whose lower layer is that same directory and whose upper layer is in the pod's directory; the
// missing directories are created in the upper layer. A mountPath whose only existing ancestor is `/` is refused.
//
// `setpriv --pdeathsig KILL` makes the kernel kill the program when the process that started it dies, however it dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Mount {
  readonly hostPath: string;
  readonly mountPath: string;
  readonly readOnly: boolean;
}

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The deepest ancestor of `path` (itself included) that exists on the host, symlinks resolved. */
function existingAncestor(path: string): string {
  let p = path;
  while (!existsSync(p)) p = dirname(p);
  return realpathSync(p);
}

/** The shell script that prepares the mount namespace and execs "$@". Exported for its unit test. */
export function sandboxScript(o: { mounts: readonly Mount[]; hostname: string; workingDir: string; overlayDir: string }): string {
  const lines = ['set -eu', `hostname ${quote(o.hostname)}`];
  const overlaid: string[] = [];
  const sorted = [...o.mounts].sort((a, b) => a.mountPath.localeCompare(b.mountPath));
  for (const m of sorted) {
    if (!m.mountPath.startsWith('/')) throw new Error(`mountPath ${m.mountPath} is not absolute`);
    if (!existsSync(m.mountPath)) {
      const ancestor = existingAncestor(m.mountPath);
      if (ancestor === '/') throw new Error(`mountPath ${m.mountPath}: only / exists above it, and the process kubelet does not cover /`);
      if (!overlaid.some((d) => ancestor === d || ancestor.startsWith(d + '/'))) {
        const n = overlaid.length;
        const upper = join(o.overlayDir, String(n), 'upper');
        const work = join(o.overlayDir, String(n), 'work');
        mkdirSync(upper, { recursive: true });
        mkdirSync(work, { recursive: true });
        lines.push(`mount -t overlay overlay -o ${quote(`lowerdir=${ancestor},upperdir=${upper},workdir=${work}`)} ${quote(ancestor)}`);
        overlaid.push(ancestor);
      }
      lines.push(`mkdir -p ${quote(m.mountPath)}`);
    }
    lines.push(`mount --bind ${quote(m.hostPath)} ${quote(m.mountPath)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${quote(m.mountPath)}`);
  }
  lines.push(`cd ${quote(o.workingDir)}`, 'exec "$@"', '');
  return lines.join('\n');
}

export interface StartOptions {
  readonly netns: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly mounts: readonly Mount[];
  readonly hostname: string;
  /** The container's workingDir, else the pod's directory. */
  readonly workingDir: string;
  /** A directory of this container's own: the script, the overlay layers. */
  readonly dir: string;
  /** Appended to with the program's stdout and stderr. */
  readonly logPath: string;
}

export function startInSandbox(o: StartOptions): ChildProcess {
  mkdirSync(o.dir, { recursive: true });
  const script = join(o.dir, 'sandbox.sh');
  writeFileSync(script, sandboxScript({ mounts: o.mounts, hostname: o.hostname, workingDir: o.workingDir, overlayDir: join(o.dir, 'overlay') }));
  const inner = ['ip', 'netns', 'exec', o.netns, 'unshare', '--mount', '--uts', '--propagation', 'private', '--', '/bin/sh', script, ...o.argv];
  const [cmd, args] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', ...inner]] : [inner[0] ?? 'ip', inner.slice(1)];
  const fd = openSync(o.logPath, 'a');
  try {
    // PATH from the kubelet's own environment when the pod sets none, as an image's default PATH would.
    return spawn(cmd, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...o.env }, stdio: ['ignore', fd, fd], cwd: o.dir });
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs a short command (a preStop or exec probe) in the pod's network namespace, without the container's mounts;
 * resolves with its exit code (null after a kill on timeout).
 */
export function execInPod(netns: string, argv: readonly string[], env: Readonly<Record<string, string>>, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, ...argv], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', () => { clearTimeout(timer); resolve(null); });
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}
