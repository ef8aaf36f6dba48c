{{/* The release's full name (also the ServiceAccount's and the roles'). */}}
{{- define "ebpfflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ebpfflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ebpfflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ebpfflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ebpfflow.labels" -}}
{{ include "ebpfflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: node-agent
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ebpfflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ebpfflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Whether a k8sattributes label/annotation rule reads namespaces. */}}
{{- define "ebpfflow.readsNamespaces" -}}
{{- range concat .Values.k8sattributes.extract.labels .Values.k8sattributes.extract.annotations -}}
{{- if eq (default "pod" .from) "namespace" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The collector configuration: the ebpfflow receiver, k8sattributes for the
local end, service.name from the workload, the exporters of the values, and
a persistent sending queue; .Values.config merged over it.
*/}}
{{- define "ebpfflow.config" -}}
{{- $v := .Values -}}
{{- $receiver := dict "flush_interval" $v.flushInterval "cluster_cidrs" $v.clusterCIDRs -}}
{{- if $v.kubernetes.enabled -}}
{{- $_ := set $receiver "kubernetes" (dict "enabled" true "auth_type" $v.kubernetes.authType "service_backends" $v.kubernetes.serviceBackends) -}}
{{- end -}}
{{- $processors := dict "memory_limiter" (dict "check_interval" "1s" "limit_percentage" 80 "spike_limit_percentage" 20) "batch" (dict "timeout" "2s" "send_batch_size" 4096) -}}
{{- $chain := list "memory_limiter" -}}
{{- if $v.k8sattributes.enabled -}}
{{- $assoc := list
      (dict "sources" (list (dict "from" "resource_attribute" "name" "k8s.pod.uid")))
      (dict "sources" (list (dict "from" "resource_attribute" "name" "k8s.pod.ip")))
      (dict "sources" (list (dict "from" "resource_attribute" "name" "container.id"))) -}}
{{- $extract := dict "metadata" $v.k8sattributes.extract.metadata -}}
{{- with $v.k8sattributes.extract.labels }}{{ $_ := set $extract "labels" . }}{{ end -}}
{{- with $v.k8sattributes.extract.annotations }}{{ $_ := set $extract "annotations" . }}{{ end -}}
{{- $_ := set $processors "k8s_attributes" (dict "auth_type" $v.k8sattributes.authType "passthrough" false "filter" (dict "node_from_env_var" "K8S_NODE_NAME") "pod_association" $assoc "extract" $extract) -}}
{{- $chain = append $chain "k8s_attributes" -}}
{{- if $v.serviceNameFromWorkload -}}
{{- $stmts := list -}}
{{- range list "k8s.job.name" "k8s.cronjob.name" "k8s.daemonset.name" "k8s.statefulset.name" "k8s.deployment.name" -}}
{{- $stmts = append $stmts (printf "set(attributes[\"service.name\"], attributes[\"%s\"]) where attributes[\"%s\"] != nil" . .) -}}
{{- end -}}
{{- $group := list (dict "context" "resource" "statements" $stmts) -}}
{{- $_ := set $processors "transform/service_name" (dict "error_mode" "ignore" "log_statements" $group "metric_statements" $group "trace_statements" $group) -}}
{{- $chain = append $chain "transform/service_name" -}}
{{- end -}}
{{- end -}}
{{- $extensions := dict "health_check" (dict
      "http" (dict "endpoint" (printf "${env:K8S_POD_IP}:%d" (int $v.ports.health)) "status" (dict "enabled" true "path" "/status"))
      "component_health" (dict "include_permanent_errors" true "include_recoverable_errors" true "recovery_duration" "1m")) -}}
{{- $extNames := list "health_check" -}}
{{- if $v.persistentQueue.enabled -}}
{{- $_ := set $extensions "file_storage" (dict "directory" $v.persistentQueue.hostPath "create_directory" true "timeout" "1s" "compaction" (dict "on_rebound" true "directory" $v.persistentQueue.hostPath)) -}}
{{- $extNames = append $extNames "file_storage" -}}
{{- end -}}
{{- $pipelines := dict -}}
{{- $batched := append $chain "batch" -}}
{{- if $v.anomaly.enabled -}}
{{- $_ := set $pipelines "logs" (dict "receivers" (list "ebpfflow") "processors" $batched "exporters" $v.pipelines.logs) -}}
{{- $_ := set $pipelines "logs/anomaly_in" (dict "receivers" (list "ebpfflow") "processors" $chain "exporters" (list "anomaly_detection")) -}}
{{- $_ := set $pipelines "logs/anomalies" (dict "receivers" (list "anomaly_detection") "processors" (list "batch") "exporters" $v.pipelines.logs) -}}
{{- else -}}
{{- $_ := set $pipelines "logs" (dict "receivers" (list "ebpfflow") "processors" $batched "exporters" $v.pipelines.logs) -}}
{{- end -}}
{{- $_ := set $pipelines "metrics" (dict "receivers" (list "ebpfflow") "processors" $batched "exporters" $v.pipelines.metrics) -}}
{{- $_ := set $pipelines "traces" (dict "receivers" (list "ebpfflow") "processors" $batched "exporters" $v.pipelines.traces) -}}
{{- $cfg := dict
      "receivers" (dict "ebpfflow" $receiver)
      "processors" $processors
      "exporters" $v.exporters
      "extensions" $extensions
      "service" (dict
        "extensions" $extNames
        "telemetry" (dict "metrics" (dict "level" $v.telemetryLevel "readers" (list (dict "pull" (dict "exporter" (dict "prometheus" (dict "host" "${env:K8S_POD_IP}" "port" (int $v.ports.metrics))))))))
        "pipelines" $pipelines) -}}
{{- if $v.anomaly.enabled -}}
{{- $_ := set $cfg "connectors" (dict "anomaly_detection" $v.anomaly.config) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg (deepCopy $v.config)) -}}
{{- end -}}
