{{/* The injector's own name and labels. Its app.kubernetes.io/name differs from the controller's, so that no
     selector of the controller (Service, PodDisruptionBudget, ServiceMonitor) ever picks the injector's pods. */}}
{{- define "wsgate.sidecarInjector.fullname" -}}
{{- printf "%s-sidecar-injector" (include "wsgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wsgate.sidecarInjector.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-sidecar-injector" (include "wsgate.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wsgate.sidecarInjector.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wsgate.sidecarInjector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: sidecar-injector
app.kubernetes.io/part-of: wsgate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
