# The native relay (relay.c), built by `npm ci` (scripts/native/build.sh) against the headers of the pinned `node`
# package: node-gyp never downloads anything.
{
  "targets": [
    {
      "target_name": "wsgate_relay",
      "sources": ["relay.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "conditions": [["OS != 'linux'", { "type": "none", "sources!": ["relay.c"] }]]
    }
  ]
}
