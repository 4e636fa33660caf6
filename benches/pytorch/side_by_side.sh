#!/usr/bin/env bash
# march vs PyTorch eager, alternated rounds on the same machine: the
# seed-scale Baseline at batch 8 and SmallBaseline at batch 16, lengths
# 230/52, in f32; and the Baseline with bf16 matrix products (march
# --matmul bf16 on AMX or AVX-512 BF16, PyTorch bf16 autocast; with
# COMPILE=1 also torch.compile + bf16 autocast). One line per run; the
# medians go in the README.
#
#   PYTHON=/path/to/venv/bin/python bash benches/pytorch/side_by_side.sh [ROUNDS]
#
# PYTHON: an interpreter with `torch` installed (a scratch virtual
# environment; torch is not a march dependency). Threads: the machine's
# cores, for both (RAYON_NUM_THREADS, --threads). COMPILE=1 adds
# torch.compile f32 rows (inductor: needs a C compiler; the first warm-up
# steps compile, so those runs take minutes). BF16: see below. ISA=avx2
# runs both sides on their AVX2 + FMA code on an AVX-512 CPU: march with
# --loops avx2 --gemm fma, PyTorch with ATEN_CPU_CAPABILITY=avx2 (its own
# kernels and inductor's code), MKL_ENABLE_INSTRUCTIONS=AVX2 and
# ONEDNN_MAX_CPU_ISA=AVX2, and no bf16 rows (what an AMD Zen 3 runs, on
# another core: a proxy for the code, not for that CPU).
set -uo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
python=${PYTHON:-python3}
threads=$(nproc)
cargo build --release --quiet || exit 1
march_isa=()
if [ "${ISA:-}" = avx2 ]; then
    march_isa=(--loops avx2 --gemm fma)
    export ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
    BF16=0
elif [ -n "${ISA:-}" ]; then
    echo "ISA=${ISA}: only ISA=avx2 is known" >&2
    exit 2
fi

march() { # LABEL ARGS...
    printf '%-28s' "march   $1"
    shift
    local out
    if out=$(RAYON_NUM_THREADS=$threads target/release/march bench "$@" ${march_isa[@]+"${march_isa[@]}"} 2>&1); then
        grep -E "ms/step|phases" <<<"$out" | tr -s ' ' | tr '\n' ' '
        echo
        if [ -z "${machine_shown:-}" ]; then # where march's figures come from, once
            grep -E "^ *machine" <<<"$out" | tr -s ' ' | sed 's/^ /  march /'
            machine_shown=1
        fi
    else
        tail -1 <<<"$out"
    fi
}
torch() { # LABEL ARGS...
    printf '%-28s' "PyTorch $1"
    shift
    "$python" benches/pytorch/baseline_step.py --threads "$threads" "$@" 2>/dev/null | tail -1
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $threads thread(s)"
"$python" -c 'import torch; print("PyTorch", torch.__version__, "CPU capability", torch.backends.cpu.get_cpu_capability())' 2>/dev/null
# bf16 rows where the CPU has AMX or AVX-512 BF16 (march refuses bf16
# elsewhere, and PyTorch's bf16 autocast without hardware bf16 takes ~74 s
# a step on a 2-core Zen 3); BF16=1 forces them, BF16=0 drops them
if grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo 2>/dev/null; then bf16=${BF16:-1}; else bf16=${BF16:-0}; fi
for r in $(seq 1 "$rounds"); do
    echo "== round $r"
    march "Baseline f32" Baseline --steps 8 --warmup 2
    torch "Baseline f32" --steps 8
    march "SmallBaseline f32" SmallBaseline --batch 16 --steps 10 --warmup 2
    torch "SmallBaseline f32" --small --batch 16 --steps 10
    if [ "${COMPILE:-0}" = 1 ]; then
        torch "Baseline compile f32" --compile --steps 8 --warmup 3
        torch "SmallBaseline compile f32" --compile --small --batch 16 --steps 10 --warmup 3
    fi
    if [ "$bf16" = 1 ]; then
        march "Baseline bf16" Baseline --matmul bf16 --steps 8 --warmup 2
        torch "Baseline bf16" --bf16 --steps 8
        if [ "${COMPILE:-0}" = 1 ]; then
            torch "Baseline compile bf16" --compile --bf16 --steps 8 --warmup 3
        fi
    fi
done
