{{/*
The effective model list: .Values.models plus the example model when enabled,
with every default filled in, as JSON {"models": [...]}. The gateway config,
the autoscaler config, the HPAs and the RBAC all read this one list, so they
always agree on names, namespaces and targets.

Each entry: name, slug (for object names), protocol, replicas (the gateway's
form, with the namespace filled in), gateway (the optional per-model gateway
keys that were set) and autoscaling (enabled, target {kind, name, namespace},
targetPerReplica, minReplicas, maxReplicas, gpusPerReplica, scaleDownWindowSeconds,
idleToZeroSeconds, priority, behavior).
*/}}
{{- define "infergate.models" -}}
{{- $root := . -}}
{{- $models := list -}}
{{- range $index, $model := .Values.models -}}
{{- $path := printf "models[%d]" $index -}}
{{- $models = append $models (include "infergate.normalizeModel" (dict "root" $root "model" $model "path" $path) | fromJson) -}}
{{- end -}}
{{- if .Values.exampleModel.enabled -}}
{{- $example := .Values.exampleModel -}}
{{- $model := deepCopy (default dict $example.gateway) -}}
{{- $_ := set $model "name" $example.name -}}
{{- $_ := set $model "protocol" "openai" -}}
{{- $_ := set $model "replicas" (dict "kubernetes" (dict "service" (include "infergate.exampleModel.fullname" $root) "namespace" $root.Release.Namespace "port" "http")) -}}
{{- $autoscaling := deepCopy (default dict $example.autoscaling) -}}
{{- $_ := set $autoscaling "target" (dict "kind" "Deployment" "name" (include "infergate.exampleModel.fullname" $root) "namespace" $root.Release.Namespace) -}}
{{- $_ := set $model "autoscaling" $autoscaling -}}
{{- $models = append $models (include "infergate.normalizeModel" (dict "root" $root "model" $model "path" "exampleModel") | fromJson) -}}
{{- end -}}
{{- if not $models -}}
{{- fail "models: the list is empty and exampleModel.enabled is false; add at least one model to models (name, protocol, replicas) or enable exampleModel" -}}
{{- end -}}
{{- $seen := dict -}}
{{- $seenSlugs := dict -}}
{{- range $models -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "models: the model name %q appears twice (exampleModel.name counts too); model names must be unique" .name) -}}
{{- end -}}
{{- if hasKey $seenSlugs .slug -}}
{{- fail (printf "models: the model names %q and %q both become the object name suffix %q; rename one of them" (get $seenSlugs .slug) .name .slug) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- $_ := set $seenSlugs .slug .name -}}
{{- end -}}
{{- toJson (dict "models" $models) -}}
{{- end -}}

{{/*
One model with defaults filled in. Input: dict root, model, path (the values
path used in error messages).
*/}}
{{- define "infergate.normalizeModel" -}}
{{- $root := .root -}}
{{- $model := .model -}}
{{- $path := .path -}}
{{- $name := required (printf "%s.name: missing; every model needs the name clients send" $path) $model.name | toString -}}
{{- $slug := include "infergate.slug" $name -}}
{{- if not $slug -}}
{{- fail (printf "%s.name: %q contains no letter or digit, so no object name can be made from it" $path $name) -}}
{{- end -}}
{{- $replicas := required (printf "%s.replicas: missing; set replicas.kubernetes {service, namespace, port} or replicas.static [URLs]" $path) $model.replicas -}}
{{- $normalizedReplicas := dict -}}
{{- $namespace := $root.Release.Namespace -}}
{{- if and $replicas.kubernetes $replicas.static -}}
{{- fail (printf "%s.replicas: set either kubernetes or static, not both" $path) -}}
{{- else if $replicas.kubernetes -}}
{{- $kube := $replicas.kubernetes -}}
{{- $namespace = default $root.Release.Namespace $kube.namespace -}}
{{- $service := required (printf "%s.replicas.kubernetes.service: missing; name the Service in front of the model's pods" $path) $kube.service -}}
{{- $port := default "http" $kube.port -}}
{{- if kindIs "float64" $port -}}
{{- $port = int $port -}}
{{- end -}}
{{- $_ := set $normalizedReplicas "kubernetes" (dict "namespace" $namespace "service" $service "port" $port) -}}
{{- else if $replicas.static -}}
{{- $_ := set $normalizedReplicas "static" $replicas.static -}}
{{- else -}}
{{- fail (printf "%s.replicas: set kubernetes {service, namespace, port} or a non-empty static list of URLs" $path) -}}
{{- end -}}
{{- $gateway := dict -}}
{{- range $key := list "maxInflightPerReplica" "queue" "batching" "health" "ejection" "retry" "scaleFromZero" "upstream" -}}
{{- if hasKey $model $key -}}
{{- $value := get $model $key -}}
{{- if not (kindIs "invalid" $value) -}}
{{- $_ := set $gateway $key $value -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- include "infergate.checks.gatewayModel" (dict "model" $gateway "path" $path) -}}
{{- $autoscaling := deepCopy (default dict $model.autoscaling) -}}
{{- $enabled := true -}}
{{- if hasKey $autoscaling "enabled" -}}
{{- $enabled = $autoscaling.enabled -}}
{{- end -}}
{{- $_ := set $autoscaling "enabled" $enabled -}}
{{- if $enabled -}}
{{- $target := deepCopy (default dict $autoscaling.target) -}}
{{- $_ := set $target "kind" (default "Deployment" $target.kind) -}}
{{- $_ := set $target "namespace" (default $namespace $target.namespace) -}}
{{- if not $target.name -}}
{{- if $normalizedReplicas.kubernetes -}}
{{- $_ := set $target "name" $normalizedReplicas.kubernetes.service -}}
{{- else -}}
{{- fail (printf "%s.autoscaling.target.name: missing; a model with replicas.static has no Service to take the workload name from, so name the Deployment or StatefulSet to scale, or set autoscaling.enabled=false" $path) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $autoscaling "target" $target -}}
{{- $targetPerReplica := required (printf "%s.autoscaling.targetPerReplica: missing; set the concurrent requests one replica should carry" $path) $autoscaling.targetPerReplica -}}
{{- if le (float64 $targetPerReplica) 0.0 -}}
{{- fail (printf "%s.autoscaling.targetPerReplica: %v is not positive; set the concurrent requests one replica should carry" $path $targetPerReplica) -}}
{{- end -}}
{{- /* sprig's default treats 0 as unset, so an explicit minReplicas 0 is read with kindIs. */ -}}
{{- $min := int (include "infergate.defaults" $root | fromJson).model.minReplicas -}}
{{- if not (kindIs "invalid" $autoscaling.minReplicas) -}}
{{- $min = int $autoscaling.minReplicas -}}
{{- end -}}
{{- $max := int (required (printf "%s.autoscaling.maxReplicas: missing" $path) $autoscaling.maxReplicas) -}}
{{- if lt $max (max 1 $min) -}}
{{- fail (printf "%s.autoscaling.maxReplicas: %d is below minReplicas %d (and below 1); raise maxReplicas" $path $max $min) -}}
{{- end -}}
{{- $_ := set $autoscaling "minReplicas" $min -}}
{{- $_ := set $autoscaling "maxReplicas" $max -}}
{{- /*
The autoscaler scales a model up from 0 only when the gateways report queued
or held requests, and without scaleFromZero the gateway rejects requests for a
model with no ready replica at once (503 no_replicas_ready). So minReplicas 0
needs scaleFromZero.enabled, which the chart turns on unless it was disabled.
*/ -}}
{{- if eq $min 0 -}}
{{- $scaleFromZero := deepCopy (default dict $gateway.scaleFromZero) -}}
{{- if and (not (kindIs "invalid" $scaleFromZero.enabled)) (not $scaleFromZero.enabled) -}}
{{- fail (printf "%s.scaleFromZero.enabled: false, but %s.autoscaling.minReplicas is 0; a model scaled to zero would reject every request with 503 and never scale up again, because the autoscaler starts a model only for queued or held requests. Remove scaleFromZero.enabled (minReplicas 0 turns it on) or set autoscaling.minReplicas to 1 or more" $path $path) -}}
{{- end -}}
{{- $_ := set $scaleFromZero "enabled" true -}}
{{- $_ := set $gateway "scaleFromZero" $scaleFromZero -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "name" $name "slug" $slug "protocol" (default "openai" $model.protocol) "replicas" $normalizedReplicas "gateway" $gateway "autoscaling" $autoscaling) -}}
{{- end -}}

{{/*
Namespaces that hold model Services the gateway watches, sorted, as JSON list.
*/}}
{{- define "infergate.gateway.watchNamespaces" -}}
{{- $namespaces := list -}}
{{- range (include "infergate.models" . | fromJson).models -}}
{{- with .replicas.kubernetes -}}
{{- $namespaces = append $namespaces .namespace -}}
{{- end -}}
{{- end -}}
{{- toJson ($namespaces | uniq | sortAlpha) -}}
{{- end -}}
