// mutatePod() as a table: Pod and annotations in, JSONPatch and reason out. And the AdmissionReview around it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { admit } from '../../src/webhook/review.ts';
import { mutatePod, SIDECAR_DRAIN, type InjectResult, type JsonPatchOperation, type Pod } from '../../src/webhook/mutate.ts';
import { CLOSE_HANDSHAKE_TIMEOUT_MS } from '../../src/proxy/ws-session.ts';
import { policyFromAnnotations } from '../../src/translate/annotations.ts';
import { parseSidecarFlags } from '../../src/sidecar/cli.ts';
import { appContainer, injectAnnotations, injectOptions, pod } from './fixtures.ts';

interface Case {
  readonly name: string;
  readonly pod: Pod;
  readonly result: InjectResult;
  /** The reason must match. */
  readonly reason?: RegExp;
  /** For injected pods: the sidecar's args after `sidecar`. */
  readonly args?: readonly string[];
}

const base = ['--upstream=127.0.0.1:8080', '--listen=0.0.0.0:8800', '--admin-addr=0.0.0.0:9800'];

const cases: Case[] = [
  { name: 'leaves a pod without annotations alone', pod: pod(undefined), result: 'not_annotated', reason: /no wsgate\.io\/inject/ },
  { name: 'leaves a pod with inject "false" alone', pod: pod({ 'wsgate.io/inject': 'false', 'wsgate.io/upstream-port': '8080' }), result: 'not_annotated' },
  { name: 'refuses an inject value other than "true" or "false"', pod: pod({ 'wsgate.io/inject': 'yes' }), result: 'bad_annotation', reason: /"yes" is neither/ },
  { name: 'injects with the upstream port as a number', pod: pod(injectAnnotations()), result: 'injected', args: base },
  {
    name: 'injects with the upstream port as the name of a container port',
    pod: pod(injectAnnotations({}, 'ws'), { containers: [appContainer({ ports: [{ name: 'ws', containerPort: 3000 }] })] }),
    result: 'injected',
    args: ['--upstream=127.0.0.1:3000', '--listen=0.0.0.0:8800', '--admin-addr=0.0.0.0:9800'],
  },
  { name: 'refuses a pod without an upstream port', pod: pod({ 'wsgate.io/inject': 'true' }), result: 'bad_annotation', reason: /upstream-port is required/ },
  { name: 'refuses an upstream port out of range', pod: pod(injectAnnotations({}, '70000')), result: 'bad_annotation', reason: /70000 is not a port/ },
  { name: 'refuses an upstream port name no container has', pod: pod(injectAnnotations({}, 'grpc')), result: 'bad_annotation', reason: /"grpc" is neither/ },
  {
    name: 'passes every policy annotation as a flag',
    pod: pod(injectAnnotations({
      'wsgate.io/allowed-origins': 'https://app.example.com, https://Admin.example.com',
      'wsgate.io/subprotocols': 'chat.v1,chat.v2',
      'wsgate.io/max-connections': '1000',
      'wsgate.io/max-connections-per-client': '10',
      'wsgate.io/idle-timeout-seconds': '600',
      'wsgate.io/connect-timeout-seconds': '2',
      'wsgate.io/drain-delay-seconds': '10',
      'wsgate.io/drain-timeout-seconds': '120',
      'wsgate.io/route-name': 'prod/chat',
    })),
    result: 'injected',
    args: [
      ...base,
      '--name=prod/chat',
      '--allowed-origin=https://app.example.com',
      '--allowed-origin=https://admin.example.com',
      '--subprotocol=chat.v1',
      '--subprotocol=chat.v2',
      '--max-connections=1000',
      '--max-connections-per-client=10',
      '--idle-timeout=600s',
      '--connect-timeout=2s',
      '--drain-delay=10s',
      '--drain-timeout=120s',
    ],
  },
  {
    name: 'passes every frame annotation that differs from the default as a sidecar flag',
    pod: pod(injectAnnotations({
      'wsgate.io/keepalive-interval-seconds': '20',
      'wsgate.io/keepalive-timeout-seconds': '10',
      'wsgate.io/keepalive-to-backend': 'true',
      'wsgate.io/max-message-bytes': '1048576',
      'wsgate.io/max-backend-message-bytes': '16777216',
      'wsgate.io/max-messages-per-second': '100',
      'wsgate.io/on-exceed': 'Close',
      'wsgate.io/strict-frames': 'false',
      'wsgate.io/inspect-frames': 'true',
    })),
    result: 'injected',
    args: [
      ...base,
      '--keepalive-interval=20s',
      '--keepalive-timeout=10s',
      '--keepalive-to-backend',
      '--max-message-bytes=1048576',
      '--max-backend-message-bytes=16777216',
      '--max-messages-per-second=100',
      '--on-exceed=Close',
      '--no-strict',
    ],
  },
  {
    name: 'passes inspect-frames "false" as --no-inspect-frames',
    pod: pod(injectAnnotations({ 'wsgate.io/inspect-frames': 'false', 'wsgate.io/keepalive-interval-seconds': '0' })),
    result: 'injected',
    args: [...base, '--no-inspect-frames', '--keepalive-interval=0s'],
  },
  {
    name: 'ignores the drain annotations, which a sidecar has no use for, even with bad values',
    pod: pod(injectAnnotations({
      'wsgate.io/endpoint-drain-seconds': '0',
      'wsgate.io/on-removal': 'Keep',
      'wsgate.io/removal-grace-seconds': 'soon',
      'wsgate.io/rebalance': 'yes',
      'wsgate.io/rebalance-tolerance-percent': '0',
      'wsgate.io/rebalance-max-closes-per-second': '1',
    })),
    result: 'injected',
    args: base,
  },
  { name: 'refuses a keepalive timeout of 0, naming the annotation', pod: pod(injectAnnotations({ 'wsgate.io/keepalive-timeout-seconds': '0' })), result: 'bad_annotation', reason: /^annotation wsgate\.io\/keepalive-timeout-seconds: "0" is not a whole number of seconds >= 1$/ },
  { name: 'refuses an on-exceed other than Throttle or Close', pod: pod(injectAnnotations({ 'wsgate.io/on-exceed': 'drop' })), result: 'bad_annotation', reason: /on-exceed: "drop" is not one of Throttle, Close$/ },
  {
    name: 'refuses inspect-frames "false" with a message limit, naming both annotations',
    pod: pod(injectAnnotations({ 'wsgate.io/inspect-frames': 'false', 'wsgate.io/max-message-bytes': '1024' })),
    result: 'bad_annotation',
    reason: /inspect-frames: "false" .* conflicts with wsgate\.io\/max-message-bytes: it needs frame inspection; remove one or the other$/,
  },
  {
    name: 'moves its ports when the pod says so',
    pod: pod(injectAnnotations({ 'wsgate.io/listen-port': '9000', 'wsgate.io/admin-port': '9001' })),
    result: 'injected',
    args: ['--upstream=127.0.0.1:8080', '--listen=0.0.0.0:9000', '--admin-addr=0.0.0.0:9001'],
  },
  { name: 'refuses a bad policy value, naming the annotation', pod: pod(injectAnnotations({ 'wsgate.io/max-connections': 'lots' })), result: 'bad_annotation', reason: /wsgate\.io\/max-connections: "lots"/ },
  { name: 'refuses an Origin that is not scheme://host', pod: pod(injectAnnotations({ 'wsgate.io/allowed-origins': 'example.com' })), result: 'bad_annotation', reason: /allowed-origins/ },
  { name: 'refuses a connect timeout of 0', pod: pod(injectAnnotations({ 'wsgate.io/connect-timeout-seconds': '0' })), result: 'bad_annotation', reason: /at least 1/ },
  { name: 'refuses a drain delay that is not whole seconds', pod: pod(injectAnnotations({ 'wsgate.io/drain-delay-seconds': '5s' })), result: 'bad_annotation', reason: /drain-delay-seconds/ },
  { name: 'reports every bad annotation at once', pod: pod(injectAnnotations({ 'wsgate.io/max-connections': 'x', 'wsgate.io/listen-port': '0' })), result: 'bad_annotation', reason: /listen-port: "0".*; .*max-connections: "x"/ },
  {
    name: 'refuses a listen port the app already uses',
    pod: pod(injectAnnotations({}, '8080'), { containers: [appContainer({ ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 8800 }] })] }),
    result: 'bad_annotation',
    reason: /listen-port: 8800 is already a port of container app/,
  },
  { name: 'refuses a listen port equal to the upstream port', pod: pod(injectAnnotations({ 'wsgate.io/listen-port': '8080' })), result: 'bad_annotation', reason: /8080 is the upstream port/ },
  {
    name: 'refuses when a container already has a port named wsgate',
    pod: pod(injectAnnotations(), { containers: [appContainer({ ports: [{ name: 'http', containerPort: 8080 }, { name: 'wsgate', containerPort: 7000 }] })] }),
    result: 'bad_annotation',
    reason: /port named wsgate/,
  },
  {
    name: 'does not inject twice: a pod with the sidecar is left alone',
    pod: pod(injectAnnotations(), { initContainers: [{ name: 'wsgate', restartPolicy: 'Always' }] }),
    result: 'already_injected',
  },
  {
    name: 'appends after the app\'s own init containers',
    pod: pod(injectAnnotations(), { initContainers: [{ name: 'migrate' }] }),
    result: 'injected',
    args: base,
  },
];

describe('mutatePod', () => {
  test('gives the sidecar, through its flags, the policy the annotations give an Ingress', () => {
    const annotations = injectAnnotations({
      'wsgate.io/max-connections': '7',
      'wsgate.io/idle-timeout-seconds': '90',
      'wsgate.io/keepalive-interval-seconds': '5',
      'wsgate.io/keepalive-to-backend': 'true',
      'wsgate.io/max-backend-message-bytes': '65536',
      'wsgate.io/max-messages-per-second': '3',
      'wsgate.io/on-exceed': 'Close',
      'wsgate.io/strict-frames': 'false',
    });
    const m = mutatePod(pod(annotations), injectOptions);
    assert.equal(m.result, 'injected', m.reason);
    const args = ((m.patch[0]?.value as { args: string[] }[])[0]?.args ?? []).slice(1);
    const flags = parseSidecarFlags(args, {});
    assert.ok(!flags.help);
    assert.deepEqual(flags.policy, policyFromAnnotations(annotations).policy);
  });

  for (const c of cases) {
    test(c.name, () => {
      const m = mutatePod(c.pod, injectOptions);
      assert.equal(m.result, c.result, m.reason);
      if (c.reason) assert.match(m.reason, c.reason);
      if (c.result !== 'injected') {
        assert.deepEqual(m.patch, []);
        return;
      }
      // The sidecar, then (these pods give no grace period) the grace period its drain needs.
      assert.deepEqual(m.patch.slice(1).map((o) => o.path), ['/spec/terminationGracePeriodSeconds']);
      const op = m.patch[0]!;
      const container = (c.pod.spec?.initContainers ? op.value : (op.value as unknown[])[0]) as { args: string[] };
      assert.equal(op.path, c.pod.spec?.initContainers ? '/spec/initContainers/-' : '/spec/initContainers');
      assert.deepEqual(container.args, ['sidecar', ...(c.args ?? [])]);
    });
  }

  test('builds a native sidecar: restartPolicy Always, named ports, POD_NAME, requests, the controller\'s security context', () => {
    const m = mutatePod(pod(injectAnnotations()), { ...injectOptions, resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } } });
    const [op] = m.patch as [JsonPatchOperation];
    const [container] = op.value as [Record<string, unknown>];
    assert.deepEqual(container, {
      name: 'wsgate',
      image: 'registry.example/wsgate:test',
      imagePullPolicy: 'IfNotPresent',
      restartPolicy: 'Always',
      args: ['sidecar', ...base],
      env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
      ports: [
        { name: 'wsgate', containerPort: 8800, protocol: 'TCP' },
        { name: 'wsgate-admin', containerPort: 9800, protocol: 'TCP' },
      ],
      readinessProbe: { httpGet: { path: '/readyz', port: 'wsgate-admin' }, periodSeconds: 2, failureThreshold: 1 },
      livenessProbe: { httpGet: { path: '/healthz', port: 'wsgate-admin' }, periodSeconds: 10, failureThreshold: 3 },
      resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        allowPrivilegeEscalation: false,
        privileged: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
    });
  });

  const graceOf = (m: { patch: readonly JsonPatchOperation[] }): unknown =>
    m.patch.find((o) => o.path === '/spec/terminationGracePeriodSeconds')?.value;
  const withGrace = (p: Pod, seconds: number): Pod => ({ ...p, spec: { ...p.spec, terminationGracePeriodSeconds: seconds } });

  test('raises the Kubernetes default grace period (30 s) to the sidecar\'s drain: delay 5 + timeout 30 + 5 s of close handshakes + 10 s', () => {
    const m = mutatePod(pod(injectAnnotations()), injectOptions);
    assert.equal(graceOf(m), 5 + 30 + 5 + 10);
    assert.match(m.reason, /terminationGracePeriodSeconds raised from 30 to 50 for the sidecar's drain/);
    assert.equal(graceOf(mutatePod(withGrace(pod(injectAnnotations()), 39), injectOptions)), 50);
  });

  test('raises the grace period for the drain the annotations ask for', () => {
    const p = pod(injectAnnotations({ 'wsgate.io/drain-delay-seconds': '10', 'wsgate.io/drain-timeout-seconds': '120' }));
    assert.equal(graceOf(mutatePod(withGrace(p, 60), injectOptions)), 10 + 120 + 5 + 10);
  });

  test('leaves a grace period that covers the sidecar\'s drain as the pod gives it', () => {
    for (const seconds of [40, 75, 3600]) {
      const m = mutatePod(withGrace(pod(injectAnnotations()), seconds), injectOptions);
      assert.equal(m.result, 'injected');
      assert.equal(graceOf(m), undefined, `${seconds} s`);
      assert.equal(m.patch.length, 1);
    }
    // A drain of 0 + 0 needs only the close handshakes: the default 30 s covers it.
    const quick = pod(injectAnnotations({ 'wsgate.io/drain-delay-seconds': '0', 'wsgate.io/drain-timeout-seconds': '0' }));
    assert.equal(graceOf(mutatePod(quick, injectOptions)), undefined);
  });

  test('counts the sidecar\'s own drain defaults and close-handshake cut, as its flags and the proxy have them', () => {
    const flags = parseSidecarFlags(['--upstream=127.0.0.1:8080'], {});
    assert.ok(!flags.help);
    assert.equal(flags.drainDelayMs, SIDECAR_DRAIN.delaySeconds * 1000);
    assert.equal(flags.drainTimeoutMs, SIDECAR_DRAIN.timeoutSeconds * 1000);
    assert.equal(CLOSE_HANDSHAKE_TIMEOUT_MS, SIDECAR_DRAIN.closeHandshakeSeconds * 1000);
  });

  test('is idempotent: applying its own patch and asking again changes nothing', () => {
    const p = pod(injectAnnotations());
    const m = mutatePod(p, injectOptions);
    const patched = { ...p, spec: { ...p.spec, initContainers: m.patch[0]!.value } } as Pod;
    assert.equal(mutatePod(patched, injectOptions).result, 'already_injected');
  });
});

describe('admit (AdmissionReview v1)', () => {
  const review = (object: unknown, o: { kind?: string; operation?: string } = {}) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: o.kind ?? 'Pod' }, operation: o.operation ?? 'CREATE', namespace: 'prod', object },
  });

  test('answers an annotated Pod with allowed and a base64 JSONPatch', () => {
    const out = admit(review(pod(injectAnnotations())), injectOptions);
    assert.equal(out.result, 'injected');
    const response = (out.review as { response: { uid: string; allowed: boolean; patchType: string; patch: string } }).response;
    assert.equal(response.uid, 'u-1');
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, 'JSONPatch');
    const patch = JSON.parse(Buffer.from(response.patch, 'base64').toString()) as JsonPatchOperation[];
    assert.equal(patch[0]?.path, '/spec/initContainers');
  });

  test('allows a Pod with a bad annotation without a patch, and says why', () => {
    const out = admit(review(pod(injectAnnotations({ 'wsgate.io/idle-timeout-seconds': 'forever' }))), injectOptions);
    assert.equal(out.result, 'bad_annotation');
    assert.match(out.reason, /idle-timeout-seconds/);
    assert.deepEqual(out.review, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
    assert.equal(out.namespace, 'prod');
    assert.equal(out.pod, 'chat-0');
  });

  test('allows anything but a Pod creation untouched', () => {
    assert.equal(admit(review(pod(injectAnnotations()), { operation: 'UPDATE' }), injectOptions).result, 'not_a_pod');
    assert.equal(admit(review({}, { kind: 'Service' }), injectOptions).result, 'not_a_pod');
  });

  test('has no answer for a body that is not an AdmissionReview', () => {
    const out = admit({ hello: 'world' }, injectOptions);
    assert.equal(out.result, 'malformed');
    assert.equal(out.review, undefined);
  });

  test('names a pod that only has generateName', () => {
    const p = pod(injectAnnotations());
    const out = admit(review({ ...p, metadata: { ...p.metadata, name: undefined, generateName: 'chat-7d9f-' } }), injectOptions);
    assert.equal(out.pod, 'chat-7d9f-*');
  });
});
