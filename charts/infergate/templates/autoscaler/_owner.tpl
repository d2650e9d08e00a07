{{/*
Describes who owns an existing APIService, for the conflict error: the Helm
release from its annotations, the product from its labels or Service name, and
the Service it points at.
*/}}
{{- define "infergate.apiServiceOwner" -}}
{{- $metadata := default dict .metadata -}}
{{- $annotations := default dict $metadata.annotations -}}
{{- $labels := default dict $metadata.labels -}}
{{- $spec := default dict .spec -}}
{{- $service := default dict $spec.service -}}
{{- $parts := list -}}
{{- $serviceText := "" -}}
{{- if $service.name -}}
{{- $serviceText = printf "%s/%s" (default "" $service.namespace) $service.name -}}
{{- end -}}
{{- $product := "" -}}
{{- range $key := list "app.kubernetes.io/part-of" "app.kubernetes.io/name" "app" -}}
{{- if and (not $product) (get $labels $key) -}}
{{- $product = get $labels $key -}}
{{- end -}}
{{- end -}}
{{- if or (contains "keda" (lower $product)) (contains "keda" $serviceText) -}}
{{- $product = "KEDA" -}}
{{- else if or (contains "prometheus-adapter" (lower $product)) (contains "prometheus-adapter" $serviceText) -}}
{{- $product = "prometheus-adapter" -}}
{{- end -}}
{{- with $product -}}
{{- $parts = append $parts . -}}
{{- end -}}
{{- with get $annotations "meta.helm.sh/release-name" -}}
{{- $parts = append $parts (printf "Helm release %q in namespace %q" . (get $annotations "meta.helm.sh/release-namespace")) -}}
{{- end -}}
{{- with $serviceText -}}
{{- $parts = append $parts (printf "service %s" .) -}}
{{- end -}}
{{- if $parts -}}
{{- join ", " $parts -}}
{{- else -}}
an unknown owner (no Helm annotations, no app labels and no service)
{{- end -}}
{{- end -}}
