#!/usr/bin/env bash
# What one more variant costs to build, measured on this machine.
#
# In a scratch copy of the workspace (the project's target directory is
# reused for the registry crates), times the release rebuild of the variant
# library (`march-models`) three times: as it is, with N flag-only probe
# variants added (distinct names, the SmallBaseline model type), and with N
# shape-distinct ones (each its own dim_ff, hence its own model type).
# Prints the seconds per added variant of each kind.
#
#   scripts/build-cost.sh [N]      (default N = 4; ~8 minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-4}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# the project's target directory: the registry crates are built already
export CARGO_TARGET_DIR="$root/target"
export CARGO_INCREMENTAL=0
tar -C "$root" --exclude=./target --exclude=./.git -cf - . | tar -C "$scratch" -xf -
cd "$scratch"
lscpu | grep -m1 'Model name' || true

rebuild() {
  touch models/src/lib.rs
  local t0 t1
  t0=$(date +%s.%N)
  cargo build --release -p march-models --quiet
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

probes() { # $1: flag | shape
  {
    echo "//! Probe variants of scripts/build-cost.sh."
    echo "use crate::baseline::SmallBaseline;"
    for i in $(seq 1 "$n"); do
      if [ "$1" = flag ]; then
        echo "#[march_runtime::march_model(base = SmallBaseline, dropout = 0.0$i)]"
      else
        echo "#[march_runtime::march_model(base = SmallBaseline, dim_ff = $((512 + 8 * i)), budget_exempt = \"build-cost probe\")]"
      fi
      echo "pub struct BuildCostProbe$i;"
    done
  } > models/src/build_cost_probes.rs
  grep -q build_cost_probes models/src/lib.rs || echo "mod build_cost_probes;" >> models/src/lib.rs
}

echo "warming up (the workspace's own crates, once)…"
cargo build --release -p march-models --quiet
base=$(rebuild)
probes flag
flag=$(rebuild)
probes shape
shape=$(rebuild)
printf 'march-models release rebuild: %.1f s as it is, %.1f s with %d flag-only probes, %.1f s with %d shape-distinct probes\n' \
  "$base" "$flag" "$n" "$shape" "$n"
printf 'per added variant: flag-only %.2f s, shape-distinct %.2f s\n' \
  "$(echo "($flag - $base) / $n" | bc -l)" "$(echo "($shape - $base) / $n" | bc -l)"
