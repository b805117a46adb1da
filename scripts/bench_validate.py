#!/usr/bin/env python3
"""`make bench-validate`: Tollgate's validator against Great Expectations 1.x (pandas) and
the same checks hand-written in Python polars (the engine's floor).

One suite for all three, written once as a Great Expectations suite file that Tollgate
reads as it is: the brief's three expectations (row count 1,000 to 10,000,000,
customer_id not null, age between 0 and 120) plus unique customer_id, contract in set,
monthly_charges not null, label in {0, 1}. Each tool runs in its own process; the table
shows whole-process wall time and peak RSS, and the ratios against Tollgate.
"""
import json
import os
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


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ("--gx", "--polars"):
        return gx_side(sys.argv[2]) if sys.argv[1] == "--gx" else polars_side(sys.argv[2])
    tollgate = sys.argv[1]
    os.makedirs(".bench", exist_ok=True)
    suite_path = ".bench/bench_suite.json"
    with open(suite_path, "w") as f:
        json.dump(SUITE, f, indent=2)
    rows_list = [int(r) for r in os.environ.get("BENCH_ROWS", "1000000,10000000").split(",")]
    print(f"{'rows':>10} {'tool':<20} {'wall s':>8} {'peak RSS MB':>12} {'passed':>7} {'vs tollgate: time':>18} {'memory':>7}")
    for rows in rows_list:
        path = f".bench/churn-{rows}.parquet"
        if not os.path.exists(path):
            subprocess.run([tollgate, "data", "generate", "--rows", str(rows), "--seed", "42", "--out", path],
                           check=True, stdout=subprocess.DEVNULL)
        out, tw, tr = run([tollgate, "validate", path, "--suite", suite_path, "--json"], ok_statuses=(0, 256))
        tg_ok = json.loads(out)["success"]
        results = [("tollgate", tw, tr, tg_ok)]
        for flag, name in (("--polars", "polars (hand-written)"), ("--gx", "great_expectations")):
            out, w, r = run([sys.executable, __file__, flag, path])
            results.append((name, w, r, json.loads(out.strip().splitlines()[-1])["success"]))
        for name, w, r, ok in results:
            print(f"{rows:>10} {name:<20} {w:>8.2f} {r:>12.0f} {str(ok):>7} {w / tw:>17.1f}x {r / tr:>6.1f}x")


if __name__ == "__main__":
    main()
