{{/* The chart name, or nameOverride. */}}
{{- define "wsgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource names: fullnameOverride, else the release name (with the chart name appended unless it has it). */}}
{{- define "wsgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "wsgate.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods: stable across upgrades. */}}
{{- define "wsgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "wsgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wsgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: ingress-controller
app.kubernetes.io/part-of: wsgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "wsgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wsgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wsgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* A Deployment whose pods may be more than one at a time (replicas > 1 or autoscaled). */}}
{{- define "wsgate.multiReplica" -}}
{{- if and (eq .Values.kind "Deployment") (or .Values.autoscaling.enabled (gt (int .Values.replicas) 1)) -}}
true
{{- end -}}
{{- end -}}

{{/*
The drain settings, checked: a preStop sleep and --drain-delay both wait before the listeners close, and set
together their waits add up (SIGTERM comes only after the sleep), which is never what was meant.
*/}}
{{- define "wsgate.drain" -}}
{{- $d := .Values.controller.drain -}}
{{- if and (gt (int $d.preStopSleepSeconds) 0) (gt (int $d.delaySeconds) 0) -}}
{{- fail (printf "controller.drain.preStopSleepSeconds=%d and controller.drain.delaySeconds=%d both wait before wsgate's listeners close, and their waits add up (%d s): set one of them to 0 (delaySeconds, which also turns readiness false while it waits, is the one to keep)" (int $d.preStopSleepSeconds) (int $d.delaySeconds) (add $d.preStopSleepSeconds $d.delaySeconds)) -}}
{{- end -}}
{{- toJson $d -}}
{{- end -}}

{{/*
The termination grace period, counted by the kubelet from the deletion: the preStop sleep, the drain delay, the
drain timeout over which the 1001s are spread, 5 s for the last close handshakes (wsgate cuts them then) and a
10 s margin (the process's exit; wsgate kills a hung worker 10 s after the timeout). A value set lower than all
but the margin is refused: the kubelet would kill wsgate with connections still open, which clients see as 1006.
*/}}
{{- define "wsgate.terminationGracePeriodSeconds" -}}
{{- $d := include "wsgate.drain" . | fromJson -}}
{{- $needed := add $d.preStopSleepSeconds $d.delaySeconds $d.timeoutSeconds 5 -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "terminationGracePeriodSeconds=%d is shorter than the drain needs: controller.drain.preStopSleepSeconds (%d) + delaySeconds (%d) + timeoutSeconds (%d) + 5 s for the last close handshakes = %d s; the kubelet would kill wsgate with connections still open (clients see 1006). Raise it, or set it to 0 to have it computed (%d)" (int .Values.terminationGracePeriodSeconds) (int $d.preStopSleepSeconds) (int $d.delaySeconds) (int $d.timeoutSeconds) (int $needed) (int (add $needed 10))) -}}
{{- end -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $needed 10 -}}
{{- end -}}
{{- end -}}

{{/* The flags of `wsgate controller`, one list item each. */}}
{{- define "wsgate.args" -}}
- controller
- --http-addr={{ if .Values.ports.http.enabled }}0.0.0.0:{{ .Values.ports.http.containerPort }}{{ else }}off{{ end }}
- --https-addr={{ if .Values.ports.https.enabled }}0.0.0.0:{{ .Values.ports.https.containerPort }}{{ else }}off{{ end }}
- --admin-addr=0.0.0.0:{{ .Values.ports.admin.containerPort }}
- --ingress-class={{ .Values.controller.ingressClass }}
{{- with .Values.controller.watchNamespace }}
- --namespace={{ . }}
{{- end }}
{{- if .Values.controller.publishAddresses }}
- --publish-address={{ join "," .Values.controller.publishAddresses }}
{{- else if and .Values.controller.publishService .Values.service.enabled }}
- --publish-service={{ .Release.Namespace }}/{{ include "wsgate.fullname" . }}
{{- end }}
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-id={{ .Values.controller.leaderElectionId }}
- --debounce={{ .Values.controller.debounce }}
- --max-debounce={{ .Values.controller.maxDebounce }}
- --handshake-timeout={{ .Values.controller.handshakeTimeout }}
- --drain-delay={{ .Values.controller.drain.delaySeconds }}s
- --drain-timeout={{ .Values.controller.drain.timeoutSeconds }}s
- --log-level={{ .Values.controller.logLevel }}
{{- if .Values.controller.workers }}
- --workers={{ .Values.controller.workers }}
{{- end }}
{{- if .Values.controller.defaultCertificateSecret }}
- --default-cert=/etc/wsgate/default-certificate/tls.crt
- --default-key=/etc/wsgate/default-certificate/tls.key
{{- end }}
{{- if .Values.gatewayAPI.enabled }}
- --gateway-class={{ .Values.gatewayAPI.managedClasses }}
- --proxy-image={{ include "wsgate.image" . }}
- --proxy-cluster-role={{ include "wsgate.fullname" . }}-gateway-proxy
- --proxy-replicas={{ .Values.gatewayAPI.proxy.replicas }}
- --proxy-service-type={{ .Values.gatewayAPI.proxy.serviceType }}
- --proxy-workers={{ .Values.gatewayAPI.proxy.workers }}
- --proxy-drain-timeout={{ .Values.gatewayAPI.proxy.drainTimeoutSeconds }}s
{{- end }}
{{- with .Values.controller.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Whether the cluster serves the Prometheus Operator's API (ServiceMonitor, PrometheusRule). */}}
{{- define "wsgate.hasMonitoringAPI" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}
true
{{- end -}}
{{- end -}}
