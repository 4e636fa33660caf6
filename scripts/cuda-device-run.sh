#!/usr/bin/env bash
# march on a GPU machine, from the bundle scripts/cuda-bundle.sh builds (this
# file is its run.sh). Needs an NVIDIA driver and CUDA 13's libcublas.so.13
# and libnvrtc.so.13; neither Rust nor network. Prints one summary at the end;
# exits non-zero if any stage failed.
#
#   run.sh             on the GPU machine: nvidia-smi, the CUDA tests,
#                      `march bench Baseline|SmallBaseline --device cuda`, and
#                      200 steps of SmallBaseline on CUDA against the CPU curve
#   run.sh --dry-run   anywhere (no GPU): checks the bundle — checksums,
#                      libraries, NVRTC's headers compiled against, the tests
#                      skip, the clean error on --device cuda — and runs the
#                      200 steps on the CPU against the same curve
#
# Stages have time limits, 7 minutes in all on an H200.
set -uo pipefail
cd "$(dirname "$0")"
dry=0
[[ ${1:-} == --dry-run ]] && dry=1
field() { sed -n "s/^$1: *//p" manifest.txt; }
results=()
failed=0
record() { # stage status detail
  results+=("$(printf '%-10s %-7s %s' "$1" "$2" "$3")")
  [[ $2 == FAIL ]] && failed=1
}
section() { printf '\n== %s\n' "$*"; }
start=$SECONDS

section "bundle"
if sha256sum --quiet -c SHA256SUMS; then
  record bundle ok "checksums of $(wc -l < SHA256SUMS) files; march $(field march), built $(field built | cut -d' ' -f1)"
else
  record bundle FAIL "checksums differ: the bundle is damaged"
fi

section "libraries"
# where a CUDA 13 runtime may be: the toolkit, pip's wheels (PyTorch's), the
# build machine's toolkit (--dry-run only, with its stub driver)
candidates=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib
  /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib
  /usr/lib/x86_64-linux-gnu)
for sp in /usr/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages \
  /usr/local/lib/python3*/site-packages "$HOME"/.local/lib/python3*/site-packages; do
  candidates+=("$sp"/nvidia/cu13/lib "$sp"/nvidia/cublas/lib "$sp"/nvidia/cuda_nvrtc/lib)
done
if ((dry)); then
  build_root=$(dirname "$(field baked_include)")
  candidates=("$build_root/lib" "$build_root/stubs" "${candidates[@]}")
fi
libpath=""
for d in "${candidates[@]}"; do
  [[ -d $d ]] && libpath="$libpath${libpath:+:}$d"
done
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd bin/march | awk '/not found/ {print $1}' | xargs)
if [[ -z $missing ]]; then
  record libraries ok "$(ldd bin/march | awk '/libcuda|libcublas|libnvrtc/ {print $3}' | xargs)"
else
  record libraries FAIL "not found: $missing (install CUDA 13's cuBLAS and NVRTC, or set LD_LIBRARY_PATH)"
fi

section "NVRTC headers"
# dfdx compiles five ops' kernels with NVRTC at run time, searching the two
# directories the build baked in: put the bundle's headers there
ok=1
for pair in "$(field baked_include):nvrtc/include" "$(field baked_out_dir):nvrtc/out"; do
  dest=${pair%%:*} src=${pair#*:}
  for f in "$src"/*; do
    t="$dest/$(basename "$f")"
    if [[ -f $t ]] && cmp -s "$f" "$t"; then continue; fi
    if ((dry)) && [[ -f $t ]]; then continue; fi # the build machine's own toolkit
    mkdir -p "$dest" && cp "$f" "$t" || { ok=0; echo "cannot write $t"; }
  done
done
nvrtc=$(ldconfig -p 2> /dev/null | awk '/libnvrtc.so.13 / {print $NF; exit}')
for d in ${LD_LIBRARY_PATH//:/ }; do
  [[ -z $nvrtc && -f $d/libnvrtc.so.13 ]] && nvrtc=$d/libnvrtc.so.13
done
compiled="not compiled (no python3 or no libnvrtc.so.13)"
if [[ -n $nvrtc ]] && command -v python3 > /dev/null; then
  # compile what dfdx's run-time kernels include, against the bundle's copies
  if python3 - "$nvrtc" nvrtc/include nvrtc/out "sm_$(field 'ptx target' | tr -dc 0-9)" << 'EOF'; then
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
src = b'#include "cuda_fp16.h"\n#include "cuda_utils.cuh"\nextern "C" __global__ void k(const __half *x, float *y, size_t n) { size_t i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = __half2float(x[i]); }\n'
prog = ctypes.c_void_p()
assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"check.cu", 0, None, None) == 0
opts = [b"--gpu-architecture=" + sys.argv[4].encode(), b"--include-path=" + sys.argv[2].encode(), b"--include-path=" + sys.argv[3].encode()]
r = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
n = ctypes.c_size_t(); lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
log = ctypes.create_string_buffer(n.value); lib.nvrtcGetProgramLog(prog, log)
if r != 0:
    print(log.value.decode()); sys.exit(1)
EOF
    compiled="a kernel including cuda_fp16.h and cuda_utils.cuh compiles with $nvrtc"
  else
    ok=0 compiled="NVRTC failed on the bundle's headers"
  fi
fi
if ((ok)); then record nvrtc ok "$compiled"; else record nvrtc FAIL "$compiled"; fi

section "nvidia-smi"
if ((dry)); then
  record gpu skipped "--dry-run"
elif timeout 20 nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader > gpu.txt 2>&1; then
  nvidia-smi
  record gpu ok "$(cat gpu.txt)"
else
  record gpu FAIL "nvidia-smi: $(head -c 200 gpu.txt)"
fi

section "CUDA tests"
timeout 180 bin/cuda-tests --test-threads 1 --nocapture > tests.log 2>&1
rc=$?
cat tests.log
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' tests.log)
skipped=$(grep -o 'skipped: no CUDA device' tests.log | wc -l)
if ((rc != 0)); then
  record tests FAIL "exit $rc: $(grep -m3 -E 'panicked|FAILED' tests.log | xargs)"
elif ((skipped > 0)); then
  if ((dry)); then record tests ok "$passed passed, $skipped of them skipped: no CUDA device (as expected here)"
  else record tests FAIL "$skipped skipped: no CUDA device on the GPU machine"; fi
else
  record tests ok "$passed passed on the GPU: $(grep -m1 'bitwise' tests.log | xargs)"
fi

section "march bench --device cuda"
for v in Baseline SmallBaseline; do
  if ((dry)); then
    bin/march bench "$v" --device cuda --steps 1 > "bench-$v.log" 2>&1
    rc=$?
    if ((rc == 1)) && grep -q "no CUDA device" "bench-$v.log"; then
      record "bench $v" ok "refused with: $(grep -m1 'error' "bench-$v.log" | cut -c1-120)"
    else
      record "bench $v" FAIL "exit $rc without the no-device error: $(tail -n 2 "bench-$v.log" | xargs)"
    fi
  elif timeout 150 bin/march bench "$v" --device cuda --steps 10 --warmup 3 > "bench-$v.log" 2>&1; then
    cat "bench-$v.log"
    record "bench $v" ok "$(grep -E 'ms/step|tokens/s|MFU' "bench-$v.log" | sed 's/  */ /g' | cut -c1-160 | paste -sd';')"
  else
    cat "bench-$v.log"
    record "bench $v" FAIL "$(tail -n 3 "bench-$v.log" | xargs)"
  fi
done

section "200 steps of SmallBaseline against the CPU curve"
device=cuda
((dry)) && device=cpu
rm -rf run cache
MARCH_CACHE=cache timeout 240 bin/march train SmallBaseline --steps 200 --device "$device" \
  --out run --quiet > train.log 2>&1
rc=$?
tail -n 3 train.log
if ((rc != 0)); then
  record train FAIL "exit $rc: $(tail -n 2 train.log | xargs)"
elif ! command -v python3 > /dev/null; then
  record train ok "trained on $device; no python3 to compare the curves"
else
  detail=$(python3 - cpu-curve/metrics.jsonl run/metrics.jsonl << 'EOF'
import json, sys
def read(p):
    tr, ev = {}, {}
    for line in open(p):
        r = json.loads(line)
        if r["kind"] == "train": tr[r["step"]] = r["loss"]
        elif r["kind"] == "eval": ev[r["step"]] = r["val_loss"]
    return tr, ev
(ct, ce), (gt, ge) = read(sys.argv[1]), read(sys.argv[2])
steps = sorted(set(ct) & set(gt))
rel = [abs(gt[s] - ct[s]) / abs(ct[s]) for s in steps]
first = next((s for s, r in zip(steps, rel) if r > 0), None)
last = max(set(ce) & set(ge))
dv = abs(ge[last] - ce[last]) / ce[last]
ok = len(steps) == 200 and dv < 0.01
print(("ok" if ok else "FAIL"), f"{len(steps)} steps; train loss max rel. diff {max(rel):.2e}, step 1 {rel[0]:.2e}, first differing step {first}; val at step {last}: {ge[last]:.4f} here, {ce[last]:.4f} on the CPU (rel. {dv:.2e}; must be < 1e-2)")
EOF
)
  record train "${detail%% *}" "on $device: ${detail#* }"
fi

section "summary ($((SECONDS - start)) s$( ((dry)) && echo ', --dry-run'))"
printf '%s\n' "${results[@]}" | tee summary.txt
# the device tool brings back what is under $OUT
if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
  cp summary.txt ./*.log "$OUT"/ 2> /dev/null
  [[ -f gpu.txt ]] && cp gpu.txt "$OUT"/
  [[ -f run/metrics.jsonl ]] && cp run/metrics.jsonl "$OUT"/cuda-metrics.jsonl
fi
exit $failed
