// Table tests of how wsgate reads a backend's answer to a handshake: llhttp (through Node's HTTPParser) in strict
// mode, fed chunk by chunk, with the raw bytes kept so that the client receives exactly what the backend sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BackendResponse, type ResponseEvent } from '../../src/proxy/backend-response.ts';

/** Feeds `text` cut into `size`-byte chunks; returns every event that was not need-more, and the chunks. */
function feedIn(text: string | Buffer, size: number): { events: ResponseEvent[]; chunks: Buffer[] } {
  const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const r = new BackendResponse();
  const events: ResponseEvent[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) {
    const chunk = buf.subarray(i, i + size);
    chunks.push(chunk);
    const ev = r.feed(chunk);
    if (ev.kind !== 'need-more') events.push(ev);
    if (ev.kind === 'switched' || ev.kind === 'invalid') break;
  }
  return { events, chunks };
}

const HEAD_101 = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n';
const FRAME = Buffer.from([0x81, 0x02, 0x68, 0x69]);

describe('BackendResponse', () => {
  for (const size of [1, 2, 7, 64, 4096]) {
    test(`reads a 101 cut into ${size}-byte chunks, keeping the head exactly and the frame after it`, () => {
      const { events } = feedIn(Buffer.concat([Buffer.from(HEAD_101, 'latin1'), FRAME]), size);
      assert.equal(events.length, 1);
      const ev = events[0]!;
      assert.equal(ev.kind, 'switched');
      if (ev.kind !== 'switched') return;
      assert.equal(ev.head.status, 101);
      assert.equal(ev.raw.toString('latin1'), HEAD_101);
      // The frame may arrive in later chunks when the cut falls inside the head's last chunk: what came with it is rest.
      assert.ok(FRAME.subarray(0, ev.rest.length).equals(ev.rest));
    });
  }

  test('keeps a 100 Continue before the 101 in the relayed bytes', () => {
    const text = `HTTP/1.1 100 Continue\r\n\r\n${HEAD_101}`;
    const { events } = feedIn(text, 5);
    const ev = events[0]!;
    assert.equal(ev.kind, 'switched');
    if (ev.kind === 'switched') assert.equal(ev.raw.toString('latin1'), text);
  });

  test('reports a refusal with a Content-Length body complete once the body has arrived', () => {
    const text = 'HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\n\r\nnope!';
    const { events } = feedIn(text, 10);
    assert.equal(events[0]?.kind, 'response');
    assert.equal(events.at(-1)?.kind === 'body' || events.at(-1)?.kind === 'response', true);
    const last = events.at(-1)!;
    assert.equal('complete' in last && last.complete, true);
    const first = events[0];
    if (first.kind === 'response') assert.equal(first.head.status, 401);
  });

  test('reports a chunked refusal complete at its last chunk, and a 204 at once', () => {
    const chunked = feedIn('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 8);
    const last = chunked.events.at(-1)!;
    assert.equal('complete' in last && last.complete, true);
    const noContent = feedIn('HTTP/1.1 204 No Content\r\n\r\n', 100);
    assert.deepEqual(
      noContent.events.map((e) => e.kind === 'response' && e.complete),
      [true],
    );
    const notModified = feedIn('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', 100);
    assert.deepEqual(
      notModified.events.map((e) => e.kind === 'response' && e.complete),
      [true],
    );
  });

  test('completes a close-delimited refusal body at the backend FIN', () => {
    const r = new BackendResponse();
    const ev = r.feed(Buffer.from('HTTP/1.1 503 Unavailable\r\n\r\nbusy'));
    assert.equal(ev.kind, 'response');
    if (ev.kind === 'response') assert.equal(ev.complete, false);
    assert.equal(r.feed(Buffer.from(' still')).kind, 'body');
    assert.equal(r.end(), true);
  });

  test('gives the raw bytes of a refusal head that arrived over several chunks', () => {
    const r = new BackendResponse();
    assert.equal(r.feed(Buffer.from('HTTP/1.1 404 Not')).kind, 'need-more');
    const ev = r.feed(Buffer.from(' Found\r\nContent-Length: 2\r\n\r\nno'));
    assert.equal(ev.kind, 'response');
    if (ev.kind === 'response') assert.equal(ev.raw.toString(), 'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno');
  });

  test('reads more than 32 headers (llhttp hands them over in batches)', () => {
    let head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
    for (let i = 0; i < 40; i++) head += `X-H${i}: ${i}\r\n`;
    head += '\r\n';
    const { events } = feedIn(head, 50);
    const ev = events[0]!;
    assert.equal(ev.kind, 'switched');
    if (ev.kind === 'switched') assert.equal(ev.head.rawHeaders.length, 84);
  });

  const invalid: [string, string][] = [
    ['a status line that is not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 99 Odd\r\n\r\n'],
    ['HTTP/2 in a status line', 'HTTP/2 101\r\n\r\n'],
    ['an obs-folded header', 'HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n continued\r\n\r\n'],
    ['a header without a colon', 'HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n'],
    ['two different Content-Lengths', 'HTTP/1.1 401 No\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'],
    ['a negative Content-Length', 'HTTP/1.1 401 No\r\nContent-Length: -1\r\n\r\n'],
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 401 No\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['a bare LF line ending', 'HTTP/1.1 101 OK\nUpgrade: websocket\n\n'],
  ];
  for (const [what, text] of invalid) {
    test(`refuses ${what}`, () => {
      const { events } = feedIn(text, 1000);
      assert.equal(events[0]?.kind, 'invalid', JSON.stringify(events));
    });
  }

  test('refuses a head larger than 64 KiB', () => {
    const { events } = feedIn(`HTTP/1.1 101 OK\r\nX: ${'a'.repeat(70 * 1024)}\r\n\r\n`, 4096);
    assert.equal(events[0]?.kind, 'invalid');
  });
});
