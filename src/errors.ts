// Stable error codes. Every error wsgate raises on purpose carries one of these in `code`; docs/errors.md
// describes each. Codes never change meaning; new ones are appended.
export const ErrorCodes = {
  /** No ready endpoint is left to try for a route. HTTP 503. */
  NO_ENDPOINT: 'WSGATE_ERR_NO_ENDPOINT',
  /** Every endpoint tried refused or reset the TCP connect. HTTP 502. */
  UPSTREAM_REFUSED: 'WSGATE_ERR_UPSTREAM_REFUSED',
  /** The TCP connect to a backend did not complete within the route's connectTimeoutSeconds. HTTP 504. */
  UPSTREAM_TIMEOUT: 'WSGATE_ERR_UPSTREAM_TIMEOUT',
  /** A configuration file could not be read or parsed as YAML. */
  CONFIG_PARSE: 'WSGATE_ERR_CONFIG_PARSE',
  /** An object in the configuration does not validate against its schema. */
  CONFIG_INVALID: 'WSGATE_ERR_CONFIG_INVALID',
  /** A command-line flag is unknown or has a bad value (exit code 2). */
  BAD_FLAG: 'WSGATE_ERR_BAD_FLAG',
  /** A listener could not bind its address. */
  LISTEN: 'WSGATE_ERR_LISTEN',
  /**
   * The TLS handshake with a backend (backendTLS) failed: its certificate is not trusted or not for the server name,
   * the CA Secret did not resolve, or it does not speak TLS. HTTP 502.
   */
  UPSTREAM_TLS: 'WSGATE_ERR_UPSTREAM_TLS',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class WsgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'WsgateError';
  }
}
