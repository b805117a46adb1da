#!/usr/bin/env bash
# `make ci-up`: starts `tollgate dev` in the background for a CI job (data in .tollgate/,
# or TOLLGATE_DATA_DIR), waits until its addresses are written, and puts `tollgate` on
# the job's PATH (GitHub Actions' $GITHUB_PATH); later steps' `tollgate` commands find
# the stack by themselves.
set -euo pipefail
bin="${TOLLGATE_BIN:?set TOLLGATE_BIN to the tollgate binary}"
dir="${TOLLGATE_DATA_DIR:-.tollgate}"
mkdir -p "$dir"
if [ -n "${GITHUB_PATH:-}" ]; then dirname "$bin" >>"$GITHUB_PATH"; fi
nohup "$bin" dev --data-dir "$dir" >"$dir/dev.out" 2>&1 &
for _ in $(seq 600); do
  [ -f "$dir/dev.json" ] && { cat "$dir/dev.out"; exit 0; }
  sleep 0.1
done
echo "tollgate dev did not start:" >&2
cat "$dir/dev.out" >&2
exit 2
