// The injector's HTTPS endpoint: POST /mutate with an AdmissionReview v1, answered by admit() (review.ts). Every
// answer allows the Pod; each one is logged with its reason and counted. The serving certificate can be swapped
// while running (setCertificate), for rotated files and for the self-signed mode's Secret.
import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { ErrorCodes, WsgateError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { ListenAddress } from '../proxy/l7.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { InjectOptions } from './mutate.ts';
import { admit } from './review.ts';

/** A review larger than this is refused with 413: the API server's own request limit is 3 MiB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface ServingCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface WebhookServerOptions {
  readonly log: Logger;
  readonly metrics: WebhookMetrics;
  readonly inject: InjectOptions;
  readonly certificate: ServingCertificate;
}

export class WebhookServer {
  readonly #o: WebhookServerOptions;
  readonly #server: https.Server;
  #certPem: string;

  constructor(o: WebhookServerOptions) {
    this.#o = o;
    this.#certPem = o.certificate.certPem;
    this.#server = https.createServer({ cert: o.certificate.certPem, key: o.certificate.keyPem, minVersion: 'TLSv1.2' }, (req, res) =>
      this.#onRequest(req, res),
    );
    this.#server.keepAliveTimeout = 30_000;
    this.#setExpiry(o.certificate.certPem);
  }

  async listen(addr: ListenAddress): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err) =>
        reject(new WsgateError(ErrorCodes.LISTEN, `cannot listen on ${addr.host}:${addr.port} (webhook)`, { cause: err })),
      );
      this.#server.listen({ host: addr.host, port: addr.port }, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  /** Serves `c` to new TLS connections from now on; does nothing when it is the certificate already served. */
  setCertificate(c: ServingCertificate): boolean {
    if (c.certPem === this.#certPem) return false;
    this.#server.setSecureContext({ cert: c.certPem, key: c.keyPem, minVersion: 'TLSv1.2' });
    this.#certPem = c.certPem;
    this.#setExpiry(c.certPem);
    this.#o.log.info({ notAfter: new X509Certificate(c.certPem).validTo }, 'serving certificate replaced');
    return true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #setExpiry(pem: string): void {
    this.#o.metrics.certificateExpiry.set(Date.parse(new X509Certificate(pem).validTo) / 1000);
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path !== '/mutate') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: POST an AdmissionReview to /mutate\n');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'POST' }).end('POST an AdmissionReview\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        this.#answerMalformed(res, 413, 'review too large');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        this.#answerMalformed(res, 400, 'body is not JSON');
        return;
      }
      this.#answer(res, body);
    });
  }

  #answer(res: http.ServerResponse, body: unknown): void {
    const log = this.#o.log;
    let outcome;
    try {
      outcome = admit(body, this.#o.inject);
    } catch (err) {
      // A Pod shape admit() did not expect: still never a denial.
      const uid = (body as { request?: { uid?: unknown } } | null)?.request?.uid;
      log.error({ err }, 'admission failed; pod admitted unchanged');
      this.#o.metrics.admissions.inc({ result: 'malformed' });
      if (typeof uid !== 'string') {
        this.#answerMalformed(res, 400, 'not an AdmissionReview');
        return;
      }
      const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(review));
      return;
    }
    this.#o.metrics.admissions.inc({ result: outcome.result });
    const fields = { namespace: outcome.namespace, pod: outcome.pod, result: outcome.result, reason: outcome.reason };
    if (outcome.result === 'injected') log.info(fields, 'sidecar injected');
    else if (outcome.result === 'bad_annotation' || outcome.result === 'malformed') log.warn(fields, 'pod admitted without sidecar');
    else log.debug(fields, 'pod admitted without sidecar');
    if (outcome.review === undefined) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end(`${outcome.reason}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(outcome.review));
  }

  #answerMalformed(res: http.ServerResponse, status: number, reason: string): void {
    this.#o.metrics.admissions.inc({ result: 'malformed' });
    this.#o.log.warn({ result: 'malformed', reason }, 'request refused');
    if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close' }).end(`${reason}\n`);
  }
}
