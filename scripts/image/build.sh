#!/usr/bin/env bash
# Builds wsgate's container image from the Dockerfile with whichever engine this machine has: docker (when its
# daemon answers), podman or buildah, in that order. `npm run image` runs it.
#
# Usage: scripts/image/build.sh [IMAGE] [--push]
#   IMAGE   the reference to tag, e.g. registry.example.com/team/wsgate:0.1.0 (default wsgate:<package.json version>)
#   --push  push it afterwards with the same engine (log in to the registry first)
# Then install the chart with --set image.repository=<IMAGE without the tag> --set image.tag=<the tag>.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/package.json")"
image="wsgate:$version"
push=0
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "image: unknown flag $arg (usage: npm run image -- [IMAGE] [--push])" >&2; exit 2 ;;
    *) image="$arg" ;;
  esac
done
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"

say() { printf 'image: %s\n' "$*" >&2; }

# The first engine that can build here. A docker CLI without a reachable daemon cannot (`docker info` fails).
engine=""
why=()
if command -v docker >/dev/null; then
  if docker_info="$(docker info 2>&1)"; then
    engine=docker
  else
    why+=("docker is installed, but no Docker engine answers ($(grep -m1 -iE 'cannot|error' <<<"$docker_info" || echo 'docker info failed'))")
  fi
else
  why+=("no docker")
fi
if [[ -z "$engine" ]]; then
  if command -v podman >/dev/null; then
    if podman info >/dev/null 2>&1; then engine=podman; else why+=("podman is installed, but podman info fails"); fi
  else
    why+=("no podman")
  fi
fi
if [[ -z "$engine" ]]; then
  if command -v buildah >/dev/null; then engine=buildah; else why+=("no buildah"); fi
fi
if [[ -z "$engine" ]]; then
  say "cannot build the image: no container engine on this machine."
  for w in "${why[@]}"; do say "  - $w"; done
  say "Install one of them (Docker with its daemon running, Podman or Buildah), or build elsewhere from this"
  say "directory with: docker build -t $image --build-arg VERSION=$version --build-arg REVISION=$revision ."
  exit 1
fi

args=(-t "$image" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" "$root")
say "building $image with $engine (version $version, revision $revision)"
case "$engine" in
  docker | podman) "$engine" build "${args[@]}" ;;
  buildah) buildah bud "${args[@]}" ;;
esac
say "built $image"

if [[ "$push" == 1 ]]; then
  say "pushing $image"
  "$engine" push "$image"
fi
repo="${image%:*}"
tag="${image##*:}"
if [[ "$repo" == "$image" || "$tag" == *"/"* ]]; then repo="$image"; tag=latest; fi
say "install with: helm install wsgate charts/wsgate -n wsgate --create-namespace --set image.repository=$repo --set image.tag=$tag"
