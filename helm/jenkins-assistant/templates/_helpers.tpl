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

{{- define "ja.redisCaDir" -}}/etc/jenkins-assistant/redis-tls{{- end -}}

{{- /* The Redis URL memory connects to; with redis.tls.caSecret, told to verify the server against that CA. */ -}}
{{- define "ja.redisUrl" -}}
{{- $url := default (printf "redis://%s-redis:6379/0" (include "ja.fullname" .)) .Values.redis.url -}}
{{- if .Values.redis.tls.caSecret -}}
{{- $url = printf "%s%sssl_ca_certs=%s/ca.crt" $url (ternary "&" "?" (contains "?" $url)) (include "ja.redisCaDir" .) -}}
{{- end -}}
{{- $url -}}
{{- end -}}

{{- /* Where inference sends generation with engine.mode openai: engine.url, else the chart's engine Service. */ -}}
{{- define "ja.engineUrl" -}}
{{- default (printf "http://%s-engine:%d/v1" (include "ja.fullname" .) (int .Values.engine.deployment.port)) .Values.engine.url -}}
{{- end -}}

{{- /* Servers close connections after grpc.maxConnectionAgeSeconds so that clients re-resolve (values.yaml). */ -}}
{{- define "ja.connectionAgeEnv" -}}
- {name: {{ .prefix }}MAX_CONNECTION_AGE_S, value: {{ .root.Values.grpc.maxConnectionAgeSeconds | quote }}}
- {name: {{ .prefix }}MAX_CONNECTION_AGE_GRACE_S, value: {{ .root.Values.grpc.maxConnectionAgeGraceSeconds | quote }}}
{{- end -}}

{{- define "ja.podDisruptionBudget" -}}
{{- if .values.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "ja.fullname" .root }}-{{ .component }}
  labels: {{- include "ja.labels" .root | nindent 4 }}
spec:
  maxUnavailable: {{ .values.maxUnavailable }}
  selector:
    matchLabels: {{- include "ja.selector" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}
{{- end -}}

{{- /* Whether the single shared token is in use: set, or (development default) possibly set in a Secret made
later. With only per-client credentials there is none, and no pod waits for its Secret. */ -}}
{{- define "ja.sharedToken" -}}
{{- if or .Values.auth.token .Values.auth.existingSecret (not .Values.auth.clientsSecret) }}true{{ end -}}
{{- end -}}

{{- define "ja.clientsDir" -}}/etc/jenkins-assistant/auth{{- end -}}

{{- /* What a gRPC server checks calls against. The shared token is optional only when auth is not required: a
required one never silently turns into no auth. */ -}}
{{- define "ja.authEnv" -}}
{{- if include "ja.sharedToken" .root }}
- name: {{ .prefix }}AUTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "ja.secretName" .root }}
      key: token
      optional: {{ not .root.Values.auth.required }}
{{- end }}
{{- if .root.Values.auth.clientsSecret }}
- {name: {{ .prefix }}AUTH_CLIENTS_FILE, value: {{ include "ja.clientsDir" .root }}/clients.json}
{{- end }}
{{- end -}}

{{- /* The token a client pod presents (env `name`): its own (`key` of auth.clientsSecret) when clients have
credentials of their own, else the shared one. */ -}}
{{- define "ja.clientTokenEnv" -}}
- name: {{ .name }}
  valueFrom:
    {{- if .root.Values.auth.clientsSecret }}
    secretKeyRef: {name: {{ .root.Values.auth.clientsSecret }}, key: {{ .key }}, optional: false}
    {{- else }}
    secretKeyRef: {name: {{ include "ja.secretName" .root }}, key: token, optional: {{ not .root.Values.auth.required }}}
    {{- end }}
{{- end -}}

{{- /* The clients file, read-only, for a server pod (only clients.json: the pod sees no other client's token). */ -}}
{{- define "ja.clientsVolume" -}}
{{- if .Values.auth.clientsSecret }}
- name: auth-clients
  secret:
    secretName: {{ .Values.auth.clientsSecret }}
    items: [{key: clients.json, path: clients.json}]
{{- end }}
{{- end -}}

{{- define "ja.clientsMount" -}}
{{- if .Values.auth.clientsSecret }}
- {name: auth-clients, mountPath: {{ include "ja.clientsDir" . }}, readOnly: true}
{{- end }}
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
