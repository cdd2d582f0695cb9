#!/usr/bin/env bash
# Sets up what the tests (or the benchmark) need on this machine, then gets out of the way: `npm test` and
# `npm run bench:smoke` run it first. Every run checks; only what is missing costs time.
#
#   1. Debian packages. As root with apt-get, the missing ones are installed; otherwise it stops at once and
#      prints the `apt-get install` line to run.
#   2. Go components (test only): programs the tests run for real, built from their upstream Go modules by their
#      own build scripts and cached in ${WSGATE_CACHE:-~/.cache/wsgate}/<component>/<version>. The first build
#      takes about 15 minutes on 2 cores; with the cache warm this step reads a few files.
#
# Usage: scripts/setup/deps.sh test|bench [--no-build]
#   --no-build   fail instead of building a Go component that is not cached (the fresh-clone test uses it, so
#                that it can never start a 10-minute build)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${WSGATE_CACHE:-$HOME/.cache/wsgate}"

target="${1:-}"
no_build=0
if [[ "${2:-}" == "--no-build" ]]; then no_build=1; fi

say() { printf 'setup: %s\n' "$*" >&2; }

# ---- what each target needs ---------------------------------------------------------------------------------------
debian_packages=()
go_components=()

# go_component BUILD_DIR MINUTES OUTPUT...: a Go component built by BUILD_DIR/build.sh, which takes about MINUTES
# the first time, and which is cached once every OUTPUT exists. OUTPUT is a path under the cache that may name the
# variables of BUILD_DIR/versions.env (single-quoted, expanded after that file is read), exactly as build.sh
# writes it. Adding a component is one line in the target below (and its build.sh).
go_component() { go_components+=("$*"); }

case "$target" in
  test)
    # python3-websockets: an independent WebSocket client and server (for /usr/bin/python3); openssl: test
    # certificates; iproute2: network namespaces; util-linux: setpriv; prometheus: promtool checks the alerts,
    # a real Prometheus scrapes wsgate and runs the dashboard's queries; chromium: a real browser behind keepalive;
    # haproxy: the load balancer that sends PROXY protocol v1/v2 and X-Forwarded-For to wsgate
    # (test/proxy/proxy-protocol-in.test.ts).
    debian_packages=(python3-websockets openssl iproute2 util-linux prometheus chromium haproxy)
    # kube-apiserver and etcd: the controller, webhook and chart tests run against a real API server.
    go_component scripts/k8s 12 'k8s/$KUBE_VERSION/kube-apiserver' 'etcd/$ETCD_VERSION/etcd'
    # kube-controller-manager: Deployments, ReplicaSets and EndpointSlices for the Gateway API conformance cluster
    # (with the process kubelet, test/conformance/kubelet/).
    go_component scripts/k8s 5 'k8s/$KUBE_VERSION/kube-controller-manager'
    # The Gateway API conformance suite and its echo-basic backend, at a pinned version.
    go_component scripts/conformance 4 'gateway-api/$GATEWAY_API_VERSION/echo-basic' 'gateway-api/$GATEWAY_API_VERSION/conformance.test'
    # helm: the chart tests render, lint and dry-run the chart.
    go_component scripts/helm 3 'helm/$HELM_VERSION/helm'
    ;;
  bench)
    # The benchmark compares wsgate with nginx (and its stream module, for L4) and HAProxy; taskset (util-linux)
    # pins each process to its cores.
    debian_packages=(nginx-light libnginx-mod-stream haproxy util-linux)
    ;;
  *)
    echo "usage: scripts/setup/deps.sh test|bench [--no-build]" >&2
    exit 2
    ;;
esac

# ---- 1. Debian packages ------------------------------------------------------------------------------------------
missing_debian_packages() {
  local pkg status
  # One dpkg-query for all of them; a package dpkg has never heard of prints nothing for it.
  declare -A installed=()
  while read -r pkg status; do
    [[ "$status" == "install ok installed" ]] && installed[$pkg]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "${debian_packages[@]}" 2>/dev/null || true)
  for pkg in "${debian_packages[@]}"; do
    [[ -n "${installed[$pkg]:-}" ]] || echo "$pkg"
  done
}

if [[ ${#debian_packages[@]} -gt 0 ]]; then
  if ! command -v dpkg-query >/dev/null; then
    say "this is not a Debian-based system: install the equivalents of these Debian packages, then run again:"
    say "  ${debian_packages[*]}"
    exit 1
  fi
  mapfile -t missing < <(missing_debian_packages)
  if [[ ${#missing[@]} -gt 0 ]]; then
    install_line="apt-get install -y --no-install-recommends ${missing[*]}"
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
      say "installing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
        say "apt-get could not install them (its message is above); the line was: $install_line"
        exit 1
      fi
    else
      say "missing Debian packages: ${missing[*]}"
      say "install them, then run again:"
      echo "  sudo $install_line" >&2
      exit 1
    fi
  fi
fi

# ---- 2. Go components --------------------------------------------------------------------------------------------
# outputs_of "DIR MINUTES OUT...": the absolute paths of OUT..., with DIR/versions.env's variables expanded.
outputs_of() {
  local dir="$1" out
  shift 2
  (
    # shellcheck disable=SC1090,SC1091
    source "$root/$dir/versions.env"
    for out in "$@"; do eval "echo \"\$cache/$out\""; done
  )
}

to_build=()
missing_names=()
minutes=0
for c in "${go_components[@]}"; do
  # shellcheck disable=SC2086 # the component's words
  set -- $c
  missing_outputs=()
  while read -r out; do [[ -x "$out" ]] || missing_outputs+=("$out"); done < <(outputs_of "$@")
  if [[ ${#missing_outputs[@]} -gt 0 ]]; then
    to_build+=("$c")
    for out in "${missing_outputs[@]}"; do missing_names+=("$(basename "$out")"); done
    minutes=$((minutes + $2))
  fi
done

if [[ ${#to_build[@]} -gt 0 ]]; then
  if ! command -v go >/dev/null; then
    say "the tests need Go (1.26 or newer, https://go.dev/dl/) to build ${missing_names[*]}"
    exit 1
  fi
  if [[ "$no_build" == 1 ]]; then
    say "not cached in $cache, and --no-build: ${missing_names[*]}"
    exit 1
  fi
  say "building what the tests run and $cache does not hold yet: ${missing_names[*]}."
  say "The first build on a machine takes about $minutes minutes on 2 cores (more while other work shares them);"
  say "later runs reuse the cache."
fi

# build DIR WHAT: runs DIR/build.sh, its output indented, and a line every 30 s while go build is silent.
build() {
  local dir="$1" what="$2" started=$SECONDS heartbeat status=0
  (
    # sleep's own stderr is closed: an orphaned sleep must not hold a reader's pipe open after the build.
    while sleep 30 2>/dev/null; do say "  ... still building $what with $dir/build.sh ($((SECONDS - started))s so far)"; done
  ) &
  heartbeat=$!
  bash "$root/$dir/build.sh" 2>&1 | sed -u 's/^/  /' >&2 || status=$?
  kill "$heartbeat" 2>/dev/null || true
  wait "$heartbeat" 2>/dev/null || true
  if [[ "$status" != 0 ]]; then say "$dir/build.sh failed (exit $status): its output is above"; fi
  return "$status"
}

for c in "${to_build[@]}"; do
  # shellcheck disable=SC2086
  set -- $c
  build "$1" "$(outputs_of "$@" | xargs -n1 basename | paste -sd, - | sed 's/,/, /g')"
  # build.sh and the outputs listed above must agree: a component that still looks missing is a setup bug.
  while read -r out; do
    [[ -x "$out" ]] || { say "$1/build.sh finished but $out is missing: fix the go_component line"; exit 1; }
  done < <(outputs_of "$@")
done

if [[ ${#go_components[@]} -gt 0 ]]; then
  say "Go components cached: $(for c in "${go_components[@]}"; do set -- $c; outputs_of "$@" | xargs -n1 basename; done | tr '\n' ' ')(in $cache)"
fi
