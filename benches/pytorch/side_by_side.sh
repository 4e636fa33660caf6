#!/usr/bin/env bash
# march vs PyTorch eager f32, alternated rounds on the same machine: the
# seed-scale Baseline at batch 8 and SmallBaseline at batch 16, lengths
# 230/52. Prints one line per run; the medians go in the README.
#
#   PYTHON=/path/to/venv/bin/python bash benches/pytorch/side_by_side.sh [ROUNDS]
#
# PYTHON: an interpreter with `torch` installed (a scratch virtual
# environment; torch is not a march dependency). Threads: RAYON_NUM_THREADS
# for march, --threads for PyTorch, both the machine's cores by default.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
python=${PYTHON:-python3}
threads=$(nproc)
cargo build --release --quiet
march=target/release/march
for r in $(seq 1 "$rounds"); do
    echo "== round $r"
    printf 'march   Baseline      '
    RAYON_NUM_THREADS=$threads $march bench Baseline --steps 8 --warmup 2 2>/dev/null | grep -E "ms/step|phases" | tr -s ' ' | tr '\n' ' '
    echo
    printf 'PyTorch Baseline      '
    "$python" benches/pytorch/baseline_step.py --threads "$threads" --steps 8 2>/dev/null | tail -1
    printf 'march   SmallBaseline '
    RAYON_NUM_THREADS=$threads $march bench SmallBaseline --batch 16 --steps 10 --warmup 2 2>/dev/null | grep -E "ms/step|phases" | tr -s ' ' | tr '\n' ' '
    echo
    printf 'PyTorch SmallBaseline '
    "$python" benches/pytorch/baseline_step.py --threads "$threads" --small --batch 16 --steps 10 2>/dev/null | tail -1
done
