#!/usr/bin/env bash
# Installs everything the build, the tests and the benchmarks need. Idempotent: a second run
# checks and returns in well under a second. Run as root on Debian 12 (bookworm).
#
#   scripts/install-deps.sh          # system packages + the oracle venv (.venv)
#   scripts/install-deps.sh --system # system packages only
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config clang
  libutf8proc-dev      # Unicode categories, NFD, case mapping
  libcjson-dev         # JSON parsing (config.json, tokenizer.json, requests)
  zlib1g-dev           # reading gzip-compressed data sets
  libcmocka-dev        # C unit-test framework
  libmicrohttpd-dev    # the HTTP server of `distilbert serve`
  libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for clang (make fuzz)
  libopenblas-dev      # benchmarks only: the sgemm they compare ours with (the library does not link it)
  python3-torch python3-venv python3-pip python3-numpy  # the oracle's torch (1.13)
  python3-scipy python3-sklearn python3-pil            # metrics references, sentence-transformers
  libgoogle-perftools4 # tcmalloc, preloaded into the PyTorch peer of the model benchmark
  libopenmpi-dev openmpi-bin  # data-parallel training (mpirun -np N distilbert finetune|distill|pretrain)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--system" ] && exit 0

# The oracle: a venv on Debian's python3 that sees Debian's torch and adds pinned PyPI packages.
VENV=.venv
REQ=scripts/requirements-oracle.txt
NODEPS=scripts/requirements-nodeps.txt
STAMP="$VENV/.installed-$(cat "$REQ" "$NODEPS" scripts/pip-build-constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "install-deps: creating the oracle venv in $VENV"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$VENV"
  PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
  "${PIP[@]}" -r "$REQ"
  PIP_CONSTRAINT="$PWD/scripts/pip-build-constraints.txt" "${PIP[@]}" --no-deps -r "$NODEPS"
  # The oracle must run on Debian's torch: refuse a venv where PyPI's torch shadows it.
  "$VENV/bin/python" -c "
import torch, transformers, tokenizers, sentence_transformers
assert torch.__file__.startswith('/usr/lib/python3/'), 'a PyPI torch shadows Debian python3-torch: ' + torch.__file__
" 
  rm -f "$VENV"/.installed-*
  touch "$STAMP"
fi
