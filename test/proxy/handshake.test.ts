// Table tests of the pure handshake checks (RFC 6455 §4.2.1).
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, test } from 'node:test';
import { negotiateProtocols, originAllowed, validateHandshake } from '../../src/proxy/handshake.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function headers(over: Record<string, string | undefined> = {}): IncomingHttpHeaders {
  const h: Record<string, string> = {
    host: 'a.test',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13',
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete h[k];
    else h[k] = v;
  }
  return h;
}

describe('validateHandshake', () => {
  const rejected: [string, string, Record<string, string | undefined>, number, string][] = [
    ['a POST', 'POST', {}, 405, 'method_not_allowed'],
    ['a HEAD', 'HEAD', {}, 405, 'method_not_allowed'],
    ['no Upgrade header', 'GET', { upgrade: undefined }, 400, 'bad_upgrade'],
    ['Upgrade: h2c', 'GET', { upgrade: 'h2c' }, 400, 'bad_upgrade'],
    ['no Connection header', 'GET', { connection: undefined }, 400, 'bad_connection'],
    ['Connection: keep-alive', 'GET', { connection: 'keep-alive' }, 400, 'bad_connection'],
    ['no key', 'GET', { 'sec-websocket-key': undefined }, 400, 'bad_key'],
    ['a key of 15 bytes', 'GET', { 'sec-websocket-key': 'AAAAAAAAAAAAAAAAAAAA' }, 400, 'bad_key'],
    ['a key with bad padding bits', 'GET', { 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZR==' }, 400, 'bad_key'],
    ['no version', 'GET', { 'sec-websocket-version': undefined }, 400, 'bad_version'],
    ['a non-numeric version', 'GET', { 'sec-websocket-version': 'thirteen' }, 400, 'bad_version'],
    ['version 8', 'GET', { 'sec-websocket-version': '8' }, 426, 'unsupported_version'],
    ['a subprotocol that is not a token', 'GET', { 'sec-websocket-protocol': 'a b' }, 400, 'bad_request'],
    ['a subprotocol offered twice', 'GET', { 'sec-websocket-protocol': 'chat, chat' }, 400, 'bad_request'],
  ];
  for (const [what, method, over, status, reason] of rejected) {
    test(`refuses ${what} with ${status} ${reason}`, () => {
      const r = validateHandshake(method, headers(over));
      assert.ok(!('ok' in r), 'expected a rejection');
      assert.equal(r.status, status);
      assert.equal(r.reason, reason);
    });
  }

  test('answers an unsupported version with Sec-WebSocket-Version: 13', () => {
    const r = validateHandshake('GET', headers({ 'sec-websocket-version': '8' }));
    assert.ok(!('ok' in r));
    assert.equal(r.headers?.['Sec-WebSocket-Version'], '13');
  });

  test('checks in a fixed order: the method before everything else', () => {
    const r = validateHandshake('POST', headers({ upgrade: undefined, 'sec-websocket-key': undefined }));
    assert.ok(!('ok' in r));
    assert.equal(r.reason, 'method_not_allowed');
  });

  test('accepts a valid handshake with token lists in any case and the offered subprotocols in order', () => {
    const r = validateHandshake('GET', headers({ upgrade: 'WebSocket', connection: 'keep-alive, Upgrade', 'sec-websocket-protocol': 'b, a', origin: 'https://x.test' }));
    assert.ok('ok' in r);
    assert.deepEqual(r.protocols, ['b', 'a']);
    assert.equal(r.origin, 'https://x.test');
    assert.equal(r.key, KEY);
  });
});

describe('originAllowed and negotiateProtocols', () => {
  test('allows any Origin, or none, when the list is empty', () => {
    assert.equal(originAllowed(undefined, []), true);
    assert.equal(originAllowed('https://evil.test', []), true);
  });
  test('compares Origins case-insensitively and exactly, and refuses a missing one when a list is set', () => {
    assert.equal(originAllowed('HTTPS://App.test', ['https://app.test']), true);
    assert.equal(originAllowed('https://app.test:8443', ['https://app.test']), false);
    assert.equal(originAllowed(undefined, ['https://app.test']), false);
  });
  test('passes every offered subprotocol through when none is configured', () => {
    assert.deepEqual(negotiateProtocols(['x', 'y'], []), ['x', 'y']);
  });
  test('keeps only the allowed subprotocols, in the order offered, and refuses when none is left', () => {
    assert.deepEqual(negotiateProtocols(['y', 'x', 'z'], ['x', 'y']), ['y', 'x']);
    assert.equal(negotiateProtocols(['z'], ['x']), undefined);
    assert.deepEqual(negotiateProtocols([], ['x']), []);
  });
});
