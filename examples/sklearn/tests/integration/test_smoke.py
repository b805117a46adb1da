"""Smoke test of the Staging server: run by Tollgate's integration stage."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import oip  # noqa: E402

RECORD = {
    "age": 41,
    "tenure_months": 3,
    "monthly_charges": 80.5,
    "total_charges": 241.5,
    "support_calls": 4,
    "contract": "month-to-month",
    "payment_method": "electronic-check",
}


def test_one_record_gets_a_probability():
    meta = {i["name"]: i["datatype"] for i in oip.metadata()["inputs"]}
    inputs = [{"name": k, "shape": [1, 1], "datatype": meta[k], "data": [v]} for k, v in RECORD.items()]
    answer = oip.call("/infer", {"inputs": inputs})
    outputs = {o["name"]: o["data"][0] for o in answer["outputs"]}
    assert 0.0 <= outputs["probability"] <= 1.0
    assert outputs["prediction"] in (0, 1)


def test_a_missing_value_is_accepted():
    meta = {i["name"]: i["datatype"] for i in oip.metadata()["inputs"]}
    record = dict(RECORD, total_charges=None)
    inputs = [{"name": k, "shape": [1, 1], "datatype": meta[k], "data": [v]} for k, v in record.items()]
    answer = oip.call("/infer", {"inputs": inputs})
    assert 0.0 <= answer["outputs"][0]["data"][0] <= 1.0
