#!/usr/bin/env bash
# Builds, on this machine, a self-contained bundle that proves march on a GPU
# machine with an NVIDIA driver and CUDA 13 libraries (cuBLAS, NVRTC) but
# neither Rust nor network:
#
#   scripts/cuda-bundle.sh                   # -> target/cuda-bundle/
#   target/cuda-bundle/run.sh --dry-run      # checks the bundle here, no GPU
#   target/cuda-bundle/run.sh                # on the GPU machine
#
# The bundle holds:
#   bin/march, bin/cuda-tests   the release binaries built with --features cuda
#                               (debug info stripped), linked against
#                               libcuda.so.1, libcublas.so.13, libnvrtc.so.13
#   nvrtc/include, nvrtc/out    what NVRTC reads at run time from two paths
#                               baked into the binaries at build time (dfdx
#                               compiles five ops' kernels when first used);
#                               run.sh puts them back at those paths
#   cpu-curve/                  this machine's 200-step SmallBaseline run
#                               (metrics, summary), which the GPU run is
#                               checked against
#   manifest.txt, SHA256SUMS    versions, the baked paths, checksums
#   run.sh                      scripts/cuda-device-run.sh
#
# Uses the CUDA toolkit in CUDA_ROOT if nvcc is on PATH, else installs one
# with scripts/cuda-toolkit.sh. CUDA_COMPUTE_CAP (default 90) picks the PTX
# target.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
say() { printf 'cuda-bundle: %s\n' "$*" >&2; }

if ! command -v nvcc > /dev/null 2>&1 || [[ -z "${CUDA_ROOT:-}" ]]; then
  cuda_env=$(scripts/cuda-toolkit.sh)
  eval "$cuda_env"
fi
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
out=target/cuda-bundle
rm -rf "$out"
mkdir -p "$out/bin" "$out/nvrtc/include" "$out/nvrtc/out" "$out/cpu-curve"

say "building march and the CUDA tests (release, --features cuda, sm_$CUDA_COMPUTE_CAP)"
# one cargo invocation builds both (a second, with other features unified,
# would rebuild the dependencies); its messages name the test binary and
# dfdx's OUT_DIR
cargo test --release --features cuda --test cuda --no-run --message-format=json > "$out/.cargo.json"
read -r tests out_dir < <(python3 - "$out/.cargo.json" << 'EOF'
import json, sys
exe = out = ""
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        exe = m["executable"]
    if m.get("reason") == "build-script-executed" and "dfdx" in m["package_id"]:
        out = m["out_dir"]
print(exe, out)
EOF
)
rm "$out/.cargo.json"
[[ -x "$tests" ]] || { say "error: no CUDA test binary was built"; exit 1; }
build_s=$((SECONDS - start))

strip --strip-debug -o "$out/bin/march" target/release/march
strip --strip-debug -o "$out/bin/cuda-tests" "$tests"

# the two directories NVRTC is told to search, baked into the binary
grep -aqF "$out_dir" target/release/march ||
  { say "error: the binary does not name dfdx's OUT_DIR $out_dir"; exit 1; }
# dfdx's build script takes the first of CUDA_PATH, CUDA_ROOT, … with include/cuda.h
include_dir=${CUDA_PATH:-$CUDA_ROOT}/include
grep -aqF "$include_dir" target/release/march ||
  { say "error: the binary does not name $include_dir (built with another toolkit?)"; exit 1; }
[[ -f "$out_dir/cuda_utils.cuh" ]] || { say "error: dfdx's OUT_DIR $out_dir has no cuda_utils.cuh"; exit 1; }
[[ -f "$include_dir/cuda_fp16.h" ]] || { say "error: $include_dir has no cuda_fp16.h"; exit 1; }
# NVRTC needs only these of the toolkit's headers (its own built-ins cover
# the rest: run.sh --dry-run compiles against the bundle's copies to check)
cp "$include_dir"/cuda_fp16.h "$include_dir"/cuda_fp16.hpp "$out/nvrtc/include/"
cp "$out_dir"/*.cuh "$out/nvrtc/out/"

say "the CPU curve: 200 steps of SmallBaseline on this machine"
export LD_LIBRARY_PATH="$CUDA_ROOT/lib:$MARCH_CUDA_HOME/toolkit/stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
MARCH_CACHE="$scratch/cache" "$out/bin/march" train SmallBaseline --steps 200 --device cpu \
  --out "$scratch/run" --quiet > "$scratch/train.log" 2>&1 ||
  { cat "$scratch/train.log" >&2; exit 1; }
cp "$scratch/run/metrics.jsonl" "$scratch/run/summary.json" "$scratch/run/config.json" "$out/cpu-curve/"
cp scripts/cuda-device-run.sh "$out/run.sh"
chmod +x "$out/run.sh"

{
  echo "march CUDA bundle"
  echo "built:          $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo "march:          $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet 2> /dev/null || echo ' (with uncommitted changes)')"
  echo "rustc:          $(rustc -V)"
  echo "nvcc:           $(nvcc --version | tail -n 1)"
  echo "ptx target:     sm_$CUDA_COMPUTE_CAP"
  echo "needs:          $(readelf -d "$out/bin/march" | awk '/NEEDED/ {gsub(/[][]/, "", $5); printf "%s ", $5}')"
  echo "baked_include:  $include_dir"
  echo "baked_out_dir:  $out_dir"
  echo "cpu_curve_cpu:  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "build_seconds:  $build_s"
} > "$out/manifest.txt"
size=$(du -sb "$out" | cut -f1)
echo "bundle_bytes:   $size" >> "$out/manifest.txt"
(cd "$out" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
say "done in $((SECONDS - start)) s (build $build_s s): $out, $((size / 1048576)) MiB"
cat "$out/manifest.txt" >&2
