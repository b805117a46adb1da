#!/usr/bin/env bash
# `make ci-up`: starts `tollgate dev` in the background for a CI job (data in .tollgate/,
# or TOLLGATE_DATA_DIR), waits until its addresses are written, and puts `tollgate` on
# the job's PATH (GitHub Actions' $GITHUB_PATH); later steps' `tollgate` commands find
# the stack by themselves. With MODEL_SPEC set, it applies the model's policy first: the
# spec as the pull request's base branch has it (GITHUB_BASE_REF), so the pull request's
# own spec is judged as a proposal against it; outside a pull request, the spec as
# checked out.
set -euo pipefail
bin="${TOLLGATE_BIN:?set TOLLGATE_BIN to the tollgate binary}"
dir="${TOLLGATE_DATA_DIR:-.tollgate}"
mkdir -p "$dir"
if [ -n "${GITHUB_PATH:-}" ]; then dirname "$bin" >>"$GITHUB_PATH"; fi
nohup "$bin" dev --data-dir "$dir" >"$dir/dev.out" 2>&1 &
up=""
for _ in $(seq 600); do
  [ -f "$dir/dev.json" ] && { up=1; break; }
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "tollgate dev did not start:" >&2
  cat "$dir/dev.out" >&2
  exit 2
fi
cat "$dir/dev.out"
export TOLLGATE_DATA_DIR="$dir"
if [ -n "${MODEL_SPEC:-}" ] && [ -f "$MODEL_SPEC" ]; then
  policy="$MODEL_SPEC"
  if [ -n "${GITHUB_BASE_REF:-}" ]; then
    base="$(dirname "$MODEL_SPEC")/.tollgate-base-policy.yaml"
    git fetch --quiet --depth 1 origin "$GITHUB_BASE_REF" 2>/dev/null || true
    if git show "origin/$GITHUB_BASE_REF:$MODEL_SPEC" >"$base" 2>/dev/null; then
      policy="$base"
    fi
  fi
  "$bin" apply "$policy"
fi
