#!/usr/bin/env bash
# Builds kplex and its kubectl plugins (kubectl ws, kubectl create workspace, kubectl kplex),
# installs them
# into cargo's bin directory (~/.cargo/bin, on PATH with rustup), and runs kplex with the
# embedded store — no other service needed. Installs the one build tool a fresh Debian
# machine lacks (protoc, for the etcd client). Extra arguments go to `kplex start`
# (e.g. --secure-port 7443, --etcd-servers URL).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >/dev/null
fi
cargo install --quiet --locked --force --path . --target-dir target --bins
bin="${CARGO_HOME:-$HOME/.cargo}/bin"
echo "installed kplex, kubectl-ws, kubectl-workspace, kubectl-create-workspace, kubectl-kplex into $bin"
exec "$bin/kplex" start "$@"
