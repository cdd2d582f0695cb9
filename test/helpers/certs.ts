// Test certificates made with the openssl CLI (Debian's openssl): a CA and leaf certificates signed by it, for
// TLS termination and passthrough tests. Real X.509, real keys; nothing here is a stand-in.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCA {
  readonly certPem: string;
  readonly keyPem: string;
  /** Issues a leaf certificate for the given DNS names (the first is also the CN). */
  issue(names: readonly string[], opts?: { days?: number }): { certPem: string; keyPem: string };
  dispose(): void;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestCA(name = 'wsgate test CA'): TestCA {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-ca-'));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-days', '2', '-subj', `/CN=${name}`, '-out', 'ca.crt'], dir);
  let serial = 1;
  return {
    certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    keyPem: readFileSync(join(dir, 'ca.key'), 'utf8'),
    issue(names, opts = {}) {
      const id = `leaf${serial++}`;
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${id}.key`], dir);
      openssl(['req', '-new', '-key', `${id}.key`, '-subj', `/CN=${names[0]}`, '-out', `${id}.csr`], dir);
      writeFileSync(
        join(dir, `${id}.ext`),
        `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(
        ['x509', '-req', '-in', `${id}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
          '-days', String(opts.days ?? 1), '-extfile', `${id}.ext`, '-out', `${id}.crt`],
        dir,
      );
      return { certPem: readFileSync(join(dir, `${id}.crt`), 'utf8'), keyPem: readFileSync(join(dir, `${id}.key`), 'utf8') };
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
