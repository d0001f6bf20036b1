#!/usr/bin/env bash
# Installs the system packages the build and the tests need when they are
# missing: libclang (bindgen, for RocksDB's bindings), a C++ compiler, and
# python3 with a working venv module (the RPC client-compatibility test,
# rusty-cli/tests/it/rpc_compat.rs, installs real Python RPC clients into a
# virtual environment), and for the web UI's browser test
# (rusty-cli/tests/it/ui_browser.rs) Debian's Chromium and ChromeDriver, driven
# by Selenium from PyPI (nothing downloads a browser), and ffmpeg, which makes
# the clip and the live stream the test plays (and the transcoding ladder's
# test), aria2, the BitTorrent client `rusty-cli bench media` measures
# beside ours, iptables for the NAT lab test's routers, and npm for the
# bridge's Ethereum tests.
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

# `python3 -m venv` works: Debian ships the venv module but leaves out
# ensurepip (package python3-venv), so creating a venv is the only true
# test. The test's own venv answering is proof enough and saves the few
# seconds a throwaway one takes.
have_python3_venv() {
  command -v python3 >/dev/null 2>&1 || return 1
  local cached="${HOME:-/nonexistent}/.cache/rusty-coin/rpc-compat-venv/bin/python"
  if [ -x "$cached" ] && "$cached" -c 'import sys' >/dev/null 2>&1; then
    return 0
  fi
  local tmp ok=1
  tmp="$(mktemp -d)" || return 1
  if python3 -m venv "$tmp/venv" >/dev/null 2>&1 && [ -x "$tmp/venv/bin/python" ]; then
    ok=0
  fi
  rm -rf "$tmp"
  return "$ok"
}

missing=()
have_libclang || missing+=(libclang-dev)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
have_python3_venv || missing+=(python3-venv)
# The browser test starts exactly these paths (Debian's packages put them
# there; chromium's own launcher script is /usr/bin/chromium).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# The BitTorrent client `rusty-cli bench media` measures beside ours.
command -v aria2c >/dev/null 2>&1 || missing+=(aria2)
# The NAT lab test (rusty-cli/tests/it/nat_lab.rs) builds NAT routers in
# network namespaces with ip (iproute2) and iptables.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
[ -x /usr/sbin/iptables ] || missing+=(iptables)
# The bridge's Ethereum tests (rusty-cli/tests/it/bridge_eth.rs) install
# solc and hardhat, pinned, from npm (tests/eth/package-lock.json).
command -v npm >/dev/null 2>&1 || missing+=(npm)

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

if [[ " ${missing[*]} " == *" python3-venv "* ]] && ! have_python3_venv; then
  echo "error: installed python3-venv but \`python3 -m venv\` still fails" >&2
  exit 1
fi

for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  if [[ " ${missing[*]} " == *" chromium"* ]] && ! [ -x "$tool" ]; then
    echo "error: installed Debian's chromium packages but $tool is missing" >&2
    exit 1
  fi
done
