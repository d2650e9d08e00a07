{{/*
Names, labels and images shared by every template.
*/}}

{{- define "infergate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: "<release>-<chart>", or the release name alone when it already
contains the chart name. Object names add a suffix, so it stays well under the
63 characters of a DNS label.
*/}}
{{- define "infergate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "infergate.gateway.fullname" -}}
{{- printf "%s-gateway" (include "infergate.fullname" .) -}}
{{- end -}}

{{- define "infergate.gateway.adminServiceName" -}}
{{- printf "%s-gateway-admin" (include "infergate.fullname" .) -}}
{{- end -}}

{{- define "infergate.autoscaler.fullname" -}}
{{- printf "%s-autoscaler" (include "infergate.fullname" .) -}}
{{- end -}}

{{- define "infergate.autoscaler.tlsSecretName" -}}
{{- printf "%s-autoscaler-tls" (include "infergate.fullname" .) -}}
{{- end -}}

{{- define "infergate.exampleModel.fullname" -}}
{{- printf "%s-%s" (include "infergate.fullname" .) (include "infergate.slug" .Values.exampleModel.name) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "infergate.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create -}}
{{- default (include "infergate.gateway.fullname" .) .Values.gateway.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.gateway.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "infergate.autoscaler.serviceAccountName" -}}
{{- if .Values.autoscaler.serviceAccount.create -}}
{{- default (include "infergate.autoscaler.fullname" .) .Values.autoscaler.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.autoscaler.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
A model name turned into a DNS label fragment: lower case, runs of other
characters replaced by "-".
*/}}
{{- define "infergate.slug" -}}
{{- regexReplaceAll "[^a-z0-9-]+" (lower .) "-" | trimAll "-" -}}
{{- end -}}

{{- define "infergate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "infergate.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: infergate
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "infergate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "infergate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference from an image block: registry, repository and tag (the chart's
appVersion when the tag is empty).
*/}}
{{- define "infergate.image" -}}
{{- $repository := .image.repository -}}
{{- with .root.Values.imageRegistry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion .image.tag | toString) -}}
{{- end -}}

{{- define "infergate.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
