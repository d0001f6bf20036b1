#!/usr/bin/env bash
# Installs the system packages the build needs when they are missing:
# libclang (bindgen, for RocksDB's bindings) and a C++ compiler.
#
# The libclang check looks for exactly what bindgen's clang-sys loads:
# `libclang.so`, `libclang.so.N`, `libclang-N.so` or `libclang-N.so.M`, in the
# directories clang-sys searches. `libclang-cpp.so.N` (the C++ interface that
# comes with LLVM on many images) is a different library and does not count.
set -euo pipefail

libclang_dirs=(/usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu
  /usr/lib64 /usr/lib /usr/local/lib)
if [ -n "${LIBCLANG_PATH:-}" ]; then libclang_dirs=("$LIBCLANG_PATH" "${libclang_dirs[@]}"); fi

have_libclang() {
  local dir name
  for dir in "${libclang_dirs[@]}"; do
    [ -d "$dir" ] || continue
    for name in "$dir"/libclang*.so*; do
      [ -e "$name" ] || continue
      if [[ "$(basename "$name")" =~ ^libclang(-[0-9]+(\.[0-9]+)*)?\.so(\.[0-9]+)*$ ]]; then
        return 0
      fi
    done
  done
  return 1
}

missing=()
have_libclang || missing+=(libclang-dev)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing system packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "error: need root (or sudo) to install ${missing[*]}; install them and re-run" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

if [[ " ${missing[*]} " == *" libclang-dev "* ]] && ! have_libclang; then
  echo "error: installed libclang-dev but found no libclang.so that bindgen can load" >&2
  exit 1
fi
