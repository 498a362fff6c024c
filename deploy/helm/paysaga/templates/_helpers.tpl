{{- define "paysaga.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "paysaga.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "paysaga.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "paysaga.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "paysaga.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "paysaga.fullname" .)) -}}
{{- end -}}

{{- define "paysaga.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "paysaga.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Settings of every paysaga container: the ConfigMap, the Secret, Temporal's TLS files. */}}
{{- define "paysaga.envFrom" -}}
- configMapRef:
    name: {{ include "paysaga.fullname" . }}-config
- secretRef:
    name: {{ include "paysaga.secretName" . }}
{{- end -}}

{{- define "paysaga.tlsEnv" -}}
{{- if .Values.temporal.tls.enabled }}
- name: PAYSAGA_TEMPORAL_TLS
  value: "true"
{{- if .Values.temporal.tls.ca }}
- name: PAYSAGA_TEMPORAL_TLS_CA
  value: /etc/paysaga/temporal-tls/ca.crt
{{- end }}
{{- if .Values.temporal.tls.clientCert }}
- name: PAYSAGA_TEMPORAL_TLS_CERT
  value: /etc/paysaga/temporal-tls/tls.crt
- name: PAYSAGA_TEMPORAL_TLS_KEY
  value: /etc/paysaga/temporal-tls/tls.key
{{- end }}
{{- if .Values.temporal.tls.serverName }}
- name: PAYSAGA_TEMPORAL_TLS_SERVER_NAME
  value: {{ .Values.temporal.tls.serverName | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "paysaga.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/paysaga/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "paysaga.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "paysaga.podSpecCommon" -}}
serviceAccountName: {{ include "paysaga.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
