#!/usr/bin/env bash
# Builds and runs kplex with the embedded store (no other service needed). Installs the one
# build tool a fresh Debian machine lacks (protoc, for the etcd client), then starts.
# Extra arguments go to `kplex start` (e.g. --secure-port 7443, --etcd-servers URL).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v protoc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq protobuf-compiler >/dev/null
fi
exec cargo run --release --quiet -- start "$@"
