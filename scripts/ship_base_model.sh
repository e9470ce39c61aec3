#!/usr/bin/env bash
# Retrain the default config's base model M from scratch (about 11 minutes on 2 CPU cores)
# and ship it in the package (selftaught/models/builtin/<key>/), replacing the one there.
# Run it when the default config's base recipe changes; tests/models/test_base_model.py
# says when that has happened.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
path=$(SELFTAUGHT_CACHE="$cache" selftaught base --from-scratch)
rm -rf selftaught/models/builtin
mkdir -p selftaught/models/builtin
cp -r "$path" selftaught/models/builtin/
echo "shipped: selftaught/models/builtin/$(basename "$path")"
