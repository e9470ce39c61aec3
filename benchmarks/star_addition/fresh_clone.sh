#!/usr/bin/env bash
# The README's contract with a newcomer, timed: a fresh clone of this repository's
# committed HEAD in a temp dir, a fresh virtualenv, then the README's two commands exactly
# as written, the main job first, then the tests. Prints each one's exit status, seconds
# (each one's install apart too), the main job's per-iteration lines and the tests'
# summary, then the install by pip alone in another fresh virtualenv, for comparison; with
# OUT_DIR set, also copies the main job's metrics.jsonl there.
#
#     bash benchmarks/star_addition/fresh_clone.sh | tee OUT_DIR/fresh-clone.txt
set -uo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
git clone -q "$repo" "$work/selftaught"
cd "$work/selftaught"
python3 -m venv "$work/venv" && . "$work/venv/bin/activate"
echo "clone: $work/selftaught at $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
installed=""
# the main command, the install's own seconds noted between its two halves
{ bash scripts/install.sh && installed=$(date +%s) && selftaught run; } > "$work/main.log" 2>&1
rc=$?
echo "main command: rc=$rc in $(( $(date +%s) - start )) s (its install ${installed:+$(( installed - start )) s})"
grep -a 'iteration\|Best' "$work/main.log" | tail -4
metrics=$(ls runs/*/metrics.jsonl 2>/dev/null | head -1)
if [ -n "${OUT_DIR:-}" ] && [ -n "$metrics" ]; then cp "$metrics" "$OUT_DIR/metrics.jsonl"; fi
start=$(date +%s)
installed=""
{ bash scripts/install.sh dev && installed=$(date +%s) && python3 -m pytest -q; } > "$work/tests.log" 2>&1
rc=$?
echo "tests: rc=$rc in $(( $(date +%s) - start )) s (its install ${installed:+$(( installed - start )) s})"
tail -n 1 "$work/tests.log"
# for comparison: the main command's install by pip alone, in a second fresh virtualenv
python3 -m venv "$work/venv-pip" && . "$work/venv-pip/bin/activate"
start=$(date +%s)
SELFTAUGHT_INSTALLER=pip bash scripts/install.sh > "$work/pip.log" 2>&1
echo "install by pip alone (SELFTAUGHT_INSTALLER=pip): rc=$? in $(( $(date +%s) - start )) s"
