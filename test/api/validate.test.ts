import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PATTERN_MESSAGES, validateObject, type FieldError } from '../../src/api/validate.ts';
import { tcpTunnelSchema, webSocketRouteSchema, type SchemaNode } from '../../src/api/schema.ts';
import type { TCPTunnel, WebSocketRoute } from '../../src/api/types.ts';

function webSocketRoute(): WebSocketRoute {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { name: 'chat', namespace: 'apps' },
    spec: {
      hostnames: ['chat.example.com', '*.example.org'],
      tls: { secretName: 'chat-tls' },
      rules: [
        {
          path: { type: 'Prefix', value: '/ws' },
          backends: [
            { service: 'chat', port: 8080 },
            { service: 'chat-canary', port: 'http', weight: 10 },
          ],
          policy: { idleTimeoutSeconds: 0, loadBalancing: { policy: 'ConsistentHash', hashOn: { header: 'X-User' } } },
        },
      ],
      policy: { connectTimeoutSeconds: 5, maxConnections: 1000, allowedOrigins: ['https://chat.example.com'] },
    },
    status: {
      observedGeneration: 2,
      conditions: [
        { type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: '2024-05-01T10:00:00Z' },
      ],
    },
  };
}

function tcpTunnel(): TCPTunnel {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'TCPTunnel',
    metadata: { name: 'postgres' },
    spec: { port: 5432, sniHostnames: ['db.example.com'], backends: [{ service: 'postgres', port: 5432 }], proxyProtocol: 'V2' },
  };
}

function k8s(apiVersion: string, kind: string, metadata: Record<string, unknown> = { name: 'x', namespace: 'apps' }): unknown {
  return { apiVersion, kind, metadata };
}

/** A deep copy of `obj` with the field at `path` (e.g. `spec.rules[0].port`) set, or deleted when value is undefined. */
function withField(obj: unknown, path: string, value: unknown): unknown {
  const copy: unknown = structuredClone(obj);
  const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
  let node = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = keys.at(-1) as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

interface InvalidCase {
  name: string;
  obj: unknown;
  field: string;
  message: RegExp;
}

describe('validateObject', () => {
  const valid: Array<{ name: string; obj: unknown }> = [
    { name: 'accepts a complete WebSocketRoute', obj: webSocketRoute() },
    { name: 'accepts a complete TCPTunnel', obj: tcpTunnel() },
    {
      name: 'accepts a WebSocketRoute with only the required fields',
      obj: { apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'r' }, spec: { rules: [{ backends: [{ service: 's', port: 80 }] }] } },
    },
    { name: 'accepts a port given by name', obj: withField(tcpTunnel(), 'spec.backends[0].port', 'postgres') },
    { name: 'accepts a port name that starts with a digit', obj: withField(tcpTunnel(), 'spec.backends[0].port', '8080-tcp') },
    { name: 'accepts a weight of zero', obj: withField(tcpTunnel(), 'spec.backends[0].weight', 0) },
    { name: 'accepts a weight of one million', obj: withField(tcpTunnel(), 'spec.backends[0].weight', 1_000_000) },
    { name: 'accepts hashOn with clientIP alone', obj: withField(webSocketRoute(), 'spec.rules[0].policy.loadBalancing.hashOn', { clientIP: true }) },
    { name: 'treats a YAML null field as absent', obj: withField(webSocketRoute(), 'spec.policy', null) },
    { name: 'accepts a creationTimestamp given as a date-time', obj: withField(tcpTunnel(), 'metadata.creationTimestamp', '2024-01-02T03:04:05Z') },
    { name: 'accepts an Ingress with a name', obj: k8s('networking.k8s.io/v1', 'Ingress') },
    { name: 'accepts an IngressClass without a namespace', obj: k8s('networking.k8s.io/v1', 'IngressClass', { name: 'wsgate' }) },
    { name: 'accepts a Service without a namespace', obj: k8s('v1', 'Service', { name: 'chat' }) },
    { name: 'accepts an EndpointSlice', obj: k8s('discovery.k8s.io/v1', 'EndpointSlice', { name: 'chat-abc12' }) },
    { name: 'accepts a Secret', obj: k8s('v1', 'Secret') },
    {
      name: 'does not look inside the spec of Kubernetes kinds',
      obj: { ...(k8s('v1', 'Service') as object), spec: { anything: ['goes'] } },
    },
  ];
  for (const { name, obj } of valid) {
    it(name, () => {
      assert.deepEqual(validateObject(obj), []);
    });
  }

  const invalid: InvalidCase[] = [
    { name: 'rejects a value that is not an object', obj: ['a'], field: '', message: /must be an object, got array/ },
    { name: 'rejects an object without a kind', obj: withField(tcpTunnel(), 'kind', undefined), field: 'kind', message: /required/ },
    { name: 'rejects an unknown kind', obj: k8s('v1', 'ConfigMap'), field: 'kind', message: /unsupported kind "ConfigMap"/ },
    { name: 'rejects a known kind with the wrong apiVersion', obj: k8s('extensions/v1beta1', 'Ingress'), field: 'apiVersion', message: /expected "networking.k8s.io\/v1"/ },
    { name: 'rejects a wsgate kind of another version', obj: withField(tcpTunnel(), 'apiVersion', 'wsgate.io/v1'), field: 'apiVersion', message: /expected "wsgate.io\/v1alpha1"/ },
    { name: 'rejects a Kubernetes object without metadata.name', obj: k8s('v1', 'Secret', { namespace: 'a' }), field: 'metadata.name', message: /required/ },
    { name: 'rejects an object without metadata', obj: withField(tcpTunnel(), 'metadata', undefined), field: 'metadata.name', message: /required/ },
    { name: 'rejects a name that is not a DNS subdomain', obj: withField(tcpTunnel(), 'metadata.name', 'Bad_Name'), field: 'metadata.name', message: /^"Bad_Name" must be a name in lower case \(an RFC 1123 subdomain\).*, e\.g\. chat or chat\.v2$/ },
    { name: 'rejects a namespace that is not a DNS label', obj: withField(tcpTunnel(), 'metadata.namespace', 'a.b'), field: 'metadata.namespace', message: /^"a\.b" must be a namespace name in lower case \(an RFC 1123 label\).*, e\.g\. apps$/ },
    { name: 'rejects a label value that is not a string', obj: withField(tcpTunnel(), 'metadata.labels', { tier: 1 }), field: 'metadata.labels[tier]', message: /expected string/ },
    { name: 'rejects a creationTimestamp that is not a date-time', obj: withField(tcpTunnel(), 'metadata.creationTimestamp', 'yesterday'), field: 'metadata.creationTimestamp', message: /date-time/ },
    { name: 'rejects a WebSocketRoute without a spec', obj: withField(webSocketRoute(), 'spec', undefined), field: 'spec', message: /required/ },
    { name: 'rejects a WebSocketRoute without rules', obj: withField(webSocketRoute(), 'spec.rules', undefined), field: 'spec.rules', message: /required/ },
    { name: 'rejects an empty rules list', obj: withField(webSocketRoute(), 'spec.rules', []), field: 'spec.rules', message: /at least 1 item/ },
    { name: 'rejects a rule without backends', obj: withField(webSocketRoute(), 'spec.rules[0].backends', undefined), field: 'spec.rules[0].backends', message: /required/ },
    { name: 'rejects a backend without a service', obj: withField(webSocketRoute(), 'spec.rules[0].backends[1].service', undefined), field: 'spec.rules[0].backends[1].service', message: /required/ },
    { name: 'rejects a backend port above 65535', obj: withField(webSocketRoute(), 'spec.rules[0].backends[1].port', 70000), field: 'spec.rules[0].backends[1].port', message: /less than or equal to 65535/ },
    { name: 'rejects a backend port of zero', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].port', 0), field: 'spec.rules[0].backends[0].port', message: /greater than or equal to 1/ },
    { name: 'rejects a backend port that is a boolean', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].port', true), field: 'spec.rules[0].backends[0].port', message: /expected integer or string, got boolean/ },
    { name: 'rejects a fractional backend port', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].port', 80.5), field: 'spec.rules[0].backends[0].port', message: /expected integer or string, got number/ },
    { name: 'rejects a port number in quotes, saying what a port must be and to drop the quotes', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].port', '80'), field: 'spec.rules[0].backends[0].port', message: /^"80" must be a port number \(1-65535\) or the name of one of the Service's ports, e\.g\. 8080 or http \(in quotes, 80 is read as a port name, and a name needs a letter: write 80 without quotes\)$/ },
    { name: 'rejects a port name with an underscore, saying what a port must be', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].port', 'web_socket'), field: 'spec.rules[0].backends[0].port', message: /^"web_socket" must be a port number \(1-65535\) or the name of one of the Service's ports, e\.g\. 8080 or http$/ },
    { name: 'rejects a port name longer than 15 characters', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].port', 'a-very-long-port-name'), field: 'spec.rules[0].backends[0].port', message: /at most 15 characters/ },
    { name: 'rejects a weight above one million', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].weight', 1_000_001), field: 'spec.rules[0].backends[0].weight', message: /less than or equal to 1000000/ },
    { name: 'rejects a negative weight', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].weight', -1), field: 'spec.rules[0].backends[0].weight', message: /greater than or equal to 0/ },
    { name: 'rejects a weight given as a string', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].weight', '5'), field: 'spec.rules[0].backends[0].weight', message: /expected integer, got string/ },
    { name: 'rejects an unknown path type', obj: withField(webSocketRoute(), 'spec.rules[0].path.type', 'Regex'), field: 'spec.rules[0].path.type', message: /unsupported value "Regex": supported values: "Exact", "Prefix"/ },
    { name: 'rejects a path that does not start with a slash', obj: withField(webSocketRoute(), 'spec.rules[0].path.value', 'ws'), field: 'spec.rules[0].path.value', message: /^"ws" must be an absolute path: starting with "\/", with no spaces, "\?" or "#", e\.g\. \/chat$/ },
    { name: 'rejects a path with a query string', obj: withField(webSocketRoute(), 'spec.rules[0].path.value', '/ws?x=1'), field: 'spec.rules[0].path.value', message: /^"\/ws\?x=1" must be an absolute path/ },
    { name: 'rejects an unknown load balancing policy', obj: withField(webSocketRoute(), 'spec.policy.loadBalancing', { policy: 'Random' }), field: 'spec.policy.loadBalancing.policy', message: /unsupported value "Random"/ },
    { name: 'rejects hashOn with two members set', obj: withField(webSocketRoute(), 'spec.rules[0].policy.loadBalancing.hashOn', { clientIP: true, header: 'X' }), field: 'spec.rules[0].policy.loadBalancing.hashOn', message: /at most 1 field set, got: clientIP, header/ },
    { name: 'rejects hashOn with no member set', obj: withField(webSocketRoute(), 'spec.rules[0].policy.loadBalancing.hashOn', {}), field: 'spec.rules[0].policy.loadBalancing.hashOn', message: /at least 1 field/ },
    { name: 'rejects a hash header that is not an HTTP token', obj: withField(webSocketRoute(), 'spec.rules[0].policy.loadBalancing.hashOn', { header: 'X User' }), field: 'spec.rules[0].policy.loadBalancing.hashOn.header', message: /^"X User" must be an HTTP token: .*, e\.g\. X-User-Id or chat\.v1$/ },
    { name: 'rejects an uppercase hostname', obj: withField(webSocketRoute(), 'spec.hostnames[0]', 'Chat.Example.com'), field: 'spec.hostnames[0]', message: /^"Chat\.Example\.com" must be a host name in lower case: .*, e\.g\. chat\.example\.com or \*\.example\.com$/ },
    { name: 'rejects a wildcard that is not the leftmost label', obj: withField(webSocketRoute(), 'spec.hostnames[1]', 'chat.*.example.org'), field: 'spec.hostnames[1]', message: /^"chat\.\*\.example\.org" must be a host name/ },
    { name: 'rejects a bare wildcard hostname', obj: withField(webSocketRoute(), 'spec.hostnames[1]', '*'), field: 'spec.hostnames[1]', message: /^"\*" must be a host name/ },
    { name: 'rejects a hostname with a port', obj: withField(webSocketRoute(), 'spec.hostnames[0]', 'chat.example.com:443'), field: 'spec.hostnames[0]', message: /^"chat\.example\.com:443" must be a host name in lower case: .*with no port/ },
    { name: 'rejects a service name with an upper-case letter, saying what it must be', obj: withField(webSocketRoute(), 'spec.rules[0].backends[0].service', 'Chat'), field: 'spec.rules[0].backends[0].service', message: /^"Chat" must be the name of a Service in the same namespace: .*, e\.g\. chat-backend$/ },
    { name: 'rejects a subprotocol with a space, saying it must be an HTTP token', obj: withField(webSocketRoute(), 'spec.policy.subprotocols', ['chat v1']), field: 'spec.policy.subprotocols[0]', message: /^"chat v1" must be an HTTP token/ },
    { name: 'rejects a hash cookie with a comma, saying it must be an HTTP token', obj: withField(webSocketRoute(), 'spec.rules[0].policy.loadBalancing.hashOn', { cookie: 'a,b' }), field: 'spec.rules[0].policy.loadBalancing.hashOn.cookie', message: /^"a,b" must be an HTTP token/ },
    { name: 'rejects a TLS secretName with an underscore, saying what it must be', obj: withField(webSocketRoute(), 'spec.tls.secretName', 'chat_tls'), field: 'spec.tls.secretName', message: /^"chat_tls" must be the name of a Secret in the same namespace: .*, e\.g\. chat-tls$/ },
    { name: 'rejects tls without a secretName', obj: withField(webSocketRoute(), 'spec.tls', {}), field: 'spec.tls.secretName', message: /required/ },
    { name: 'rejects a negative idle timeout', obj: withField(webSocketRoute(), 'spec.policy.idleTimeoutSeconds', -5), field: 'spec.policy.idleTimeoutSeconds', message: /greater than or equal to 0/ },
    { name: 'rejects a connect timeout of zero', obj: withField(webSocketRoute(), 'spec.policy.connectTimeoutSeconds', 0), field: 'spec.policy.connectTimeoutSeconds', message: /greater than or equal to 1/ },
    { name: 'rejects a negative per-client connection limit', obj: withField(webSocketRoute(), 'spec.rules[0].policy.maxConnectionsPerClient', -1), field: 'spec.rules[0].policy.maxConnectionsPerClient', message: /greater than or equal to 0/ },
    { name: 'rejects a misspelt field instead of dropping it', obj: withField(webSocketRoute(), 'spec.policy.idleTimeoutSecond', 30), field: 'spec.policy.idleTimeoutSecond', message: /unknown field/ },
    { name: 'rejects an unknown top-level field', obj: withField(tcpTunnel(), 'data', {}), field: 'data', message: /unknown field/ },
    { name: 'rejects a string where a list belongs', obj: withField(webSocketRoute(), 'spec.hostnames', 'chat.example.com'), field: 'spec.hostnames', message: /expected array, got string/ },
    { name: 'rejects a TCPTunnel without a port', obj: withField(tcpTunnel(), 'spec.port', undefined), field: 'spec.port', message: /required/ },
    { name: 'rejects a TCPTunnel port given by name', obj: withField(tcpTunnel(), 'spec.port', 'postgres'), field: 'spec.port', message: /expected integer, got string/ },
    { name: 'rejects a TCPTunnel without backends', obj: withField(tcpTunnel(), 'spec.backends', undefined), field: 'spec.backends', message: /required/ },
    { name: 'rejects an unknown PROXY protocol version', obj: withField(tcpTunnel(), 'spec.proxyProtocol', 'V3'), field: 'spec.proxyProtocol', message: /unsupported value "V3": supported values: "None", "V1", "V2"/ },
    { name: 'rejects an SNI hostname with a trailing dot', obj: withField(tcpTunnel(), 'spec.sniHostnames[0]', 'db.example.com.'), field: 'spec.sniHostnames[0]', message: /^"db\.example\.com\." must be a host name in lower case: .*trailing dot/ },
    { name: 'rejects a condition without a reason', obj: withField(webSocketRoute(), 'status.conditions[0].reason', undefined), field: 'status.conditions[0].reason', message: /required/ },
    { name: 'rejects a condition of an unknown type', obj: withField(webSocketRoute(), 'status.conditions[0].type', 'Ready'), field: 'status.conditions[0].type', message: /unsupported value "Ready"/ },
    { name: 'rejects a lastTransitionTime that is not a date-time', obj: withField(webSocketRoute(), 'status.conditions[0].lastTransitionTime', 'now'), field: 'status.conditions[0].lastTransitionTime', message: /date-time/ },
    { name: 'rejects a negative status observedGeneration', obj: withField(webSocketRoute(), 'status.observedGeneration', -1), field: 'status.observedGeneration', message: /greater than or equal to 0/ },
  ];
  for (const { name, obj, field, message } of invalid) {
    it(name, () => {
      const errors = validateObject(obj);
      assert.equal(errors.length, 1, `expected exactly one error, got ${JSON.stringify(errors)}`);
      const [error] = errors as [FieldError];
      assert.equal(error.field, field);
      assert.match(error.message, message);
    });
  }

  it('reports every invalid field of one object, in document order', () => {
    let obj = withField(webSocketRoute(), 'spec.rules[0].backends[0].port', 0);
    obj = withField(obj, 'spec.rules[0].backends[1].weight', -1);
    obj = withField(obj, 'spec.hostnames[0]', 'UPPER');
    assert.deepEqual(
      validateObject(obj).map((e) => e.field),
      ['spec.hostnames[0]', 'spec.rules[0].backends[0].port', 'spec.rules[0].backends[1].weight'],
    );
  });

  it('never throws, whatever it is given', () => {
    for (const v of [undefined, null, 0, 'x', [], new Date(), { kind: 'WebSocketRoute', metadata: 'x', spec: [] }]) {
      assert.ok(validateObject(v).length > 0);
    }
  });
});

/** Every `pattern` in a schema, with the path of one field that carries it. */
function patterns(node: SchemaNode, path: string, out: Map<string, string>): Map<string, string> {
  if (node.pattern !== undefined && !out.has(node.pattern)) out.set(node.pattern, path);
  for (const [key, child] of Object.entries(node.properties ?? {})) patterns(child, `${path}.${key}`, out);
  if (node.items !== undefined) patterns(node.items, `${path}[]`, out);
  return out;
}

describe('messages for values that do not match a schema pattern', () => {
  const all = patterns(tcpTunnelSchema(), 'TCPTunnel', patterns(webSocketRouteSchema(), 'WebSocketRoute', new Map()));

  it('finds the patterns of both schemas (the walk is not vacuous)', () => {
    assert.ok(all.size >= 6, `found ${all.size}: ${[...all.values()].join(', ')}`);
  });

  for (const [pattern, field] of all) {
    it(`says in words what ${field} must be, with an example that is itself valid`, () => {
      const message = PATTERN_MESSAGES[pattern];
      assert.ok(message !== undefined, `no message for the pattern of ${field}: ${pattern}`);
      assert.ok(!message.includes(pattern), 'the message does not repeat the regular expression');
      const examples = /, e\.g\. (.+)$/.exec(message)?.[1]?.split(' or ');
      assert.ok(examples !== undefined && examples.length > 0, `no example in: ${message}`);
      const re = new RegExp(pattern, 'u');
      for (const example of examples) {
        // An int-or-string port's example may be the number; every other example matches the pattern.
        const isPortNumber = /^\d+$/.test(example) && Number(example) >= 1 && Number(example) <= 65535;
        assert.ok(re.test(example) || isPortNumber, `example ${example} of ${field} is not valid`);
      }
    });
  }

  it('keeps the field path and never prints a regular expression (a quoted port, as a user writes it)', () => {
    const errors = validateObject(withField(webSocketRoute(), 'spec.rules[0].backends[0].port', '80'));
    assert.deepEqual(
      errors.map((e) => `${e.field}: ${e.message}`),
      [
        'spec.rules[0].backends[0].port: "80" must be a port number (1-65535) or the name of one of the Service\'s ports, ' +
          'e.g. 8080 or http (in quotes, 80 is read as a port name, and a name needs a letter: write 80 without quotes)',
      ],
    );
  });
});
