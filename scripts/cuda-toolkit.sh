#!/usr/bin/env bash
# A CUDA 13.0 toolkit from PyPI's NVIDIA wheels, for building march with
# `--features cuda` where no toolkit is installed (CI, a build machine
# without a GPU). No root, no GPU, no NVIDIA driver needed.
#
#   env=$(scripts/cuda-toolkit.sh) && eval "$env"   # installs once, prints the exports
#   cargo build --release --features cuda
#
# Installs into $MARCH_CUDA_HOME (default ${XDG_CACHE_HOME:-~/.cache}/march/cuda-13.0):
#   wheels/    the pinned wheels, checked against their sha256 (the cache)
#   toolkit/   nvcc, its headers, cuBLAS, cuRAND and NVRTC: what dfdx compiles
#              its kernels with (PTX, at build time) and march links with
#   standin/nvidia-smi
#              prints the compute capability $CUDA_COMPUTE_CAP (default 90:
#              H100/H200): dfdx's build script asks `nvidia-smi` for it and
#              panics where there is none, even with CUDA_COMPUTE_CAP set
#   stubs/libcuda.so, libcuda.so.1
#              the driver API, every function answering CUDA_ERROR_NO_DEVICE:
#              for linking, and for starting a CUDA build where no driver is
#              (LD_LIBRARY_PATH=$MARCH_CUDA_HOME/stubs; it then finds no GPU).
#              Never put it on LD_LIBRARY_PATH where a real driver is.
#
# stdout: only the `export` lines; progress goes to stderr. Exits non-zero,
# saying why, when a download or a checksum fails.
set -euo pipefail

# nvcc no newer than 13.0: PTX from a newer nvcc does not load on a 13.0
# driver (CUDA_ERROR_UNSUPPORTED_PTX_VERSION), and the H200 machines run 580.
WHEELS=(
  "nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
  "nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
  "nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
  "nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
  "nvidia-cuda-nvrtc==13.0.88 ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575"
  "nvidia-cublas==13.0.2.14 0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c"
  "nvidia-curand==10.4.0.35 1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc"
)

home=${MARCH_CUDA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/march/cuda-13.0}
cap=${CUDA_COMPUTE_CAP:-90}
here=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'cuda-toolkit: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# a new pin or a change to this script installs afresh
stamp=$( (printf '%s\n' "${WHEELS[@]}"; cat "$0") | sha256sum | cut -c1-16)
if [[ ! -f "$home/toolkit/.complete-$stamp" ]]; then
  command -v python3 > /dev/null || die "python3 (with pip) is needed to fetch the wheels"
  mkdir -p "$home/wheels"
  start=$SECONDS
  for entry in "${WHEELS[@]}"; do
    spec=${entry% *} sum=${entry#* }
    name=${spec%%==*} version=${spec#*==}
    file=$(ls "$home/wheels/${name//-/_}-$version-"*.whl 2> /dev/null | head -n 1 || true)
    if [[ -z "$file" ]]; then
      say "downloading $spec"
      # the wheels are py3-none-manylinux_x86_64: any CPython 3 on x86-64 Linux
      python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$home/wheels" "$spec" >&2 || die "pip could not download $spec"
      file=$(ls "$home/wheels/${name//-/_}-$version-"*.whl | head -n 1)
    fi
    if [[ "$sum" != "-" ]]; then
      got=$(sha256sum "$file" | cut -d' ' -f1)
      [[ "$got" == "$sum" ]] || { rm -f "$file"; die "$file: sha256 $got, expected $sum (removed; run again)"; }
    fi
  done
  say "unpacking into $home/toolkit"
  rm -rf "$home/toolkit.tmp"
  mkdir -p "$home/toolkit.tmp"
  for whl in "$home"/wheels/*.whl; do
    python3 - "$whl" "$home/toolkit.tmp" << 'EOF'
import os, stat, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
prefix = "nvidia/cu13/"
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):]
        if rel.startswith(".metadata/"):
            continue
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        mode = info.external_attr >> 16
        if mode & stat.S_IXUSR:
            os.chmod(out, 0o755)
EOF
  done
  # the linker wants the unversioned names cudarc asks for (-lcublas …)
  for lib in cublas cublasLt curand nvrtc; do
    so=$(cd "$home/toolkit.tmp/lib" && ls "lib$lib.so."* | sort | head -n 1)
    ln -sf "$so" "$home/toolkit.tmp/lib/lib$lib.so"
  done
  # the driver stub, from the driver API cudarc binds (every function it can call)
  lock_version=$(awk '/^name = "cudarc"/ {getline; print $3}' "$here/Cargo.lock" | tr -d '"')
  [[ -n "$lock_version" ]] || die "no cudarc in $here/Cargo.lock"
  sys_rs=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$lock_version"/src/driver/sys.rs 2> /dev/null | head -n 1 || true)
  if [[ -z "$sys_rs" ]]; then
    (cd "$here" && cargo fetch --quiet) >&2
    sys_rs=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$lock_version"/src/driver/sys.rs | head -n 1)
  fi
  mkdir -p "$home/toolkit.tmp/stubs"
  python3 - "$sys_rs" "$home/toolkit.tmp/stubs/cuda_stub.c" << 'EOF'
import re, sys
names = sorted(set(re.findall(r"pub fn (cu\w+)\(", open(sys.argv[1]).read())))
special = {"cuGetErrorString", "cuGetErrorName"}
with open(sys.argv[2], "w") as out:
    out.write("/* A stand-in for libcuda.so.1, generated by march's scripts/cuda-toolkit.sh:\n"
              "   every driver function answers CUDA_ERROR_NO_DEVICE (100). */\n")
    out.write('static const char *const NO_DEVICE = '
              '"march\'s stub libcuda.so: no NVIDIA driver on this machine";\n')
    for n in ("cuGetErrorString", "cuGetErrorName"):
        out.write(f"int {n}(int e, const char **s) {{ (void)e; *s = NO_DEVICE; return 0; }}\n")
    for n in names:
        if n not in special:
            out.write(f"int {n}(void) {{ return 100; }}\n")
print(f"cuda-toolkit: libcuda stub with {len(names)} functions", file=sys.stderr)
EOF
  gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$home/toolkit.tmp/stubs/libcuda.so.1" \
    "$home/toolkit.tmp/stubs/cuda_stub.c" || die "gcc could not build the libcuda stub"
  ln -sf libcuda.so.1 "$home/toolkit.tmp/stubs/libcuda.so"
  mkdir -p "$home/toolkit.tmp/standin"
  cat > "$home/toolkit.tmp/standin/nvidia-smi" << 'EOF'
#!/bin/sh
# march's stand-in for nvidia-smi on a machine without a GPU: dfdx's build
# script asks it for the compute capability to compile its kernels for.
case "$*" in
  *--query-gpu=compute_cap*) printf 'compute_cap\n%s\n' "$(echo "${CUDA_COMPUTE_CAP:-90}" | sed 's/^\(.*\)\(.\)$/\1.\2/')" ;;
  *) echo "nvidia-smi stand-in (march scripts/cuda-toolkit.sh): no GPU on this machine" >&2; exit 9 ;;
esac
EOF
  chmod +x "$home/toolkit.tmp/standin/nvidia-smi"
  touch "$home/toolkit.tmp/.complete-$stamp"
  rm -rf "$home/toolkit"
  mv "$home/toolkit.tmp" "$home/toolkit"
  say "installed in $((SECONDS - start)) s: $(du -sh "$home/toolkit" | cut -f1) in $home/toolkit"
fi

tk=$home/toolkit
"$tk/bin/nvcc" --version > /dev/null || die "$tk/bin/nvcc does not run"
standin=""
command -v nvidia-smi > /dev/null 2>&1 || standin="$tk/standin:"
cat << EOF
export MARCH_CUDA_HOME="$home"
export CUDA_ROOT="$tk"
export CUDA_PATH="$tk"
export CUDA_COMPUTE_CAP="$cap"
export PATH="$standin$tk/bin:\$PATH"
export LIBRARY_PATH="$tk/lib:$tk/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
EOF
