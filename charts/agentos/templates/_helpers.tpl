{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "agentos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: <release>-<chart> unless the release name already contains the chart name.
*/}}
{{- define "agentos.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of a component's resources: <fullname>-<component>. Call with (list $ "worker").
*/}}
{{- define "agentos.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "agentos.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "agentos.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
*/}}
{{- define "agentos.labels" -}}
helm.sh/chart: {{ include "agentos.chart" . }}
{{ include "agentos.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentos
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "agentos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentos.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component. Call with (list $ "worker").
*/}}
{{- define "agentos.componentLabels" -}}
{{ include "agentos.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "agentos.componentSelectorLabels" -}}
{{ include "agentos.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
The agent image: repository@digest when a digest is given, else repository:tag
with the tag defaulting to the chart's appVersion.
*/}}
{{- define "agentos.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: `latest` is not allowed; use a version or set image.digest" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Where the database URL lives: a dict with "name" and "key" of the Secret.
Exactly one of database.url, database.existingSecret and database.bundled.enabled.
*/}}
{{- define "agentos.database.mode" -}}
{{- $db := .Values.database }}
{{- $n := 0 }}
{{- if $db.url }}{{ $n = add1 $n }}{{ end }}
{{- if $db.existingSecret }}{{ $n = add1 $n }}{{ end }}
{{- if $db.bundled.enabled }}{{ $n = add1 $n }}{{ end }}
{{- if eq $n 0 }}
{{- fail "database: set one of database.url, database.existingSecret (production, e.g. a CloudNativePG app secret) or database.bundled.enabled=true (trials)" }}
{{- else if gt $n 1 }}
{{- fail "database: database.url, database.existingSecret and database.bundled.enabled are mutually exclusive; set only one" }}
{{- end }}
{{- if $db.existingSecret }}existingSecret{{ else if $db.url }}url{{ else }}bundled{{ end }}
{{- end }}

{{- define "agentos.database.secretName" -}}
{{- if eq (include "agentos.database.mode" .) "existingSecret" }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- include "agentos.componentName" (list . "database") }}
{{- end }}
{{- end }}

{{- define "agentos.secretKey.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "agentos.componentName" (list . "secret-key")) }}
{{- end }}

{{- define "agentos.secretKey.key" -}}
{{- if .Values.secrets.existingSecret }}{{ .Values.secrets.existingSecretKey }}{{ else }}key{{ end }}
{{- end }}

{{- define "agentos.database.secretKey" -}}
{{- if eq (include "agentos.database.mode" .) "existingSecret" }}
{{- .Values.database.existingSecretKey }}
{{- else }}
{{- print "uri" }}
{{- end }}
{{- end }}

{{/*
Name of the bundled PostgreSQL StatefulSet and Service.
*/}}
{{- define "agentos.postgresql.name" -}}
{{- include "agentos.componentName" (list . "postgresql") }}
{{- end }}

{{/*
The ServiceAccount of pods that need no Kubernetes API access.
*/}}
{{- define "agentos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "agentos.fullname" . }}
{{- else }}
{{- print "default" }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount of the scaling orchestrator.
*/}}
{{- define "agentos.scalerServiceAccountName" -}}
{{- include "agentos.componentName" (list . "scaler") }}
{{- end }}

{{/*
"true" when the orchestrator scales the target role (and so gets RBAC and a token).
Checks that the scaling settings are coherent.
*/}}
{{- define "agentos.orchestratorScaling" -}}
{{- $a := .Values.autoscaling }}
{{- if and $a.keda.enabled $a.orchestrator.enabled }}
{{- fail "autoscaling: keda.enabled and orchestrator.enabled are mutually exclusive (both would set the worker replicas); disable one" }}
{{- end }}
{{- if or $a.keda.enabled $a.orchestrator.enabled }}
{{- $target := get .Values.roles $a.targetRole }}
{{- if not (and $target (ne (toString $target.enabled) "false")) }}
{{- fail (printf "autoscaling.targetRole: role %q is not an enabled entry of roles" $a.targetRole) }}
{{- end }}
{{- end }}
{{- if $a.orchestrator.enabled }}
{{- $scaler := get .Values.roles $a.orchestrator.role }}
{{- if not (and $scaler (ne (toString $scaler.enabled) "false")) }}
{{- fail (printf "autoscaling.orchestrator.role: role %q is not an enabled entry of roles" $a.orchestrator.role) }}
{{- end }}
{{- if gt (int $a.orchestrator.minReplicas) (int $a.orchestrator.maxReplicas) }}
{{- fail "autoscaling.orchestrator: minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- print "true" }}
{{- end }}
{{- end }}

{{/*
Environment shared by every container that talks to the database.
*/}}
{{- define "agentos.databaseEnv" -}}
- name: AGENTOS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "agentos.database.secretName" . }}
      key: {{ include "agentos.database.secretKey" . }}
- name: AGENTOS_HOME
  value: /var/lib/agentos
- name: HOME
  value: /var/lib/agentos
- name: AGENTOS_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end }}

{{/*
Pod-level securityContext (restricted Pod Security Standard).
*/}}
{{- define "agentos.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "agentos.containerSecurityContext" -}}
{{- $ctx := deepCopy .Values.containerSecurityContext }}
{{- $_ := set $ctx "runAsUser" .Values.podSecurityContext.runAsUser }}
{{- $_ := set $ctx "runAsGroup" .Values.podSecurityContext.runAsGroup }}
{{- toYaml $ctx }}
{{- end }}

{{/*
Writable volumes of an agent container: /tmp and AGENTOS_HOME (the git workspace lives there).
*/}}
{{- define "agentos.writableVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
- name: home
  emptyDir:
    sizeLimit: {{ .Values.workspaceSizeLimit }}
{{- end }}

{{- define "agentos.writableVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /var/lib/agentos
{{- end }}
