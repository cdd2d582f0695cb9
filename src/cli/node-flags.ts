// The V8 flags wsgate's processes run with. A data plane relays at the rate of its clients, and every chunk makes
// a few short-lived objects: with V8's default young generation (up to 16 MiB per semi-space) a busy process grows
// by tens of MB of garbage between scavenges, which reads as RSS that seems to belong to its connections. A 2 MiB
// semi-space keeps that growth to a few MB, at no measurable cost in throughput (docs/benchmarks.md).
//
// The flag must be given when the process starts (V8 sizes the heap then): bin/wsgate.js's first line, the
// Dockerfile's ENTRYPOINT, and the worker processes' execArgv carry it; test/serve/slow-reader.test.ts checks that
// all three agree with this list.
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
