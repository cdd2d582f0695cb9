// Validation of objects read from files (`wsgate serve --config`), where no API server stands in front of wsgate.
// wsgate.io kinds are checked against the same structural schemas the CRDs carry (./schema.ts), by a small
// validator that knows exactly the keywords those schemas use. Unlike the API server, which prunes unknown
// fields, this rejects them: in a file they are almost always typos, and a silently dropped `idleTimeoutSecond`
// is worse than a loud one. Kubernetes kinds get only the checks a loader needs (apiVersion/kind, metadata.name);
// their content is the translator's concern, which reports bad parts as conditions.
import { GATEWAY_API_VERSIONS } from './gateway-api.ts';
import { KIND_API_VERSIONS } from './types.ts';
import {
  AUTH_URL_PATTERN,
  CIDR_PATTERN,
  DNS1123_SUBDOMAIN,
  METHOD_PATTERN,
  SERVER_NAME_PATTERN,
  HOSTNAME_PATTERN,
  PATH_PATTERN,
  PORT_NAME_PATTERN,
  RULE_NAME_PATTERN,
  SERVICE_NAME_PATTERN,
  TOKEN_PATTERN,
  tcpTunnelSchema,
  webSocketRouteSchema,
  type SchemaNode,
} from './schema.ts';

export interface FieldError {
  /** Path of the offending field, e.g. `spec.rules[0].backends[1].port`; empty for the object itself. */
  field: string;
  message: string;
}

/** The apiVersion each kind wsgate reads must carry. */
export const KNOWN_KINDS: Readonly<Record<string, string>> = KIND_API_VERSIONS;

/** Kinds without a namespace; every other known kind is namespaced. */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set(['IngressClass', 'GatewayClass', 'Namespace']);

/**
 * [issue 14] Kinds read at any of several apiVersions: the Gateway API's (v1, and v1beta1 where the standard channel
 * still serves it) and Namespaces (for allowedRoutes selectors). Their content is checked by the translator, as for
 * Kubernetes kinds.
 */
const MULTI_VERSION_KINDS: Readonly<Record<string, readonly string[]>> = { ...GATEWAY_API_VERSIONS, Namespace: ['v1'] };

const SCHEMAS: Readonly<Record<string, SchemaNode>> = {
  WebSocketRoute: webSocketRouteSchema(),
  TCPTunnel: tcpTunnelSchema(),
};

/**
 * What a value must be, in words and with an example, for every `pattern` in ./schema.ts: a person reads this, not
 * the regular expression. The validator prints `"VALUE" must be ...`; test/api/validate.test.ts fails when a
 * pattern of the schemas has no entry here.
 */
export const PATTERN_MESSAGES: Readonly<Record<string, string>> = {
  [HOSTNAME_PATTERN]:
    'must be a host name in lower case: labels of letters, digits and "-" joined by dots, optionally starting ' +
    'with "*." for every subdomain, with no port or trailing dot, e.g. chat.example.com or *.example.com',
  [PATH_PATTERN]: 'must be an absolute path: starting with "/", with no spaces, "?" or "#", e.g. /chat',
  [SERVICE_NAME_PATTERN]:
    'must be the name of a Service in the same namespace: lower-case letters, digits and "-", starting with a ' +
    'letter, e.g. chat-backend',
  [RULE_NAME_PATTERN]:
    'must be a rule name: lower-case letters, digits and "-", starting and ending with a letter or digit, e.g. chat-v2',
  [PORT_NAME_PATTERN]: "must be a port number (1-65535) or the name of one of the Service's ports, e.g. 8080 or http",
  [TOKEN_PATTERN]:
    "must be an HTTP token: letters, digits and !#$%&'*+-.^_`|~, with no spaces, commas, quotes or slashes, " +
    'e.g. X-User-Id or chat.v1',
  [CIDR_PATTERN]: 'must be a CIDR or an address, IPv4 or IPv6, e.g. 10.0.0.0/8 or 192.0.2.7 or 2001:db8::/32',
  [AUTH_URL_PATTERN]: 'must be an http:// or https:// URL (or "" for none), e.g. http://auth.auth.svc:4180/oauth2/auth',
  [METHOD_PATTERN]: 'must be an HTTP method in upper case, e.g. GET',
  [SERVER_NAME_PATTERN]: 'must be a DNS name in lower case, e.g. chat.apps.svc',
  [`^${DNS1123_SUBDOMAIN}$`]:
    'must be the name of a Secret in the same namespace: lower-case letters, digits, "-" and ".", starting and ' +
    'ending with a letter or digit, e.g. chat-tls',
};

const NAME_RE = new RegExp(`^${DNS1123_SUBDOMAIN}$`);
const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// RFC 3339 date-time, as Kubernetes' `format: date-time` accepts it.
const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Every problem with `obj`, in document order; empty when it is valid. Never throws. */
export function validateObject(obj: unknown): FieldError[] {
  if (!isPlainObject(obj)) return [{ field: '', message: `must be an object, got ${typeName(obj)}` }];
  const errors: FieldError[] = [];
  const { apiVersion, kind } = obj;
  if (typeof kind !== 'string' || kind === '') return [{ field: 'kind', message: 'required value' }];
  const versions = Object.hasOwn(MULTI_VERSION_KINDS, kind) ? MULTI_VERSION_KINDS[kind] : undefined;
  if (versions !== undefined) {
    if (typeof apiVersion !== 'string' || !versions.includes(apiVersion)) {
      const got = typeof apiVersion === 'string' ? `"${apiVersion}"` : 'none';
      errors.push({ field: 'apiVersion', message: `unsupported apiVersion ${got} for kind ${kind}: expected ${versions.map((v) => `"${v}"`).join(' or ')}` });
    }
    validateMetadata(obj.metadata, errors);
    return errors;
  }
  const expectedApiVersion = KNOWN_KINDS[kind];
  if (expectedApiVersion === undefined) {
    return [{ field: 'kind', message: `unsupported kind "${kind}": supported kinds: ${[...Object.keys(KNOWN_KINDS), ...Object.keys(MULTI_VERSION_KINDS)].join(', ')}` }];
  }
  if (apiVersion !== expectedApiVersion) {
    const got = typeof apiVersion === 'string' ? `"${apiVersion}"` : 'none';
    errors.push({ field: 'apiVersion', message: `unsupported apiVersion ${got} for kind ${kind}: expected "${expectedApiVersion}"` });
  }
  validateMetadata(obj.metadata, errors);
  const schema = SCHEMAS[kind];
  if (schema !== undefined) {
    // metadata is the API server's to validate (checked above); the schema says only `type: object`.
    const rest = { ...obj };
    delete rest.metadata;
    validateNode(rest, schema, '', errors);
  }
  return errors;
}

function validateMetadata(metadata: unknown, errors: FieldError[]): void {
  if (metadata === undefined) {
    errors.push({ field: 'metadata.name', message: 'required value' });
    return;
  }
  if (!isPlainObject(metadata)) {
    errors.push({ field: 'metadata', message: `invalid type: expected object, got ${typeName(metadata)}` });
    return;
  }
  const { name, namespace, creationTimestamp, labels, annotations } = metadata;
  if (name === undefined || name === '') errors.push({ field: 'metadata.name', message: 'required value' });
  else if (typeof name !== 'string') errors.push(typeError('metadata.name', 'string', name));
  else if (name.length > 253 || !NAME_RE.test(name)) {
    errors.push({
      field: 'metadata.name',
      message:
        `${JSON.stringify(name)} must be a name in lower case (an RFC 1123 subdomain): letters, digits, "-" and ".", ` +
        'starting and ending with a letter or digit, at most 253 characters, e.g. chat or chat.v2',
    });
  }
  if (namespace !== undefined) {
    if (typeof namespace !== 'string') errors.push(typeError('metadata.namespace', 'string', namespace));
    else if (namespace.length > 63 || !NAMESPACE_RE.test(namespace)) {
      errors.push({
        field: 'metadata.namespace',
        message:
          `${JSON.stringify(namespace)} must be a namespace name in lower case (an RFC 1123 label): letters, digits ` +
          'and "-", starting and ending with a letter or digit, at most 63 characters, e.g. apps',
      });
    }
  }
  // A Date is what @kubernetes/client-node's deserializer makes; a string is what YAML gives.
  if (creationTimestamp !== undefined && !(creationTimestamp instanceof Date && !Number.isNaN(creationTimestamp.getTime()))) {
    if (typeof creationTimestamp !== 'string' || !isDateTime(creationTimestamp)) {
      errors.push({ field: 'metadata.creationTimestamp', message: 'invalid value: must be an RFC 3339 date-time' });
    }
  }
  for (const [key, map] of [['labels', labels], ['annotations', annotations]] as const) {
    if (map === undefined) continue;
    if (!isPlainObject(map)) {
      errors.push(typeError(`metadata.${key}`, 'object', map));
      continue;
    }
    for (const [k, v] of Object.entries(map)) {
      if (typeof v !== 'string') errors.push(typeError(`metadata.${key}[${k}]`, 'string', v));
    }
  }
}

function validateNode(value: unknown, schema: SchemaNode, field: string, errors: FieldError[]): void {
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (!(typeof value === 'string' || Number.isInteger(value))) {
      errors.push({ field, message: `invalid type: expected integer or string, got ${typeName(value)}` });
      return;
    }
  } else if (schema.type !== undefined && !hasType(value, schema.type)) {
    errors.push(typeError(field, schema.type, value));
    return;
  }
  if (typeof value === 'string') validateString(value, schema, field, errors);
  else if (typeof value === 'number') validateNumber(value, schema, field, errors);
  else if (Array.isArray(value)) validateArray(value, schema, field, errors);
  else if (isPlainObject(value)) validateObjectNode(value, schema, field, errors);
}

function validateString(value: string, schema: SchemaNode, field: string, errors: FieldError[]): void {
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    const supported = schema.enum.map((e) => `"${e}"`).join(', ');
    errors.push({ field, message: `unsupported value "${value}": supported values: ${supported}` });
    return;
  }
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    errors.push({ field, message: `invalid value "${value}": must be at least ${schema.minLength} characters long` });
  }
  if (schema.maxLength !== undefined && value.length > schema.maxLength) {
    errors.push({ field, message: `too long: must have at most ${schema.maxLength} characters` });
  }
  if (schema.pattern !== undefined && !compiled(schema.pattern).test(value)) {
    errors.push({ field, message: patternMessage(value, schema) });
  }
  if (schema.format === 'date-time' && !isDateTime(value)) {
    errors.push({ field, message: `invalid value "${value}": must be an RFC 3339 date-time` });
  }
}

function validateNumber(value: number, schema: SchemaNode, field: string, errors: FieldError[]): void {
  if (schema.minimum !== undefined && value < schema.minimum) {
    errors.push({ field, message: `invalid value ${value}: must be greater than or equal to ${schema.minimum}` });
  }
  if (schema.maximum !== undefined && value > schema.maximum) {
    errors.push({ field, message: `invalid value ${value}: must be less than or equal to ${schema.maximum}` });
  }
}

function validateArray(value: unknown[], schema: SchemaNode, field: string, errors: FieldError[]): void {
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    errors.push({ field, message: `must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}` });
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    errors.push({ field, message: `too many: must have at most ${schema.maxItems} items` });
  }
  if (schema.items === undefined) return;
  for (let i = 0; i < value.length; i++) validateNode(value[i], schema.items, `${field}[${i}]`, errors);
}

function validateObjectNode(value: Record<string, unknown>, schema: SchemaNode, field: string, errors: FieldError[]): void {
  const keys = Object.keys(value);
  if (schema.minProperties !== undefined && keys.length < schema.minProperties) {
    errors.push({ field, message: `must have at least ${schema.minProperties} field${schema.minProperties === 1 ? '' : 's'} set` });
  }
  if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
    const set = keys.join(', ');
    errors.push({ field, message: `must have at most ${schema.maxProperties} field${schema.maxProperties === 1 ? '' : 's'} set, got: ${set}` });
  }
  for (const name of schema.required ?? []) {
    if (value[name] === undefined || value[name] === null) errors.push({ field: join(field, name), message: 'required value' });
  }
  const properties = schema.properties ?? {};
  for (const key of keys) {
    const child = Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (child === undefined) {
      errors.push({ field: join(field, key), message: 'unknown field' });
      continue;
    }
    const v = value[key];
    // YAML `key:` with no value is null; Kubernetes drops nulls for non-nullable fields, and so does this.
    if (v === null || v === undefined) continue;
    validateNode(v, child, join(field, key), errors);
  }
}

function patternMessage(value: string, schema: SchemaNode): string {
  const pattern = schema.pattern ?? '';
  const must = PATTERN_MESSAGES[pattern] ?? `must match the regular expression ${pattern}`;
  // `port: "80"`: YAML reads a quoted number as a string, and a port given by string is a port name.
  const quotedNumber = schema['x-kubernetes-int-or-string'] === true && /^\d+$/.test(value);
  const hint = quotedNumber ? ` (in quotes, ${value} is read as a port name, and a name needs a letter: write ${value} without quotes)` : '';
  return `${JSON.stringify(value)} ${must}${hint}`;
}

const patternCache = new Map<string, RegExp>();
function compiled(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

function hasType(value: unknown, type: NonNullable<SchemaNode['type']>): boolean {
  switch (type) {
    case 'object':
      return isPlainObject(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'boolean':
      return typeof value === 'boolean';
  }
}

function isDateTime(s: string): boolean {
  return DATE_TIME_RE.test(s) && !Number.isNaN(Date.parse(s));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeError(field: string, expected: string, value: unknown): FieldError {
  return { field, message: `invalid type: expected ${expected}, got ${typeName(value)}` };
}

function join(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}
