{{- define "loadstone.labels" -}}
app.kubernetes.io/name: loadstone
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "loadstone.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- /* The memberlist key Secret: the user's, or the one the controller creates. */ -}}
{{- define "loadstone.secretName" -}}
{{ .Values.speaker.existingSecret | default (printf "%s-memberlist" .Release.Name) }}
{{- end -}}
{{- /* --metrics-bind-address and --metrics-secure for a port. */ -}}
{{- define "loadstone.metricsArgs" -}}
{{- $v := .root.Values.metrics -}}
{{- if not $v.enabled }}
- --metrics-bind-address=0
{{- else if $v.secure }}
- --metrics-bind-address=:{{ .port }}
- --metrics-secure
{{- else }}
- --metrics-bind-address=127.0.0.1:{{ .port }}
{{- end }}
{{- end -}}
