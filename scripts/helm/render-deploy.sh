#!/usr/bin/env bash
# Renders the plain manifests under deploy/ from charts/wsgate, for users without Helm. Never edit them by hand:
# change the chart, run this, commit both. test/chart/deploy.test.ts runs it into a temp dir and fails when the
# committed files differ.
#
#   deploy/wsgate.yaml                     the Namespace `wsgate`, the CRDs, and the chart with its default values
#                                          (release `wsgate` in namespace `wsgate`): `kubectl apply -f deploy/`
#   deploy/dashboards/wsgate.json          the Grafana dashboard (a copy of charts/wsgate/dashboards/wsgate.json)
#   deploy/prometheus/wsgate-rules.yaml    the alerts as a Prometheus rule file for `rule_files:` (a copy of
#                                          charts/wsgate/rules/wsgate-rules.yaml)
#   deploy/prometheus/prometheus-operator.yaml  ServiceMonitor, PrometheusRule and the dashboard ConfigMap, for
#                                          clusters with the Prometheus Operator and Grafana's dashboard sidecar
#
# deploy/crds/ is not written here: `npm run gen` writes it (and charts/wsgate/crds/) from src/api.
# dashboards/ and prometheus/ are subdirectories so that `kubectl apply -f deploy/` (not recursive) applies
# deploy/wsgate.yaml alone and needs no Prometheus Operator.
#
# Usage: scripts/helm/render-deploy.sh [OUT_DIR]   (default: the repository's deploy/; helm from scripts/helm/build.sh,
#        or $WSGATE_HELM)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
helm="${WSGATE_HELM:-${WSGATE_CACHE:-$HOME/.cache/wsgate}/helm/$HELM_VERSION/helm}"
[[ -x "$helm" ]] || { echo "helm not found at $helm: run scripts/helm/build.sh" >&2; exit 1; }

out="${1:-$root/deploy}"
chart="$root/charts/wsgate"
release=wsgate
namespace=wsgate
mkdir -p "$out/dashboards" "$out/prometheus"

# `helm template` with no cluster: the default capabilities of this helm build, fixed, so the output is the same
# on every machine.
template() { "$helm" template "$release" "$chart" --namespace "$namespace" "$@"; }

header() {
  echo "# Rendered from charts/wsgate by scripts/helm/render-deploy.sh ($HELM_VERSION); do not edit."
  echo "# $1"
}

{
  header "Install without Helm: kubectl apply --server-side -f deploy/   (release wsgate, namespace wsgate)"
  cat <<NS
---
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
  labels:
    app.kubernetes.io/name: wsgate
    app.kubernetes.io/part-of: wsgate
NS
  template --include-crds
} >"$out/wsgate.yaml.partial"
mv "$out/wsgate.yaml.partial" "$out/wsgate.yaml"

cp "$chart/dashboards/wsgate.json" "$out/dashboards/wsgate.json"
cp "$chart/rules/wsgate-rules.yaml" "$out/prometheus/wsgate-rules.yaml"

{
  header "For the Prometheus Operator and Grafana's dashboard sidecar: kubectl apply -f deploy/prometheus/prometheus-operator.yaml"
  template --api-versions monitoring.coreos.com/v1 \
    --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true \
    --set metrics.dashboard.enabled=true \
    --show-only templates/servicemonitor.yaml --show-only templates/prometheusrule.yaml \
    --show-only templates/dashboard-configmap.yaml
} >"$out/prometheus/prometheus-operator.yaml.partial"
mv "$out/prometheus/prometheus-operator.yaml.partial" "$out/prometheus/prometheus-operator.yaml"

echo "rendered $out/wsgate.yaml, $out/dashboards/ and $out/prometheus/" >&2
