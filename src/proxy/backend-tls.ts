// TLS to backends (issue 12): wss:// and https:// upstreams, per route rule (backendTLS: sni, caSecret,
// insecureSkipVerify; ingress-nginx's backend-protocol: HTTPS and proxy-ssl-*). The WebSocket path wraps the TCP
// socket upstream.ts connected (upgradeToTls), the plain-HTTP path passes the same options to https.request
// (requestOptions), so both verify the same way:
//   - the server name sent (SNI) and verified is backendTLS.sni, else the Service's DNS name
//     (`service.namespace.svc`): endpoints are pod IPs, which certificates do not name;
//   - the CA is backendTLS.caSecret's ca.crt, else the system's CAs; a caSecret that did not resolve fails the
//     connection (502), it never falls back to another trust store;
//   - insecureSkipVerify: true skips the chain and name checks (ingress-nginx's default for backend-protocol HTTPS).
// A failure is a 502 with reason upstream_tls_error, and a log line naming the backend, the server name and the
// OpenSSL reason (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID, ...).
import type net from 'node:net';
import tls from 'node:tls';
import type { BackendTLS } from '../model/table.ts';

/** The code of an error raised when caSecret is set but did not resolve: nothing is trusted. */
export const CA_UNRESOLVED = 'WSGATE_CA_UNRESOLVED';

/** The server name for a backend `namespace/service:port` (Backend.name). */
export function serverName(t: BackendTLS, backendName: string): string {
  if (t.sni !== '') return t.sni;
  const m = /^([^/]+)\/([^:]+):\d+$/.exec(backendName);
  return m ? `${m[2]}.${m[1]}.svc` : backendName;
}

/** Options for tls.connect / https.request, or an error when the CA Secret did not resolve. */
export function requestOptions(t: BackendTLS, backendName: string): tls.ConnectionOptions | NodeJS.ErrnoException {
  if (t.caSecret !== '' && t.caPem === '' && !t.insecureSkipVerify) {
    return Object.assign(new Error(`CA Secret ${t.caSecret} did not resolve`), { code: CA_UNRESOLVED });
  }
  return {
    servername: serverName(t, backendName),
    rejectUnauthorized: !t.insecureSkipVerify,
    ...(t.caPem !== '' ? { ca: t.caPem } : {}),
    // Backends are addressed by IP: the identity checked is the server name, not the address dialled.
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName(t, backendName), cert),
    ALPNProtocols: ['http/1.1'],
  };
}

/** Wraps a connected TCP socket in TLS; resolves once the handshake (and verification) is done. */
export function upgradeToTls(socket: net.Socket, t: BackendTLS, backendName: string, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const options = requestOptions(t, backendName);
    if (options instanceof Error) {
      socket.destroy();
      reject(options);
      return;
    }
    const secure = tls.connect({ ...options, socket });
    const timer = setTimeout(() => secure.destroy(Object.assign(new Error('TLS handshake timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.removeListener('error', onError);
      resolve(secure);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
      reject((err as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? err : Object.assign(err, { wsgateTls: true }));
    };
    secure.once('error', onError);
  });
}

/** Whether a connection error is TLS's (certificate, handshake, protocol) rather than TCP's. */
export function isTlsError(err: NodeJS.ErrnoException): boolean {
  if ((err as { wsgateTls?: boolean }).wsgateTls === true) return true;
  const code = err.code ?? '';
  return (
    code === CA_UNRESOLVED ||
    code === 'EPROTO' ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    /CERT|SIGNATURE|SELF_SIGNED|ISSUER/.test(code)
  );
}
