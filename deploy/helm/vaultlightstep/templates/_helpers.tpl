{{/* Names, labels and shared pieces of the pod specs. */}}

{{- define "vaultlightstep.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart>, or the release name when it already holds the chart's name. */}}
{{- define "vaultlightstep.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "vaultlightstep.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vaultlightstep.agentName" -}}{{ include "vaultlightstep.fullname" . }}-agent{{- end -}}
{{- define "vaultlightstep.gatewayName" -}}{{ include "vaultlightstep.fullname" . }}-gateway{{- end -}}
{{- define "vaultlightstep.gatewayHeadlessName" -}}{{ include "vaultlightstep.fullname" . }}-gateway-headless{{- end -}}

{{- define "vaultlightstep.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vaultlightstep
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "agent"). */}}
{{- define "vaultlightstep.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaultlightstep.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vaultlightstep.agentServiceAccountName" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (include "vaultlightstep.agentName" .) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- required "agent.serviceAccount.name is required when agent.serviceAccount.create is false" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vaultlightstep.gatewayServiceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create -}}
{{- default (include "vaultlightstep.gatewayName" .) .Values.gateway.serviceAccount.name -}}
{{- else -}}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vaultlightstep.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The gateway Service's in-cluster DNS name. */}}
{{- define "vaultlightstep.gatewayHost" -}}
{{- printf "%s.%s.svc.%s" (include "vaultlightstep.gatewayName" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{- define "vaultlightstep.gatewayEndpoint" -}}
{{- default (printf "%s:%v" (include "vaultlightstep.gatewayHost" .) .Values.ports.otlpGrpc) .Values.agent.gatewayEndpoint -}}
{{- end -}}

{{/* The Secret with the gateway's certificate and key. */}}
{{- define "vaultlightstep.gatewayTLSSecretName" -}}
{{- default (printf "%s-tls" (include "vaultlightstep.gatewayName" .)) .Values.gateway.tls.secretName -}}
{{- end -}}

{{/* The Secret with the CA the agents trust. */}}
{{- define "vaultlightstep.gatewayCASecretName" -}}
{{- default (include "vaultlightstep.gatewayTLSSecretName" .) .Values.gateway.tls.caSecretName -}}
{{- end -}}

{{/* Where things are mounted in the pods. */}}
{{- define "vaultlightstep.confDir" -}}/conf{{- end -}}
{{- define "vaultlightstep.appRoleDir" -}}/vault/approle{{- end -}}
{{- define "vaultlightstep.vaultCADir" -}}/vault/ca{{- end -}}
{{- define "vaultlightstep.gatewayTLSDir" -}}/tls/gateway{{- end -}}
{{- define "vaultlightstep.gatewayCADir" -}}/tls/gateway-ca{{- end -}}

{{/*
The vaultauth `auth:` block for one component's login, as an overlay over
the example config's AppRole block: (dict "auth" .Values.agent.auth "component" "agent").
The example's role_id_file/secret_id_file are removed (null) for the other methods.
*/}}
{{- define "vaultlightstep.authOverlay" -}}
{{- $a := .auth -}}
method: {{ $a.method }}
{{- if $a.mountPath }}
mount_path: {{ $a.mountPath | quote }}
{{- end }}
{{- if eq $a.method "kubernetes" }}
role: {{ required (printf "%s.auth.role is required with method kubernetes" .component) $a.role | quote }}
{{- else if eq $a.method "token" }}
token_file: {{ required (printf "%s.auth.tokenFile is required with method token" .component) $a.tokenFile | quote }}
{{- else if not (has $a.method (list "approle" "agent")) }}
{{- fail (printf "%s.auth.method: %q is not one of kubernetes, approle, token, agent" .component $a.method) }}
{{- end }}
{{- if ne $a.method "approle" }}
role_id_file: null
secret_id_file: null
{{- end }}
{{- end -}}

{{/* Environment shared by both components:
(dict "ctx" $ "auth" .Values.agent.auth "component" "agent" "vaultAddress" .Values.agent.vaultAddress). */}}
{{- define "vaultlightstep.commonEnv" -}}
{{- $v := .ctx.Values -}}
- name: VAULT_ADDR
  value: {{ required "vault.address is required" (default $v.vault.address .vaultAddress) | quote }}
{{- if $v.vault.namespace }}
- name: VAULT_NAMESPACE
  value: {{ $v.vault.namespace | quote }}
{{- end }}
{{- if $v.vault.caSecret.name }}
- name: VAULT_CACERT
  value: {{ printf "%s/%s" (include "vaultlightstep.vaultCADir" .ctx) $v.vault.caSecret.key | quote }}
{{- end }}
{{- if eq .auth.method "approle" }}
{{- if not (or .auth.appRoleSecret (and .auth.roleIdFile .auth.secretIdFile)) }}
{{- fail (printf "%s.auth: method approle needs appRoleSecret, or roleIdFile and secretIdFile" .component) }}
{{- end }}
- name: VAULT_ROLE_ID_FILE
  value: {{ default (printf "%s/role-id" (include "vaultlightstep.appRoleDir" .ctx)) .auth.roleIdFile | quote }}
- name: VAULT_SECRET_ID_FILE
  value: {{ default (printf "%s/secret-id" (include "vaultlightstep.appRoleDir" .ctx)) .auth.secretIdFile | quote }}
{{- end }}
- name: OTLP_GRPC_ENDPOINT
  value: {{ printf "0.0.0.0:%v" $v.ports.otlpGrpc | quote }}
- name: OTLP_HTTP_ENDPOINT
  value: {{ printf "0.0.0.0:%v" $v.ports.otlpHttp | quote }}
- name: HEALTH_ENDPOINT
  value: {{ printf "0.0.0.0:%v" $v.ports.health | quote }}
{{- with $v.health.recoveryDuration }}
- name: HEALTH_RECOVERY_DURATION
  value: {{ . | quote }}
{{- end }}
- name: METRICS_HOST
  value: "0.0.0.0"
- name: METRICS_PORT
  value: {{ $v.ports.metrics | quote }}
{{- end -}}

{{/* Volumes shared by both components: (dict "ctx" $ "auth" ... "configMap" name "component" ...). */}}
{{- define "vaultlightstep.commonVolumes" -}}
{{- $v := .ctx.Values -}}
- name: conf
  configMap:
    name: {{ .configMap }}
{{- if and (eq .auth.method "approle") .auth.appRoleSecret }}
- name: approle
  secret:
    secretName: {{ .auth.appRoleSecret }}
    defaultMode: 0440
    items:
      - {key: role-id, path: role-id}
      - {key: secret-id, path: secret-id}
{{- end }}
{{- if $v.vault.caSecret.name }}
- name: vault-ca
  secret:
    secretName: {{ $v.vault.caSecret.name }}
    defaultMode: 0444
    items:
      - {key: {{ $v.vault.caSecret.key }}, path: {{ $v.vault.caSecret.key }}}
{{- end }}
{{- end -}}

{{- define "vaultlightstep.commonVolumeMounts" -}}
{{- $v := .ctx.Values -}}
- name: conf
  mountPath: {{ include "vaultlightstep.confDir" .ctx }}
  readOnly: true
{{- if and (eq .auth.method "approle") .auth.appRoleSecret }}
- name: approle
  mountPath: {{ include "vaultlightstep.appRoleDir" .ctx }}
  readOnly: true
{{- end }}
{{- if $v.vault.caSecret.name }}
- name: vault-ca
  mountPath: {{ include "vaultlightstep.vaultCADir" .ctx }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Container ports, probes and security shared by both components. */}}
{{- define "vaultlightstep.containerCommon" -}}
{{- $v := .ctx.Values -}}
image: {{ include "vaultlightstep.image" .ctx | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
command: [/otelcol-vaultlightstep]
args:
  - --config=file:{{ include "vaultlightstep.confDir" .ctx }}/base.yaml
{{- if .nodeAgent }}
  - --config=file:{{ include "vaultlightstep.confDir" .ctx }}/node-agent.yaml
{{- end }}
  - --config=file:{{ include "vaultlightstep.confDir" .ctx }}/overlay.yaml
{{- if .config }}
  - --config=file:{{ include "vaultlightstep.confDir" .ctx }}/extra.yaml
{{- end }}
securityContext:
  {{- toYaml $v.securityContext | nindent 2 }}
# Liveness: the process answers. Not the health status, which turns bad
# while Vault or the backend is unreachable: a restart would not fix that,
# and would lose the last good credential the collector keeps sending.
livenessProbe:
  tcpSocket: {port: health}
  periodSeconds: 10
  failureThreshold: 6
# Readiness: the health status (503 while starting; an error once a
# component has failed for longer than the example's recovery duration).
readinessProbe:
  httpGet: {path: {{ $v.health.path }}, port: health}
  periodSeconds: 5
  failureThreshold: 3
{{- end -}}

{{- define "vaultlightstep.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.ports.metrics | quote }}
prometheus.io/path: /metrics
{{- end -}}
