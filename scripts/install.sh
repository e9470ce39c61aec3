#!/usr/bin/env bash
# Install selftaught (editable) into the current Python environment.
#   bash scripts/install.sh          the package
#   bash scripts/install.sh dev      and the test tools
# A Python that already has torch keeps it (a GPU build stays a GPU build). One without
# torch gets the CPU build first: left to pip, the `torch` dependency would pull a
# multi-GB CUDA build. Set TORCH_SPEC to choose another, e.g. TORCH_SPEC="torch==2.9.1".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=${1:+[$1]}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".${extras}"
