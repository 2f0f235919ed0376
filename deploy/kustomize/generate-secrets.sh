#!/bin/sh
# Generates the two Secrets the Kustomize overlays mount, with openssl:
#
#   kplex-pki      what every replica must share (docs/replicas.md): the CA (ca.crt, ca.key),
#                  the serving certificate (apiserver.crt, apiserver.key) valid for the
#                  Service's DNS names and any --host given, the service-account signing key
#                  (sa.key, ECDSA P-256 PKCS#8) and the admin token (admin.token).
#   kplex-metrics  what Prometheus scrapes /metrics with: a bearer token (token), the CA to
#                  verify kplex (ca.crt), and the token file kplex reads the same token from
#                  (tokens.csv, kube-apiserver's --token-auth-file format: user
#                  kplex:metrics, group system:monitoring; see deploy/metrics-reader.yaml).
#
# Usage: generate-secrets.sh [-n NAMESPACE] [-s SERVICE] [-H HOST]... OUTDIR
#
#   -n NAMESPACE  namespace of the Secrets and of the Service (default: kplex)
#   -s SERVICE    name of kplex's Service (default: kplex)
#   -H HOST       a further DNS name or IP address for the serving certificate, e.g. the
#                 load balancer's (the host of --shard-external-url); repeatable
#
# Writes OUTDIR/kplex-pki/, OUTDIR/kplex-metrics/ (one file per key) and OUTDIR/secrets.yaml
# (both Secrets). Refuses to overwrite an existing OUTDIR/kplex-pki: keep these files, they
# are the control plane's identity; a new CA invalidates every kubeconfig and token issued.
#
#   kubectl create namespace kplex
#   deploy/kustomize/generate-secrets.sh -H kplex.example.com ./kplex-secrets
#   kubectl apply -f ./kplex-secrets/secrets.yaml
#   kubectl apply -k deploy/kustomize/overlays/etcd
set -eu

namespace=kplex
service=kplex
hosts=""
while getopts n:s:H: opt; do
  case "$opt" in
    n) namespace=$OPTARG ;;
    s) service=$OPTARG ;;
    H) hosts="$hosts $OPTARG" ;;
    *) sed -n '13,18p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ]; then
  sed -n '13,18p' "$0" >&2
  exit 2
fi
out=$1
pki=$out/kplex-pki
metrics=$out/kplex-metrics
if [ -e "$pki" ]; then
  echo "$pki exists: not overwriting the control plane's keys" >&2
  exit 1
fi
command -v openssl >/dev/null 2>&1 || { echo "openssl is needed" >&2; exit 1; }

umask 077
mkdir -p "$pki" "$metrics"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

p256() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
serial() { echo "0x$(openssl rand -hex 15)"; }

# The CA: ten years, like the one kplex generates for itself.
p256 "$pki/ca.key"
openssl req -x509 -new -key "$pki/ca.key" -subj /CN=kplex-ca -days 3650 -sha256 \
  -set_serial "$(serial)" \
  -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign \
  -out "$pki/ca.crt" 2>/dev/null

# The serving certificate: localhost (probes, kubectl port-forward) and the Service's names.
sans="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:$service,DNS:$service.$namespace"
sans="$sans,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local"
for h in $hosts; do
  case "$h" in
    *[!0-9.]*) case "$h" in *:*) sans="$sans,IP:$h" ;; *) sans="$sans,DNS:$h" ;; esac ;;
    *) sans="$sans,IP:$h" ;;
  esac
done
printf '%s\n' \
  "basicConstraints=CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" \
  "subjectAltName=$sans" >"$work/ext"
p256 "$pki/apiserver.key"
openssl req -new -key "$pki/apiserver.key" -subj /CN=kplex -out "$work/csr" 2>/dev/null
openssl x509 -req -in "$work/csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -days 3650 -sha256 \
  -set_serial "$(serial)" -extfile "$work/ext" -out "$pki/apiserver.crt" 2>/dev/null

# Service-account tokens are signed with this key (ES256; kplex reads PKCS#8 only).
p256 "$pki/sa.key"
# The built-in admin's bearer token (user kplex-admin, group system:masters).
openssl rand -hex 16 | tr -d '\n' >"$pki/admin.token"
# admin.crt and admin.key are left out on purpose: each replica signs its own admin client
# certificate with ca.key at its first start (CN kplex-admin, O system:masters).

token=$(openssl rand -hex 24)
printf '%s' "$token" >"$metrics/token"
printf '%s,kplex:metrics,kplex:metrics,system:monitoring\n' "$token" >"$metrics/tokens.csv"
cp "$pki/ca.crt" "$metrics/ca.crt"

b64() { openssl base64 -A -in "$1"; }
secret() { # name dir
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n' "$1" "$namespace"
  printf '  labels:\n    app.kubernetes.io/name: kplex\n    app.kubernetes.io/part-of: kplex\n'
  printf 'type: Opaque\ndata:\n'
  for f in "$2"/*; do
    printf '  %s: %s\n' "$(basename "$f")" "$(b64 "$f")"
  done
}
{
  secret kplex-pki "$pki"
  echo ---
  secret kplex-metrics "$metrics"
} >"$out/secrets.yaml"
echo "wrote $pki, $metrics and $out/secrets.yaml" >&2
