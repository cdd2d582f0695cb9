// The schema of the frame and drain knobs (issues 10 and 11), as `wsgate serve --config` and the API server check
// them. Messages are matched loosely (the bound or the type they name): the field path is the contract.
// Cross-field rules (inspectFrames false with a limit) are the translator's: see test/translate/policy.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicySpec, TCPTunnel, WebSocketRoute } from '../../src/api/types.ts';
import { validateObject } from '../../src/api/validate.ts';

function route(policy: unknown, rulePolicy?: unknown): WebSocketRoute {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { name: 'chat', namespace: 'apps' },
    spec: {
      rules: [{ backends: [{ service: 'chat', port: 80 }], ...(rulePolicy !== undefined ? { policy: rulePolicy as PolicySpec } : {}) }],
      policy: policy as PolicySpec,
    },
  };
}

function tunnel(extra: Record<string, unknown>): TCPTunnel {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'TCPTunnel',
    metadata: { name: 'mqtt', namespace: 'apps' },
    spec: { port: 1883, backends: [{ service: 'mqtt', port: 1883 }], ...extra },
  };
}

const everyKnob: PolicySpec = {
  inspectFrames: true,
  keepalive: { intervalSeconds: 0, timeoutSeconds: 1, toBackend: true },
  maxMessageBytes: 1_048_576,
  maxBackendMessageBytes: 16_777_216,
  maxMessagesPerSecond: 100,
  onExceed: 'Close',
  strict: false,
  endpointDrainSeconds: 0,
  onRemoval: { action: 'Keep', graceSeconds: 0 },
  rebalance: { enabled: true, tolerancePercent: 100, maxClosesPerSecond: 1 },
};

describe('policy schema: frame and drain knobs', () => {
  it('accepts every knob, at its bounds, in a route policy and in a rule policy', () => {
    assert.deepEqual(validateObject(route(everyKnob, everyKnob)), []);
  });

  it('accepts partial nested knobs (the rest comes from the route or the defaults)', () => {
    assert.deepEqual(validateObject(route({ keepalive: { toBackend: true }, onRemoval: { graceSeconds: 5 }, rebalance: { enabled: true } })), []);
  });

  it('accepts endpointDrainSeconds and onRemoval on a TCPTunnel', () => {
    assert.deepEqual(validateObject(tunnel({ endpointDrainSeconds: 30, onRemoval: { action: 'Close', graceSeconds: 10 } })), []);
  });

  const invalid: Array<{ name: string; obj: unknown; field: string; message: RegExp }> = [
    { name: 'rejects inspectFrames that is not a boolean', obj: route({ inspectFrames: 'false' }), field: 'spec.policy.inspectFrames', message: /boolean/ },
    { name: 'rejects a negative keepalive interval', obj: route({ keepalive: { intervalSeconds: -1 } }), field: 'spec.policy.keepalive.intervalSeconds', message: /0/ },
    { name: 'rejects a fractional keepalive interval', obj: route({ keepalive: { intervalSeconds: 1.5 } }), field: 'spec.policy.keepalive.intervalSeconds', message: /integer/ },
    { name: 'rejects a keepalive timeout of 0', obj: route({ keepalive: { timeoutSeconds: 0 } }), field: 'spec.policy.keepalive.timeoutSeconds', message: /1/ },
    { name: 'rejects keepalive.toBackend that is not a boolean', obj: route(undefined, { keepalive: { toBackend: 'yes' } }), field: 'spec.rules[0].policy.keepalive.toBackend', message: /boolean/ },
    { name: 'rejects a misspelt keepalive member', obj: route({ keepalive: { interval: 5 } }), field: 'spec.policy.keepalive.interval', message: /unknown field/ },
    { name: 'rejects a negative maxMessageBytes', obj: route({ maxMessageBytes: -1 }), field: 'spec.policy.maxMessageBytes', message: /0/ },
    { name: 'rejects maxBackendMessageBytes written with a unit', obj: route({ maxBackendMessageBytes: '16Mi' }), field: 'spec.policy.maxBackendMessageBytes', message: /integer/ },
    { name: 'rejects a fractional message rate', obj: route({ maxMessagesPerSecond: 0.5 }), field: 'spec.policy.maxMessagesPerSecond', message: /integer/ },
    { name: 'rejects an unknown onExceed action', obj: route({ onExceed: 'Drop' }), field: 'spec.policy.onExceed', message: /Throttle/ },
    { name: 'rejects strict that is not a boolean', obj: route(undefined, { strict: 1 }), field: 'spec.rules[0].policy.strict', message: /boolean/ },
    { name: 'rejects a negative endpointDrainSeconds', obj: route({ endpointDrainSeconds: -10 }), field: 'spec.policy.endpointDrainSeconds', message: /0/ },
    { name: 'rejects an unknown onRemoval action', obj: route({ onRemoval: { action: 'Drain' } }), field: 'spec.policy.onRemoval.action', message: /Keep/ },
    { name: 'rejects a fractional onRemoval.graceSeconds', obj: route({ onRemoval: { graceSeconds: 0.5 } }), field: 'spec.policy.onRemoval.graceSeconds', message: /integer/ },
    { name: 'rejects onRemoval written as a string', obj: route({ onRemoval: 'Keep' }), field: 'spec.policy.onRemoval', message: /object/ },
    { name: 'rejects a rebalance tolerance of 0', obj: route({ rebalance: { tolerancePercent: 0 } }), field: 'spec.policy.rebalance.tolerancePercent', message: /1/ },
    { name: 'rejects a rebalance tolerance above 100', obj: route({ rebalance: { tolerancePercent: 101 } }), field: 'spec.policy.rebalance.tolerancePercent', message: /100/ },
    { name: 'rejects a rebalance close rate of 0', obj: route({ rebalance: { maxClosesPerSecond: 0 } }), field: 'spec.policy.rebalance.maxClosesPerSecond', message: /1/ },
    { name: 'rejects rebalance.enabled that is not a boolean', obj: route({ rebalance: { enabled: 'true' } }), field: 'spec.policy.rebalance.enabled', message: /boolean/ },
    { name: 'rejects a WebSocket knob on a TCPTunnel', obj: tunnel({ maxMessageBytes: 1024 }), field: 'spec.maxMessageBytes', message: /unknown field/ },
    { name: 'rejects rebalance on a TCPTunnel', obj: tunnel({ rebalance: { enabled: true } }), field: 'spec.rebalance', message: /unknown field/ },
    { name: 'rejects a negative endpointDrainSeconds on a TCPTunnel', obj: tunnel({ endpointDrainSeconds: -1 }), field: 'spec.endpointDrainSeconds', message: /0/ },
    { name: 'rejects an unknown onRemoval action on a TCPTunnel', obj: tunnel({ onRemoval: { action: 'Later' } }), field: 'spec.onRemoval.action', message: /Close/ },
  ];
  for (const { name, obj, field, message } of invalid) {
    it(name, () => {
      const errors = validateObject(obj);
      assert.deepEqual(errors.map((e) => e.field), [field], JSON.stringify(errors));
      assert.match(errors[0]?.message ?? '', message);
    });
  }
});
