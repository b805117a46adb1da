"""The model's quality gate, as our team wrote it: run by Tollgate's gate against the
candidate it serves on loopback, with the rows it kept back for testing."""

import os
import sys

import pandas as pd
from sklearn.metrics import recall_score, roc_auc_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import oip  # noqa: E402

COLUMNS = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls", "contract", "payment_method"]


def held_out_rows():
    return pd.read_parquet(os.environ["TOLLGATE_TEST_DATA"])


def test_the_server_takes_every_feature():
    names = [i["name"] for i in oip.metadata()["inputs"]]
    assert sorted(names) == sorted(COLUMNS)


def test_auc_on_the_held_out_rows():
    rows = held_out_rows()
    auc = roc_auc_score(rows["label"], oip.probabilities(rows, COLUMNS))
    assert auc >= 0.80, f"AUC-ROC {auc:.3f} is below 0.80"


def test_recall_of_month_to_month_customers():
    rows = held_out_rows()
    rows = rows[rows["contract"] == "month-to-month"]
    predicted = [p >= 0.5 for p in oip.probabilities(rows, COLUMNS)]
    recall = recall_score(rows["label"], predicted)
    assert recall >= 0.60, f"recall {recall:.2f} on month-to-month customers is below 0.60"
