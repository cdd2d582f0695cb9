// Micro-benchmark of FrameTracker.push() (src/proxy/ws-frames.ts), not a test: what frame tracking costs per
// message, to hold against issue 10's budget (CPU per 64 B message +10 % at most, per 16 KiB message +5 %). Compare
// the ns printed here with the proxy's CPU per message from `npm run bench` (its "CPU µs/msg" rows).
//
//   node bench/ws-frames.ts [--ms 400] [--rounds 5]
//
// Scenarios (masked client frames, as the client→backend direction sees them; unmasked costs the same, since a
// payload is never read):
//  - 64 B messages packed in 64 KiB reads (a busy tunnel: many frames per read, one header straddling per read);
//  - 64 B messages, one per read (a quiet tunnel: the per-call overhead);
//  - 16 KiB messages in 64 KiB reads (four per read, the payload skipped arithmetically);
//  - 16 KiB messages arriving in 1460-byte reads (the header in one read, the payload spread over twelve);
//  - 64 B messages with StopOn.PONG set and a pong every 100 frames (keepalive on), to show the request is free.
// Each figure is the median over rounds of the CPU time spent in push() and takeReleased() (and the loop around
// them), per message and per read.
import { parseArgs } from 'node:util';
import { FrameTracker, StopOn, Stop } from '../src/proxy/ws-frames.ts';

const { values: flags } = parseArgs({
  options: { ms: { type: 'string', default: '400' }, rounds: { type: 'string', default: '5' } },
});
const budgetMs = Number(flags.ms);
const rounds = Number(flags.rounds);

function frame(opcode: number, n: number): Buffer {
  const hl = (n < 126 ? 2 : n < 65536 ? 4 : 10) + 4;
  const f = Buffer.alloc(hl + n, 0x61);
  f[0] = 0x80 | opcode;
  if (n < 126) f[1] = 0x80 | n;
  else if (n < 65536) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(n, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeBigUInt64BE(BigInt(n), 2);
  }
  f.writeUInt32BE(0x12345678, hl - 4);
  return f;
}

/** The stream cut into reads of `readSize` bytes, like a socket delivers them. */
function reads(stream: Buffer, readSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += readSize) out.push(stream.subarray(i, Math.min(stream.length, i + readSize)));
  return out;
}

interface Scenario {
  name: string;
  chunks: Buffer[];
  messages: number;
  stopOn: number;
}

function scenario(name: string, frames: Buffer[], repeat: number, readSize: number, stopOn = 0): Scenario {
  const one = Buffer.concat(frames);
  const stream = Buffer.concat(Array.from({ length: repeat }, () => one));
  return { name, chunks: reads(stream, readSize), messages: frames.filter((f) => (f[0]! & 0x0f) < 8).length * repeat, stopOn };
}

let sink = 0;

/** Relays the chunks through a fresh tracker as a relay would, without writing anywhere. */
function pass(s: Scenario): void {
  const t = new FrameTracker({ fromClient: true });
  t.stopOn = s.stopOn;
  for (const chunk of s.chunks) {
    let off = 0;
    for (;;) {
      const end = t.push(chunk, off);
      const held = t.takeReleased();
      if (held !== null) sink += held.length;
      sink += end - off;
      if (t.stop === Stop.END) break;
      off = end;
    }
  }
  if (t.messages !== s.messages || t.failure !== null) throw new Error(`${s.name}: ${t.messages} messages, ${t.failure}`);
}

/** CPU time of this process in µs: unlike wall time, not inflated when other processes share the cores. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Median over rounds of CPU ns per pass. */
function measure(s: Scenario): number {
  for (let i = 0; i < 20; i++) pass(s); // warm up: optimised code, as in a long-running proxy
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = cpuMicros();
    let now = t0;
    while (now - t0 < budgetMs * 1000) {
      pass(s);
      n++;
      now = cpuMicros();
    }
    results.push(((now - t0) * 1000) / n);
  }
  results.sort((a, b) => a - b);
  return results[Math.floor(results.length / 2)]!;
}

const small = frame(0x2, 64);
const big = frame(0x2, 16384);
const pong = frame(0xa, 8);
const withPongs = [...Array.from({ length: 100 }, () => small), pong];
const scenarios = [
  scenario('64 B messages, 64 KiB reads', [small], 20000, 65536),
  scenario('64 B messages, one per read', [small], 20000, small.length),
  scenario('64 B messages + a pong per 100, StopOn.PONG, 64 KiB reads', withPongs, 200, 65536, StopOn.PONG),
  scenario('16 KiB messages, 64 KiB reads', [big], 200, 65536),
  scenario('16 KiB messages, 1460 B reads', [big], 200, 1460),
];

console.log(`FrameTracker.push(), node ${process.version}, CPU time, median of ${rounds} rounds of ${budgetMs} ms`);
for (const s of scenarios) {
  const ns = measure(s);
  const perMessage = (ns / s.messages).toFixed(1).padStart(8);
  const perRead = (ns / s.chunks.length).toFixed(1).padStart(8);
  console.log(`${s.name.padEnd(60)} ${perMessage} ns/message ${perRead} ns/read`);
}
if (sink === 0) console.log('(nothing relayed?)');
