{{/*
Cross-field rules that the gateway's and autoscaler's config loaders enforce at
start-up, checked at render time so that an install fails with the value names
instead of a pod that crash-loops. A null or omitted value is checked at the
service's default from "infergate.defaults". values.schema.json checks single
values; these rules relate two of them.
*/}}

{{/*
Gateway server rules. The gateway binds the traffic and the admin listener
separately, so one port for both fails at start-up with EADDRINUSE.
*/}}
{{- define "infergate.checks.gateway" -}}
{{- $server := .Values.gateway.server -}}
{{- if eq (int $server.port) (int $server.adminPort) -}}
{{- fail (printf "gateway.server.port and gateway.server.adminPort are both %d; the gateway listens on each separately, so set two different ports" (int $server.port)) -}}
{{- end -}}
{{- end -}}

{{/*
Autoscaler rules: one poll and one /admin/state request must each fit within
staleAfterMs, and the admin and metrics API listeners need two ports.
*/}}
{{- define "infergate.checks.autoscaler" -}}
{{- $values := .Values.autoscaler -}}
{{- $defaults := (include "infergate.defaults" . | fromJson).autoscaler -}}
{{- $stale := int $defaults.staleAfterMs -}}
{{- $staleSource := printf "autoscaler.staleAfterMs %d (the autoscaler's default)" $stale -}}
{{- if not (kindIs "invalid" $values.staleAfterMs) -}}
{{- $stale = int $values.staleAfterMs -}}
{{- $staleSource = printf "autoscaler.staleAfterMs %d" $stale -}}
{{- end -}}
{{- $poll := int $values.pollIntervalMs -}}
{{- if gt $poll $stale -}}
{{- fail (printf "autoscaler.pollIntervalMs: %d exceeds %s, so every gateway snapshot would be stale before the next poll and the autoscaler rejects the config; lower pollIntervalMs or raise autoscaler.staleAfterMs to at least %d" $poll $staleSource $poll) -}}
{{- end -}}
{{- $requestTimeout := int $defaults.requestTimeoutMs -}}
{{- $requestTimeoutText := printf "%d (the autoscaler's default)" $requestTimeout -}}
{{- if not (kindIs "invalid" $values.requestTimeoutMs) -}}
{{- $requestTimeout = int $values.requestTimeoutMs -}}
{{- $requestTimeoutText = printf "%d" $requestTimeout -}}
{{- end -}}
{{- if gt $requestTimeout $stale -}}
{{- fail (printf "autoscaler.requestTimeoutMs: %s exceeds %s, and the autoscaler rejects a request timeout longer than staleAfterMs; lower autoscaler.requestTimeoutMs or raise autoscaler.staleAfterMs to at least %d" $requestTimeoutText $staleSource $requestTimeout) -}}
{{- end -}}
{{- if eq (int $values.adminPort) (int $values.metricsApi.port) -}}
{{- fail (printf "autoscaler.adminPort and autoscaler.metricsApi.port are both %d; the autoscaler rejects one port for both listeners, so set two different ports" (int $values.adminPort)) -}}
{{- end -}}
{{- end -}}

{{/*
Per-model gateway rules, for the keys of one models[] entry (or of
exampleModel.gateway). Input: dict model, path (the values path used in
messages). A health probe must time out before the next one starts, and the
ejection period cap must not be below its first period.
*/}}
{{- define "infergate.checks.gatewayModel" -}}
{{- $model := .model -}}
{{- $path := .path -}}
{{- $defaults := (include "infergate.defaults" dict | fromJson).gatewayModel -}}
{{- $health := default dict $model.health -}}
{{- $interval := int $defaults.health.intervalMs -}}
{{- $intervalSource := printf "health.intervalMs %d (the gateway's default)" $interval -}}
{{- if not (kindIs "invalid" $health.intervalMs) -}}
{{- $interval = int $health.intervalMs -}}
{{- $intervalSource = printf "health.intervalMs %d" $interval -}}
{{- end -}}
{{- $timeout := int $defaults.health.timeoutMs -}}
{{- $timeoutText := printf "%d (the gateway's default)" $timeout -}}
{{- if not (kindIs "invalid" $health.timeoutMs) -}}
{{- $timeout = int $health.timeoutMs -}}
{{- $timeoutText = printf "%d" $timeout -}}
{{- end -}}
{{- if gt $timeout $interval -}}
{{- fail (printf "%s.health.timeoutMs: %s exceeds %s, and the gateway rejects a probe timeout longer than the probe interval; set health.timeoutMs to at most %d or raise health.intervalMs" $path $timeoutText $intervalSource $interval) -}}
{{- end -}}
{{- $ejection := default dict $model.ejection -}}
{{- $base := int $defaults.ejection.baseMs -}}
{{- $baseSource := printf "ejection.baseMs %d (the gateway's default)" $base -}}
{{- if not (kindIs "invalid" $ejection.baseMs) -}}
{{- $base = int $ejection.baseMs -}}
{{- $baseSource = printf "ejection.baseMs %d" $base -}}
{{- end -}}
{{- $maxPeriod := int $defaults.ejection.maxMs -}}
{{- $maxPeriodText := printf "%d (the gateway's default)" $maxPeriod -}}
{{- if not (kindIs "invalid" $ejection.maxMs) -}}
{{- $maxPeriod = int $ejection.maxMs -}}
{{- $maxPeriodText = printf "%d" $maxPeriod -}}
{{- end -}}
{{- if lt $maxPeriod $base -}}
{{- fail (printf "%s.ejection.maxMs: %s is below %s, and the gateway rejects an ejection cap below the first ejection period; set ejection.maxMs to at least %d or lower ejection.baseMs" $path $maxPeriodText $baseSource $base) -}}
{{- end -}}
{{- end -}}
