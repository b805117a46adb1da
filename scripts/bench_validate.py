#!/usr/bin/env python3
"""`make bench-validate`: Tollgate's validator against Great Expectations 1.x (pandas) and
the same checks hand-written in Python polars (the engine's floor).

One suite for all three, written once as a Great Expectations suite file that Tollgate
reads as it is: the brief's three expectations (row count 1,000 to 10,000,000,
customer_id not null, age between 0 and 120) plus unique customer_id, contract in set,
monthly_charges not null, label in {0, 1}. Each tool runs in its own process; the table
shows whole-process wall time and peak RSS, and the ratios against Tollgate.

`tollgate (from S3)` validates the same file as an object in an S3-compatible server
(moto's, from `make tools`, on loopback): the whole process, download included, against
the file on disk.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run  # noqa: E402

SUITE = {
    "name": "bench_suite",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1000, "max_value": 10000000}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer_id"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0, "max_value": 120}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "customer_id"}},
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "contract", "value_set": ["month-to-month", "one-year", "two-year"]}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "monthly_charges"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "label", "value_set": [0, 1]}},
    ],
}


def gx_side(path):
    import great_expectations as gx
    import pandas as pd

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas(name="bench").add_dataframe_asset(name="churn")
    batch_definition = asset.add_batch_definition_whole_dataframe("all")
    df = pd.read_parquet(path)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE["name"]))
    for e in SUITE["expectations"]:
        name = "".join(part.capitalize() for part in e["type"].split("_"))
        suite.add_expectation(getattr(gx.expectations, name)(**e["kwargs"]))
    result = batch.validate(suite)
    print(json.dumps({"success": bool(result.success)}))


def polars_side(path):
    import polars as pl

    c = pl.col
    r = pl.scan_parquet(path).select(
        pl.len().alias("rows"),
        c("customer_id").null_count().alias("id_nulls"),
        ((c("age") < 0) | (c("age") > 120)).sum().alias("age_out"),
        (c("customer_id").is_duplicated() & c("customer_id").is_not_null()).sum().alias("id_dups"),
        (~c("contract").is_in(["month-to-month", "one-year", "two-year"])).sum().alias("contract_out"),
        c("monthly_charges").null_count().alias("charges_nulls"),
        (~c("label").is_in([0, 1])).sum().alias("label_out"),
    ).collect(engine="streaming").row(0, named=True)
    ok = 1000 <= r["rows"] <= 10_000_000 and all(v == 0 for k, v in r.items() if k != "rows")
    print(json.dumps({"success": ok}))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".tools", "venv", "bin")


def s3_server():
    """Starts moto's S3 server on a free port and makes the bench bucket; returns the
    process. The AWS variables it sets are what `tollgate` reads."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([os.path.join(VENV, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    s3("import boto3; boto3.client('s3').create_bucket(Bucket='bench')")
    return proc


def s3(code):
    """Runs `code` with the main venv's boto3 (the bench venv has none)."""
    subprocess.run([os.path.join(VENV, "python"), "-c", code], check=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ("--gx", "--polars"):
        return gx_side(sys.argv[2]) if sys.argv[1] == "--gx" else polars_side(sys.argv[2])
    tollgate = sys.argv[1]
    os.makedirs(".bench", exist_ok=True)
    suite_path = ".bench/bench_suite.json"
    with open(suite_path, "w") as f:
        json.dump(SUITE, f, indent=2)
    rows_list = [int(r) for r in os.environ.get("BENCH_ROWS", "1000000,10000000").split(",")]
    server = s3_server()
    print(f"{'rows':>10} {'tool':<20} {'wall s':>8} {'peak RSS MB':>12} {'passed':>7} {'vs tollgate: time':>18} {'memory':>7}")
    for rows in rows_list:
        path = f".bench/churn-{rows}.parquet"
        if not os.path.exists(path):
            subprocess.run([tollgate, "data", "generate", "--rows", str(rows), "--seed", "42", "--out", path],
                           check=True, stdout=subprocess.DEVNULL)
        out, tw, tr = run([tollgate, "validate", path, "--suite", suite_path, "--json"], ok_statuses=(0, 256))
        tg_ok = json.loads(out)["success"]
        results = [("tollgate", tw, tr, tg_ok)]
        key = f"churn-{rows}.parquet"
        s3(f"import boto3; boto3.client('s3').upload_file({os.path.abspath(path)!r}, 'bench', {key!r})")
        out, w, r = run([tollgate, "validate", f"s3://bench/{key}", "--suite", suite_path, "--json"],
                        ok_statuses=(0, 256))
        results.append(("tollgate (from S3)", w, r, json.loads(out)["success"]))
        for flag, name in (("--polars", "polars (hand-written)"), ("--gx", "great_expectations")):
            out, w, r = run([sys.executable, __file__, flag, path])
            results.append((name, w, r, json.loads(out.strip().splitlines()[-1])["success"]))
        for name, w, r, ok in results:
            print(f"{rows:>10} {name:<20} {w:>8.2f} {r:>12.0f} {str(ok):>7} {w / tw:>17.1f}x {r / tr:>6.1f}x")
    server.terminate()
    server.wait()


if __name__ == "__main__":
    main()
