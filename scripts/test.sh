#!/usr/bin/env bash
# The whole test suite: unit tests, the store conformance suite on the embedded store and on a
# real etcd, crash cycles, and the end-to-end tests with real kplex and kubectl processes.
# Installs what a fresh Debian machine lacks (protoc for etcd-client, etcd-server, curl,
# python3-kubernetes), then runs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The Python client test runs Debian's interpreter with Debian's kubernetes package.
/usr/bin/python3 -c 'import kubernetes' >/dev/null 2>&1 || need_apt+=(python3-kubernetes)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need_apt[*]} …"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "installing cargo-nextest …"
  cargo install cargo-nextest --locked
fi

cargo nextest run --workspace --no-fail-fast "$@"
