#!/usr/bin/env bash
# `make demo`: `tollgate dev` (a local nats-server with JetStream, the six services and the
# model server), a local comparison of candidate algorithms, then the runs of the churn
# model: one that reaches Staging and is approved to Production (and then answers on the
# model server, whose answers then get their labels and live metrics), one on dirty data
# that fails validation,
# one whose gate it cannot meet, one that new data landing in a bucket (moto's S3 server
# stands in for S3) starts by itself, and a model trained by our own code (examples/sklearn: train.py exports a
# scikit-learn pipeline to ONNX, pytest gates it). Ctrl-C or the end stops everything.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
work="$root/.demo"
rows="${DEMO_ROWS:-20000}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$work"; mkdir -p "$work/logs"
# Every `tollgate` command below finds the dev stack through its data directory.
export TOLLGATE_DATA_DIR="$work/dev"
dev_pid=""
s3_pid=""
cleanup() {
  if [ -n "$dev_pid" ]; then kill -INT "$dev_pid" 2>/dev/null; wait "$dev_pid" 2>/dev/null; fi
  if [ -n "$s3_pid" ]; then kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null; fi
  echo; echo "stopped tollgate dev (logs in .demo/dev/logs/ and .demo/logs/dev.log)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A bucket for step 4: moto's S3-compatible server (from `make tools`) on a free port; the
# stack reads it with the standard AWS variables, as it would read S3 or MinIO.
s3_port=$("$root/.tools/venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/.tools/venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$work/logs/s3.log" 2>&1 &
s3_pid=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1

say "starting tollgate dev: nats-server (JetStream), the six services and the model server, data in .demo/dev"
"$bin/tollgate" dev --data-buckets s3://churn-data >"$work/logs/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 600); do
  [ -f "$TOLLGATE_DATA_DIR/dev.json" ] && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$work/logs/dev.log"; exit 2; }
  sleep 0.1
done
[ -f "$TOLLGATE_DATA_DIR/dev.json" ] || { echo "tollgate dev did not start"; cat "$work/logs/dev.log"; exit 2; }
cat "$work/logs/dev.log"

tg() { "$bin/tollgate" "$@"; }

say "an admin applies the two models' specs: their approvers, gates and plans are the policy from now on"
# A spec a trigger carries (a pull request's) may only propose changes to the policy; the
# CLI finds the dev stack's admin token in its data directory.
tg apply examples/churn/tollgate.yaml || exit 2
tg apply examples/sklearn/tollgate.yaml || exit 2

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

say "   alice (an approver in the spec) gets a registry token and approves: the promoter moves v1 to Production"
# The registry checks tokens: the approval is recorded under the token's identity.
alice=$(tg token create --identity alice --role approver) || exit 2
TOLLGATE_TOKEN="$alice" tg approve churn 1 --reason "demo: metrics look good"
for _ in $(seq 100); do tg models --stage Production 2>/dev/null | grep -q " v1 " && break; sleep 0.2; done
tg models show churn

say "   the model server (Open Inference Protocol) now answers with the Production version"
python3 - <<'PY' || exit 2
import json, os, time, urllib.request
server = json.load(open(os.path.join(os.environ["TOLLGATE_DATA_DIR"], "dev.json")))["server_url"]
record = {"age": 41, "tenure_months": 3, "monthly_charges": 80.5, "total_charges": 241.5,
          "support_calls": 4, "contract": "month-to-month", "payment_method": "electronic-check"}
body = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
                    "data": [v]} for k, v in record.items()]}
for _ in range(100):
    try:
        with urllib.request.urlopen(f"{server}/v2/models/churn/versions/1/ready") as r:
            break
    except OSError:
        time.sleep(0.2)
request = urllib.request.Request(f"{server}/v2/models/churn/infer", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
with urllib.request.urlopen(request) as r:
    answer = json.load(r)
out = {o["name"]: o["data"][0] for o in answer["outputs"]}
print(f"POST {server}/v2/models/churn/infer {json.dumps(record)}")
print(f"  -> v{answer['model_version']}: probability {out['probability']:.3f}, prediction {out['prediction']}")
PY

say "   outcomes arrive later: 300 answers get their labels, and v1's live metrics follow"
python3 - "$work/labels.csv" <<'PY' || exit 2
import json, os, random, sys, urllib.request
server = json.load(open(os.path.join(os.environ["TOLLGATE_DATA_DIR"], "dev.json")))["server_url"]
rng = random.Random(3)
rows = ["id,label"]
for i in range(300):
    record = {"age": rng.randint(18, 80), "tenure_months": rng.randint(0, 72),
              "monthly_charges": rng.uniform(20, 120), "total_charges": rng.uniform(20, 8000),
              "support_calls": rng.randint(0, 9),
              "contract": rng.choice(["month-to-month", "one-year", "two-year"]),
              "payment_method": rng.choice(["electronic-check", "credit-card", "bank-transfer"])}
    body = {"id": f"demo-{i}", "inputs": [{"name": k, "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]} for k, v in record.items()]}
    request = urllib.request.Request(f"{server}/v2/models/churn/infer", json.dumps(body).encode(),
                                     {"content-type": "application/json"})
    with urllib.request.urlopen(request) as r:
        p = {o["name"]: o["data"][0] for o in json.load(r)["outputs"]}["probability"]
    # The outcome follows the model's odds, as real churn would.
    rows.append(f"demo-{i},{int(rng.random() < p)}")
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
print(f"scored 300 requests (ids demo-0 .. demo-299); their labels are in {sys.argv[1]}")
PY
for _ in $(seq 3); do tg feedback push churn "$work/labels.csv" | tee "$work/pushed.txt"; grep -q " 0 name no kept" "$work/pushed.txt" && break; sleep 1; done
tg feedback status churn

say "2. a dirty dataset (null customer ids, ages outside 0..120): fails at validation"
tg data generate --rows "$rows" --seed 7 --dirty --out "$work/dirty.parquet" >/dev/null
tg publish data --spec examples/churn/tollgate.yaml --dataset "$work/dirty.parquet" --wait --timeout 300
# Not a sample: every failing row, kept beside the run.
dirty_run=$(tg runs --limit 1 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["run_id"])')
tg runs failures "$dirty_run" --out "$work/failing.csv" && head -4 "$work/failing.csv"

say "3. a spec whose gate the model cannot meet (AUC-ROC >= 0.99): blocked at the gate"
sed 's/auc_roc: {min: 0.80}/auc_roc: {min: 0.99}/' examples/churn/tollgate.yaml >"$work/strict.yaml"
tg publish data --spec "$work/strict.yaml" --dataset "$uri" --wait --timeout 300

say "4. new data lands in a bucket (S3 here; GCS, Azure and MinIO alike): the trigger-watcher starts the data plan, with no publish"
"$root/.tools/venv/bin/python" -c 'import boto3; boto3.client("s3").create_bucket(Bucket="churn-data")' || exit 2
cp examples/churn/tollgate.yaml "$work/watched.yaml"
printf '\ndata: {source: "s3://churn-data/incoming/", interval: 2s, debounce: 2s}\n' >>"$work/watched.yaml"
tg apply "$work/watched.yaml" || exit 2
tg data generate --rows "$rows" --seed 11 --out "$work/incoming.parquet" >/dev/null
sleep 2
tg data push "$work/incoming.parquet" --to "s3://churn-data/incoming/$(date +%Y%m%d-%H%M%S).parquet" || exit 2
echo "waiting for the bucket's listing (every 2 s), the arrival to settle (2 s) and its run to end ..."
for _ in $(seq 600); do
  # The row's first line holds the verdict; its second line says who started it.
  tg runs --limit 5 2>/dev/null | grep -B1 "by data arrival" | head -1 \
    | grep -qE "┆ (passed|failed|blocked) +┆" && break
  sleep 0.2
done
tg runs --limit 3

say "5. your own model: examples/sklearn's train.py (scikit-learn, exported to ONNX) and its pytest gate"
# The CLI packs the spec's folder; the trainer runs train.py on the training rows in a
# copy of it, the gate grades the ONNX model and runs tests/model with pytest against it.
tg publish data --spec examples/sklearn/tollgate.yaml --dataset "$uri" --wait --timeout 300
tg models show churn-sklearn

say "the registry's model versions"
tg models
say "the runs"
tg runs
