{{/*
Service config files. Both are rendered from the effective model list and
contain only keys whose values were set, so every other key keeps the service's
own default. The gateway and autoscaler Deployments hash these texts into a pod
annotation, so a config change rolls the pods.
*/}}

{{/* Mount paths inside the containers. */}}
{{- define "infergate.configDir" -}}/etc/infergate/config{{- end -}}
{{- define "infergate.autoscaler.tlsDir" -}}/etc/infergate/tls{{- end -}}
{{- define "infergate.autoscaler.requestHeaderDir" -}}/etc/infergate/requestheader{{- end -}}

{{- define "infergate.gateway.config" -}}
{{- include "infergate.checks.gateway" . -}}
{{- $server := .Values.gateway.server -}}
{{- $serverConfig := dict "port" (int $server.port) "adminPort" (int $server.adminPort) "shutdownGraceMs" (int $server.shutdownGraceMs) -}}
{{- if not (kindIs "invalid" $server.bodyLimitBytes) -}}
{{- $_ := set $serverConfig "bodyLimitBytes" (int64 $server.bodyLimitBytes) -}}
{{- end -}}
{{- $models := list -}}
{{- range (include "infergate.models" . | fromJson).models -}}
{{- $model := merge (dict "name" .name "protocol" .protocol "replicas" .replicas) .gateway -}}
{{- $models = append $models $model -}}
{{- end -}}
{{- toYaml (dict "server" $serverConfig "models" $models) -}}
{{- end -}}

{{- define "infergate.autoscaler.config" -}}
{{- include "infergate.checks.autoscaler" . -}}
{{- $values := .Values.autoscaler -}}
{{- $config := dict -}}
{{- $_ := set $config "gateways" (dict "kubernetes" (dict "namespace" .Release.Namespace "service" (include "infergate.gateway.adminServiceName" .) "port" "admin")) -}}
{{- $_ := set $config "pollIntervalMs" (int $values.pollIntervalMs) -}}
{{- range $key := list "requestTimeoutMs" "staleAfterMs" "kubernetesTimeoutMs" "podTemplateRefreshMs" "gpuBudget" -}}
{{- if and (hasKey $values $key) (not (kindIs "invalid" (get $values $key))) -}}
{{- $_ := set $config $key (int (get $values $key)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $config "adminPort" (int $values.adminPort) -}}
{{- $metricsApi := dict "port" (int $values.metricsApi.port) -}}
{{- $_ := set $metricsApi "tlsCertFile" (printf "%s/tls.crt" (include "infergate.autoscaler.tlsDir" .)) -}}
{{- $_ := set $metricsApi "tlsKeyFile" (printf "%s/tls.key" (include "infergate.autoscaler.tlsDir" .)) -}}
{{- if include "infergate.autoscaler.pinnedClientCA" . -}}
{{- $_ := set $metricsApi "clientCAFile" (printf "%s/requestheader-client-ca-file" (include "infergate.autoscaler.requestHeaderDir" .)) -}}
{{- else -}}
{{- $_ := set $metricsApi "clientCAFromCluster" true -}}
{{- end -}}
{{- with .Values.autoscaler.metricsApi.allowedNames -}}
{{- $_ := set $metricsApi "allowedNames" . -}}
{{- end -}}
{{- with .Values.autoscaler.metricsApi.authorization -}}
{{- $authorization := dict "mode" (.mode | default "delegated") -}}
{{- range $key := list "allowTtlMs" "denyTtlMs" -}}
{{- if and (hasKey $.Values.autoscaler.metricsApi.authorization $key) (not (kindIs "invalid" (get $.Values.autoscaler.metricsApi.authorization $key))) -}}
{{- $_ := set $authorization $key (int (get $.Values.autoscaler.metricsApi.authorization $key)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $metricsApi "authorization" $authorization -}}
{{- end -}}
{{- $_ := set $config "metricsApi" $metricsApi -}}
{{- $models := list -}}
{{- range (include "infergate.models" . | fromJson).models -}}
{{- if .autoscaling.enabled -}}
{{- $scaling := .autoscaling -}}
{{- $model := dict "name" .name "target" $scaling.target "targetPerReplica" $scaling.targetPerReplica "minReplicas" $scaling.minReplicas "maxReplicas" $scaling.maxReplicas -}}
{{- range $key := list "gpusPerReplica" "scaleDownWindowSeconds" "idleToZeroSeconds" "priority" -}}
{{- /* sprig's get returns "" for a missing key and nil for an explicit null: both mean unset. */ -}}
{{- if and (hasKey $scaling $key) (not (kindIs "invalid" (get $scaling $key))) -}}
{{- $_ := set $model $key (get $scaling $key) -}}
{{- end -}}
{{- end -}}
{{- $models = append $models $model -}}
{{- end -}}
{{- end -}}
{{- $_ := set $config "models" $models -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
The request-header CA the autoscaler checks front-proxy client certificates
against. Empty value: the autoscaler reads it, and the allowed names, from the
ConfigMap kube-system/extension-apiserver-authentication through the API and
re-reads it, so a rotated CA is picked up without an upgrade. A PEM value pins
the CA instead; the chart mounts it from a ConfigMap.
*/}}
{{- define "infergate.autoscaler.pinnedClientCA" -}}
{{- $pem := .Values.autoscaler.metricsApi.requestHeaderClientCA | default "" | trim -}}
{{- if and $pem (not (contains "-----BEGIN CERTIFICATE-----" $pem)) -}}
{{- fail (printf "autoscaler.metricsApi.requestHeaderClientCA: %q is not a PEM certificate; set it to the PEM bundle of the request-header CA (requestheader-client-ca-file of kube-system/extension-apiserver-authentication), or leave it empty to let the autoscaler read that ConfigMap" (trunc 40 $pem)) -}}
{{- end -}}
{{- $pem -}}
{{- end -}}
