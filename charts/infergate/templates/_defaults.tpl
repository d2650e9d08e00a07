{{/*
Defaults the chart needs when a value is omitted or null, as JSON.

model.minReplicas is the chart's own default and is always rendered into the
autoscaler config, so the HPA and the autoscaler use the same bound.

The gateway and autoscaler keys repeat the services' own defaults tables
(gateway/src/config/defaults.ts and autoscaler/src/config/defaults.ts). The
chart renders only keys that were set, so it uses these numbers only to check
cross-field rules before a pod would crash-loop on them. The chart tests check
each rule at the service's default, so a change there fails them.
*/}}
{{- define "infergate.defaults" -}}
{{- $model := dict "minReplicas" 1 -}}
{{- $gatewayModel := dict
  "health" (dict "intervalMs" 5000 "timeoutMs" 2000)
  "ejection" (dict "baseMs" 5000 "maxMs" 60000) -}}
{{- $autoscaler := dict "requestTimeoutMs" 800 "staleAfterMs" 5000 -}}
{{- toJson (dict "model" $model "gatewayModel" $gatewayModel "autoscaler" $autoscaler) -}}
{{- end -}}
