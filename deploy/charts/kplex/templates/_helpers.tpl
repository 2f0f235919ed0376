{{/* The chart name. */}}
{{- define "kplex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every resource: <release>-kplex, or <release> when it contains the name. */}}
{{- define "kplex.fullname" -}}
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

{{- define "kplex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kplex.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kplex.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kplex.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kplex
{{- end }}

{{/* The Secret with the keys every pod shares. */}}
{{- define "kplex.pkiSecret" -}}
{{- .Values.pki.existingSecret | default (printf "%s-pki" (include "kplex.fullname" .)) }}
{{- end }}

{{/* The Secret Prometheus scrapes /metrics with. */}}
{{- define "kplex.metricsSecret" -}}
{{- .Values.metrics.existingSecret | default (printf "%s-metrics" (include "kplex.fullname" .)) }}
{{- end }}

{{/* The Service's cluster DNS name. */}}
{{- define "kplex.serviceHost" -}}
{{- printf "%s.%s.svc" (include "kplex.fullname" .) .Release.Namespace }}
{{- end }}

{{/* --shard-external-url. */}}
{{- define "kplex.externalURL" -}}
{{- .Values.externalURL | default (printf "https://%s:%v" (include "kplex.serviceHost" .) .Values.service.port) }}
{{- end }}

{{- define "kplex.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Refuses values that cannot work, with a message saying what to set. */}}
{{- define "kplex.validate" -}}
{{- if not (has .Values.mode (list "embedded" "etcd")) }}
{{- fail (printf "mode must be embedded or etcd, not %q" .Values.mode) }}
{{- end }}
{{- if and (eq .Values.mode "etcd") (empty .Values.etcd.endpoints) }}
{{- fail "mode etcd needs etcd.endpoints (e.g. --set etcd.endpoints={https://etcd-0.etcd:2379})" }}
{{- end }}
{{- if and .Values.pki.existingSecret (not .Values.metrics.existingSecret) }}
{{- fail "pki.existingSecret needs metrics.existingSecret too (generate-secrets.sh makes both): the metrics Secret carries the CA that verifies kplex" }}
{{- end }}
{{- end }}

{{/*
An ECDSA P-256 key from genPrivateKey "ecdsa" (SEC1, "EC PRIVATE KEY") as PKCS#8
("PRIVATE KEY"), the form kplex reads its service-account key and its CA key in: the
SEC1 structure wrapped in a PrivateKeyInfo whose algorithm is id-ecPublicKey on prime256v1.
The fixed DER header below holds for the 121-byte SEC1 encoding Go writes for P-256.
*/}}
{{- define "kplex.pkcs8" -}}
{{- $der := . | replace "-----BEGIN EC PRIVATE KEY-----" "" | replace "-----END EC PRIVATE KEY-----" "" | nospace | b64dec -}}
{{- if ne (len $der) 121 }}
{{- fail (printf "unexpected P-256 key encoding (%d bytes)" (len $der)) }}
{{- end -}}
{{- $body := print (b64dec "MIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHk=") $der | b64enc -}}
-----BEGIN PRIVATE KEY-----
{{ regexFindAll ".{1,64}" $body -1 | join "\n" }}
-----END PRIVATE KEY-----
{{ end -}}

{{/* The pod template of both modes. */}}
{{- define "kplex.podTemplate" -}}
metadata:
  labels:
    {{- include "kplex.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: apiserver
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "kplex.fullname" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.affinity }}
  affinity:
    {{- toYaml .Values.affinity | nindent 4 }}
  {{- else if eq .Values.mode "etcd" }}
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "kplex.selectorLabels" . | nindent 14 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
  - name: kplex
    image: {{ include "kplex.image" . }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    command: ["/usr/local/bin/kplex"]
    args:
    - start
    - --root-directory=/var/lib/kplex
    - --bind-address=0.0.0.0
    - --secure-port=6443
    {{- if eq .Values.mode "etcd" }}
    - --etcd-servers={{ join "," .Values.etcd.endpoints }}
    {{- if .Values.etcd.tls.secretName }}
    - --etcd-cafile=/etc/kplex/etcd/ca.crt
    - --etcd-certfile=/etc/kplex/etcd/tls.crt
    - --etcd-keyfile=/etc/kplex/etcd/tls.key
    {{- end }}
    {{- end }}
    - --shard-external-url={{ include "kplex.externalURL" . }}
    - --token-auth-file=/etc/kplex/metrics/tokens.csv
    {{- range .Values.extraArgs }}
    - {{ . | quote }}
    {{- end }}
    {{- with .Values.env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    ports:
    - name: https
      containerPort: 6443
      protocol: TCP
    # /livez and /readyz answer without credentials; /readyz turns 503 on SIGTERM. The
    # startup probe gives a large embedded store time to load before the first answer.
    startupProbe:
      httpGet: {path: /livez, port: https, scheme: HTTPS}
      periodSeconds: 2
      failureThreshold: 90
    livenessProbe:
      httpGet: {path: /livez, port: https, scheme: HTTPS}
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 3
    readinessProbe:
      httpGet: {path: /readyz, port: https, scheme: HTTPS}
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 2
    resources:
      {{- toYaml .Values.resources | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    volumeMounts:
    # The root directory (the embedded store, admin.kubeconfig, this pod's admin client
    # certificate), with the shared keys mounted over it from the PKI Secret.
    - {name: root, mountPath: /var/lib/kplex}
    {{- range list "ca.crt" "ca.key" "apiserver.crt" "apiserver.key" "sa.key" "admin.token" }}
    - {name: pki, mountPath: /var/lib/kplex/{{ . }}, subPath: {{ . }}, readOnly: true}
    {{- end }}
    - {name: metrics, mountPath: /etc/kplex/metrics, readOnly: true}
    - {name: tmp, mountPath: /tmp}
    {{- if and (eq .Values.mode "etcd") .Values.etcd.tls.secretName }}
    - {name: etcd-client, mountPath: /etc/kplex/etcd, readOnly: true}
    {{- end }}
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
  {{- if or (eq .Values.mode "etcd") (not .Values.persistence.enabled) }}
  - name: root
    emptyDir:
      sizeLimit: {{ if eq .Values.mode "etcd" }}64Mi{{ else }}{{ .Values.persistence.size }}{{ end }}
  {{- end }}
  - name: pki
    secret:
      secretName: {{ include "kplex.pkiSecret" . }}
      defaultMode: 0440
  - name: metrics
    secret:
      secretName: {{ include "kplex.metricsSecret" . }}
      defaultMode: 0440
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- if and (eq .Values.mode "etcd") .Values.etcd.tls.secretName }}
  - name: etcd-client
    secret:
      secretName: {{ .Values.etcd.tls.secretName }}
      defaultMode: 0440
  {{- end }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
