{{- define "loadstone.labels" -}}
app.kubernetes.io/name: loadstone
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "loadstone.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- define "loadstone.secretName" -}}
{{ .Values.speaker.existingSecret | default (printf "%s-memberlist" .Release.Name) }}
{{- end -}}
