#!/usr/bin/env bash
# Before/after gate for a refactor: `kplex-bench api` and `kplex-bench workspaces`, run
# alternately on two builds in one sitting, five times each, so the machine's drift hits both
# sides alike. Usage:
#   scripts/bench-gate.sh <before-kplex-bench-or-kplex> <after-kplex-bench> [runs]
# A `kplex` built before the benchmarks moved out (commit 7594c8b and older) runs them as
# `kplex bench …`; pass that binary as "before" and it is called that way.
set -euo pipefail
before=$1 after=$2 runs=${3:-5}
bench() { # <binary> <what>
  case "$(basename "$1")" in
    kplex) "$1" bench "$2" 2>/dev/null ;;
    *) "$1" "$2" 2>/dev/null ;;
  esac
}
for i in $(seq "$runs"); do
  echo "=== api before $i"; bench "$before" api | grep -E "^(GET one|CREATE|ready)"
  echo "=== api after $i"; bench "$after" api | grep -E "^(GET one|CREATE|ready)"
done
for i in $(seq "$runs"); do
  echo "=== ws before $i"; bench "$before" workspaces
  echo "=== ws after $i"; bench "$after" workspaces
done
