{{- define "ja.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ja.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ja.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ja.secretName" -}}
{{- default (printf "%s-auth" (include "ja.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "ja.redisUrl" -}}
{{- default (printf "redis://%s-redis:6379/0" (include "ja.fullname" .)) .Values.redis.url -}}
{{- end -}}

{{- /* The token is optional only when auth is not required: a required one never silently turns into no auth. */ -}}
{{- define "ja.authEnv" -}}
- name: {{ .prefix }}AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "ja.secretName" .root }}
      key: token
      optional: {{ not .root.Values.auth.required }}
{{- end -}}

{{- define "ja.metricsAnnotations" -}}
{{- if .root.Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{- define "ja.dataClaim" -}}
{{- default (printf "%s-data" (include "ja.fullname" .)) .Values.inference.dataVolume.claimName -}}
{{- end -}}
