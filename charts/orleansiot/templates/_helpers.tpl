{{/* Names and labels. */}}

{{- define "orleansiot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-orleansiot", or the release name when it already contains the chart name; at most 52 characters so
that "-rabbitmq" and a StatefulSet's pod suffix still fit in 63. */}}
{{- define "orleansiot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "orleansiot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "orleansiot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orleansiot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "orleansiot.labels" -}}
helm.sh/chart: {{ include "orleansiot.chart" . }}
{{ include "orleansiot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: orleansiot
{{- end -}}

{{/* Labels of one component: (dict "root" $ "component" "silo"). */}}
{{- define "orleansiot.componentLabels" -}}
{{ include "orleansiot.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "orleansiot.componentSelectorLabels" -}}
{{ include "orleansiot.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "orleansiot.siloServiceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-silo" (include "orleansiot.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the existing ServiceAccount of the silos (serviceAccount.create is false)" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "orleansiot.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* A label value for the Orleans ids (Kubernetes: at most 63 characters, alphanumeric at both ends). */}}
{{- define "orleansiot.orleansId" -}}
{{- $value := index .root.Values.orleans .key -}}
{{- if not (regexMatch "^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$" $value) -}}
{{- fail (printf "orleans.%s %q must be a Kubernetes label value (1-63 letters, digits, '-', '_', '.', alphanumeric at both ends): the silo pods carry it as a label" .key $value) -}}
{{- end -}}
{{- $value -}}
{{- end -}}

{{/* The Secret of the connection strings: the operator's, or the chart's "<fullname>-connections". */}}
{{- define "orleansiot.connectionsSecretName" -}}
{{- if and .Values.connections.existingSecret .Values.dependencies.deploy -}}
{{- fail "connections.existingSecret and dependencies.deploy=true are exclusive: the bundled servers' connection strings are in the chart's own Secret" -}}
{{- end -}}
{{- default (printf "%s-connections" (include "orleansiot.fullname" .)) .Values.connections.existingSecret -}}
{{- end -}}

{{/* Whether the chart creates the connections Secret: only for its own servers (connection strings are never values). */}}
{{- define "orleansiot.createConnectionsSecret" -}}
{{- if and (not .Values.connections.existingSecret) .Values.dependencies.deploy -}}true{{- end -}}
{{- end -}}

{{- define "orleansiot.apiKeysSecretName" -}}
{{- default (printf "%s-api-keys" (include "orleansiot.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{/* Configuration that the silos and the Api nodes share (the cluster, its servers, its partitions). */}}
{{- define "orleansiot.sharedEnv" -}}
{{- $secret := include "orleansiot.connectionsSecretName" . -}}
- name: Cluster__Mode
  value: Durable
- name: Orleans__ClusterId
  value: {{ include "orleansiot.orleansId" (dict "root" . "key" "clusterId") | quote }}
- name: Orleans__ServiceId
  value: {{ include "orleansiot.orleansId" (dict "root" . "key" "serviceId") | quote }}
- name: Silo__Partitions
  value: {{ .Values.orleans.partitions | quote }}
- name: Redis__ConnectionString
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.connections.redisKey }}
- name: Postgres__ConnectionString
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.connections.postgresKey }}
- name: RabbitMq__Uri
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .Values.connections.rabbitmqKey }}
{{- if .Values.dependencies.deploy }}
- name: RabbitMq__MaxLengthBytes
  value: {{ .Values.dependencies.rabbitmq.streamMaxLengthBytes | int64 | quote }}
- name: RabbitMq__MaxSegmentSizeBytes
  value: {{ .Values.dependencies.rabbitmq.streamMaxSegmentSizeBytes | int64 | quote }}
{{- end }}
- name: Logging__Console__FormatterName
  value: {{ .Values.logFormat | quote }}
{{- range $name, $value := .Values.sharedEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* An init container that waits until the bundled servers accept TCP connections (bash's /dev/tcp, in the app image). */}}
{{- define "orleansiot.waitForServers" -}}
{{- if and .root.Values.dependencies.deploy .root.Values.dependencies.waitForServers -}}
{{- $fullname := include "orleansiot.fullname" .root -}}
initContainers:
  - name: wait-for-servers
    image: {{ include "orleansiot.image" (dict "root" .root "image" .image) }}
    imagePullPolicy: {{ .image.pullPolicy }}
    command:
      - bash
      - -c
      - |
        for server in {{ $fullname }}-redis:6379 {{ $fullname }}-postgres:5432 {{ $fullname }}-rabbitmq:5672; do
          until (exec 3<>"/dev/tcp/${server%:*}/${server#*:}") 2>/dev/null; do echo "waiting for $server"; sleep 2; done
        done
    securityContext:
      {{- toYaml .root.Values.securityContext | nindent 6 }}
    resources:
      requests: { cpu: 10m, memory: 16Mi }
      limits: { cpu: 100m, memory: 64Mi }
{{- end }}
{{- end -}}

{{/* Spread a component's pods over the topology key (nodes by default). */}}
{{- define "orleansiot.spread" -}}
{{- if .values.spreadTopologyKey -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: {{ .values.spreadTopologyKey }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "orleansiot.componentSelectorLabels" (dict "root" .root "component" .component) | nindent 8 }}
{{- end }}
{{- end -}}
