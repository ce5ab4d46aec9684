{{/*
The chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "identsphere.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<chart> unless the release name already holds the chart name.
*/}}
{{- define "identsphere.fullname" -}}
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
A name derived from the full name: (dict "ctx" $ "suffix" "migrations").
*/}}
{{- define "identsphere.suffixed" -}}
{{- $full := include "identsphere.fullname" .ctx }}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .suffix)))) .suffix | trimSuffix "-" }}
{{- end }}

{{- define "identsphere.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "identsphere.labels" -}}
helm.sh/chart: {{ include "identsphere.chart" . }}
{{ include "identsphere.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: identsphere
{{- end }}

{{/*
Selector labels of the server pods (the migration Job's pods carry component=migrations instead).
*/}}
{{- define "identsphere.selectorLabels" -}}
app.kubernetes.io/name: {{ include "identsphere.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "identsphere.serverSelectorLabels" -}}
{{ include "identsphere.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "identsphere.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "identsphere.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest when a digest is given, repository:tag otherwise.
*/}}
{{- define "identsphere.image" -}}
{{- $img := .Values.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag | toString) }}
{{- end }}
{{- end }}

{{- define "identsphere.imagePullPolicy" -}}
{{- if .Values.image.pullPolicy }}
{{- .Values.image.pullPolicy }}
{{- else if .Values.image.digest }}
{{- "IfNotPresent" }}
{{- else }}
{{- "Always" }}
{{- end }}
{{- end }}

{{/*
The Secret the server reads its three secrets from, and whether the chart manages it.
*/}}
{{- define "identsphere.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "identsphere.fullname" . }}
{{- end }}
{{- end }}

{{/*
Fails the render when the settings cannot make a working Postgres + Redis deployment.
*/}}
{{- define "identsphere.validate" -}}
{{- if not .Values.publicBaseUrl }}
{{- fail "publicBaseUrl is required: the URL clients reach IdentSphere at, e.g. https://auth.example.com" }}
{{- end }}
{{- if not .Values.existingSecret }}
{{- if not .Values.database.url }}
{{- fail "database.url is required (a postgres:// URL), or set existingSecret: this chart runs only the Postgres + Redis mode" }}
{{- end }}
{{- if not .Values.redis.url }}
{{- fail "redis.url is required (a redis:// or rediss:// URL), or set existingSecret: this chart runs only the Postgres + Redis mode" }}
{{- end }}
{{- if not .Values.keyEncryptionKey }}
{{- fail "keyEncryptionKey is required (`openssl rand -base64 32`), or set existingSecret" }}
{{- end }}
{{- end }}
{{- if le (int .Values.shutdown.timeoutSeconds) 0 }}
{{- fail "shutdown.timeoutSeconds must be at least 1" }}
{{- end }}
{{- $tgp := .Values.shutdown.terminationGracePeriodSeconds }}
{{- if not (kindIs "invalid" $tgp) }}
{{- if le (int $tgp) (add .Values.shutdown.timeoutSeconds .Values.shutdown.delaySeconds | int) }}
{{- fail "shutdown.terminationGracePeriodSeconds must be larger than shutdown.delaySeconds + shutdown.timeoutSeconds, or the kubelet kills requests still draining" }}
{{- end }}
{{- end }}
{{- range $k, $_ := .Values.extraConfig }}
{{- if has $k (list "IDENTSPHERE_DATABASE_URL" "IDENTSPHERE_REDIS_URL" "IDENTSPHERE_KEY_ENCRYPTION_KEY") }}
{{- fail (printf "extraConfig.%s: secrets belong in the Secret (database.url, redis.url, keyEncryptionKey or existingSecret), not the ConfigMap" $k) }}
{{- end }}
{{- if has $k (list "IDENTSPHERE_DATA_DIR") }}
{{- fail "extraConfig.IDENTSPHERE_DATA_DIR: the embedded store is single-node and not for Kubernetes; this chart runs Postgres + Redis only" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "identsphere.terminationGracePeriodSeconds" -}}
{{- $tgp := .Values.shutdown.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $tgp }}
{{- add .Values.shutdown.timeoutSeconds .Values.shutdown.delaySeconds 10 }}
{{- else }}
{{- $tgp }}
{{- end }}
{{- end }}

{{/*
A whole number as decimal digits: values arrive as float64, which toString would print as 2.592e+06.
*/}}
{{- define "identsphere.int" -}}
{{- printf "%d" (int64 .) }}
{{- end }}

{{/*
The server's non-secret settings, as a dict of variable name to string.
*/}}
{{- define "identsphere.config" -}}
{{- $v := .Values }}
{{- $c := dict
  "IDENTSPHERE_BIND" "0.0.0.0:8080"
  "IDENTSPHERE_PUBLIC_BASE_URL" $v.publicBaseUrl
  "IDENTSPHERE_LOG_FORMAT" $v.log.format
  "IDENTSPHERE_LOG" $v.log.level
  "IDENTSPHERE_ACCESS_TOKEN_TTL" (include "identsphere.int" $v.tokens.accessTtlSeconds)
  "IDENTSPHERE_REFRESH_TOKEN_TTL" (include "identsphere.int" $v.tokens.refreshTtlSeconds)
  "IDENTSPHERE_REFRESH_REUSE_GRACE" (include "identsphere.int" $v.tokens.refreshReuseGraceSeconds)
  "IDENTSPHERE_ARGON2_MEMORY_KIB" (include "identsphere.int" $v.argon2.memoryKib)
  "IDENTSPHERE_ARGON2_ITERATIONS" (include "identsphere.int" $v.argon2.iterations)
  "IDENTSPHERE_ARGON2_PARALLELISM" (include "identsphere.int" $v.argon2.parallelism)
  "IDENTSPHERE_DATABASE_POOL_SIZE" (include "identsphere.int" $v.database.poolSize)
  "IDENTSPHERE_REDIS_KEY_PREFIX" $v.redis.keyPrefix
  "IDENTSPHERE_SHUTDOWN_DELAY" (include "identsphere.int" $v.shutdown.delaySeconds)
  "IDENTSPHERE_SHUTDOWN_TIMEOUT" (include "identsphere.int" $v.shutdown.timeoutSeconds)
  "IDENTSPHERE_KEY_ROTATION_INTERVAL" (include "identsphere.int" $v.keyRotationIntervalSeconds)
}}
{{- if not (kindIs "invalid" $v.passwordHashConcurrency) }}
{{- $_ := set $c "IDENTSPHERE_PASSWORD_HASH_CONCURRENCY" (include "identsphere.int" $v.passwordHashConcurrency) }}
{{- end }}
{{- if not (kindIs "invalid" $v.workers) }}
{{- $_ := set $c "IDENTSPHERE_WORKERS" (include "identsphere.int" $v.workers) }}
{{- end }}
{{- if not (kindIs "invalid" $v.actorArbiters) }}
{{- $_ := set $c "IDENTSPHERE_ACTOR_ARBITERS" (include "identsphere.int" $v.actorArbiters) }}
{{- end }}
{{- if not (kindIs "invalid" $v.actorIdleTimeoutSeconds) }}
{{- $_ := set $c "IDENTSPHERE_ACTOR_IDLE_TIMEOUT" (include "identsphere.int" $v.actorIdleTimeoutSeconds) }}
{{- end }}
{{- if $v.allowedOrigins }}
{{- $_ := set $c "IDENTSPHERE_ALLOWED_ORIGINS" (join "," $v.allowedOrigins) }}
{{- end }}
{{- if $v.trustedProxies }}
{{- $_ := set $c "IDENTSPHERE_TRUSTED_PROXIES" (join "," $v.trustedProxies) }}
{{- end }}
{{- $_ := set $c "IDENTSPHERE_CLIENT_IP_HEADER" $v.clientIpHeader }}
{{- if $v.metrics.separatePort }}
{{- $_ := set $c "IDENTSPHERE_METRICS_BIND" (printf "0.0.0.0:%d" (int $v.metrics.port)) }}
{{- end }}
{{- range $k, $val := $v.extraConfig }}
{{- $_ := set $c $k (toString $val) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/*
The three secret variables, read from the chart's Secret or existingSecret.
*/}}
{{- define "identsphere.secretEnv" -}}
{{- $name := include "identsphere.secretName" . }}
{{- $keys := .Values.existingSecretKeys }}
{{- if not .Values.existingSecret }}
{{- $keys = dict "databaseUrl" "IDENTSPHERE_DATABASE_URL" "redisUrl" "IDENTSPHERE_REDIS_URL" "keyEncryptionKey" "IDENTSPHERE_KEY_ENCRYPTION_KEY" }}
{{- end -}}
- name: IDENTSPHERE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.databaseUrl }}
- name: IDENTSPHERE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.redisUrl }}
- name: IDENTSPHERE_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.keyEncryptionKey }}
{{- end }}

{{/*
Label matchers of the alert queries: job and namespace of this release unless prometheusRule.matchLabels is set.
*/}}
{{- define "identsphere.alertSelector" -}}
{{- $m := .Values.prometheusRule.matchLabels }}
{{- if not $m }}
{{- $m = dict "job" (include "identsphere.fullname" .) "namespace" .Release.Namespace }}
{{- end }}
{{- $parts := list }}
{{- range $k := keys $m | sortAlpha }}
{{- $parts = append $parts (printf "%s=%q" $k (index $m $k | toString)) }}
{{- end }}
{{- join "," $parts }}
{{- end }}

{{/*
The stores' private CAs (database.ca, redis.ca): for each whose ConfigMap is set, the variable naming the file,
the mount and the volume. Called with (dict "ctx" . "stores" (list "database" …)): the migration Job needs only
the database's.
*/}}
{{- define "identsphere.caFiles" -}}
{{- $vars := dict "database" "IDENTSPHERE_DATABASE_CA_FILE" "redis" "IDENTSPHERE_REDIS_CA_FILE" }}
{{- range $store := .stores }}
{{- $ca := default dict (index $.ctx.Values $store "ca") }}
{{- if $ca.configMap }}
- store: {{ $store }}
  var: {{ index $vars $store }}
  configMap: {{ $ca.configMap | quote }}
  key: {{ $ca.key | default "ca.crt" | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "identsphere.caEnv" -}}
{{- range (include "identsphere.caFiles" . | fromYamlArray) }}
- name: {{ .var }}
  value: {{ printf "/etc/identsphere/%s-ca/%s" .store .key | quote }}
{{- end }}
{{- end }}

{{- define "identsphere.caMounts" -}}
{{- range (include "identsphere.caFiles" . | fromYamlArray) }}
- name: {{ .store }}-ca
  mountPath: /etc/identsphere/{{ .store }}-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "identsphere.caVolumes" -}}
{{- range (include "identsphere.caFiles" . | fromYamlArray) }}
- name: {{ .store }}-ca
  configMap:
    name: {{ .configMap }}
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
