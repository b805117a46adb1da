#!/usr/bin/env bash
# `make demo`: a local nats-server with JetStream, the six services as separate processes,
# a local comparison of candidate algorithms, then three runs of the churn model: one that
# reaches Staging, one on dirty data that fails validation, one whose gate it cannot meet.
# Ctrl-C or the end stops everything.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
nats_server="${TOLLGATE_NATS_SERVER:-$root/.tools/venv/bin/nats-server}"
work="$root/.demo"
rows="${DEMO_ROWS:-20000}"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work"; mkdir -p "$work/logs" "$work/nats"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  wait 2>/dev/null
  echo; echo "stopped nats-server and the six services (logs in .demo/logs/)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nats_port=$(free_port); grpc_port=$(free_port)
export TOLLGATE_NATS_URL="nats://127.0.0.1:$nats_port"
export TOLLGATE_GRPC_ADDR="127.0.0.1:$grpc_port"
export TOLLGATE_REGISTRY_URL="http://127.0.0.1:$grpc_port"
export TOLLGATE_CACHE_DIR="$work/cache"

say "starting nats-server (JetStream) on 127.0.0.1:$nats_port"
"$nats_server" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/logs/nats-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break; sleep 0.1; done

say "starting the six services as separate processes"
for svc in registry trigger-watcher data-validator trainer gate promoter; do
  "$bin/tollgate-$svc" >"$work/logs/$svc.log" 2>&1 &
  pids+=($!)
  echo "  tollgate-$svc (pid $!)"
done

tg() { "$bin/tollgate" "$@"; }

say "generating $rows rows of sample churn data and pushing them into the object store"
tg data generate --rows "$rows" --out "$work/churn.parquet" || exit 2
uri=$(tg data push "$work/churn.parquet" --name "churn-$(date +%Y%m%d).parquet") || exit 2
echo "pushed: $uri"

say "0. locally, without NATS: which algorithm? tollgate train compares the spec's candidates"
tg train "$work/churn.parquet" --spec examples/churn/candidates.yaml || exit 2

say "1. a data change: validate → train → gate → promote to Staging"
tg publish data --spec examples/churn/tollgate.yaml --dataset "$uri" --wait --timeout 300

say "   the Staging version is integration-tested, then approval for Production is requested"
for _ in $(seq 100); do tg runs 2>/dev/null | grep -q "approval passed" && break; sleep 0.2; done
tg runs --limit 1

say "   alice (an approver in the spec) approves: the promoter moves v1 to Production"
tg approve churn 1 --reason "demo: metrics look good" --as alice
for _ in $(seq 100); do tg models --stage Production 2>/dev/null | grep -q " v1 " && break; sleep 0.2; done
tg models show churn

say "2. a dirty dataset (null customer ids, ages outside 0..120): fails at validation"
tg data generate --rows "$rows" --seed 7 --dirty --out "$work/dirty.parquet" >/dev/null
tg publish data --spec examples/churn/tollgate.yaml --dataset "$work/dirty.parquet" --wait --timeout 300

say "3. a spec whose gate the model cannot meet (AUC-ROC >= 0.99): blocked at the gate"
sed 's/auc_roc: {min: 0.80}/auc_roc: {min: 0.99}/' examples/churn/tollgate.yaml >"$work/strict.yaml"
tg publish data --spec "$work/strict.yaml" --dataset "$uri" --wait --timeout 300

say "the registry's model versions"
tg models
say "the runs"
tg runs
