#!/usr/bin/env bash
# A step of deploy/github/ml-ci.yml as a GitHub Actions runner runs it: the GITHUB_*
# variables set, a job summary file, `tollgate` on PATH (what the setup-tollgate action
# adds to $GITHUB_PATH), and the step's own `run:` line taken from the template.
# Usage: workflow-step.sh SUMMARY_FILE SPEC DATASET   (TOLLGATE_BIN names the CLI)
set -uo pipefail
template="$(dirname "$0")/../../deploy/github/ml-ci.yml"
export GITHUB_ACTIONS=true GITHUB_SHA=0123abcd GITHUB_REF=refs/pull/7/merge GITHUB_ACTOR=octocat
export GITHUB_SERVER_URL=https://github.example GITHUB_REPOSITORY=acme/churn GITHUB_RUN_ID=42
export GITHUB_STEP_SUMMARY="$1" MODEL_SPEC="$2" MODEL_DATASET="$3"
export PATH="$(dirname "${TOLLGATE_BIN:?set TOLLGATE_BIN}"):$PATH"
step=$(grep -m1 -A1 'name: The model through the pipeline' "$template" | sed -n 's/^ *run: //p')
[ -n "$step" ] || { echo "no model step in $template" >&2; exit 2; }
eval "$step"
