"""Trains the models of Tollgate's ONNX conformance test with the real exporters.

Usage: onnx_exporters.py DATA.parquet OUT_DIR

Reads the churn dataset Tollgate generated, puts missing values into two float columns
and a text target beside the 0/1 one, writes that dataset to OUT_DIR/data.parquet, then
trains and exports each model to OUT_DIR/<name>.onnx and records, in
OUT_DIR/expected.json, the positive class's probability ONNX Runtime's own Python API
gives every row. The Rust test scores the same rows through Tollgate and compares.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from lightgbm import LGBMClassifier
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType as MLFloat
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

NUMERIC = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
INTEGER = ["age", "tenure_months", "support_calls"]
FLOAT = ["monthly_charges", "total_charges"]
CATEGORICAL = ["contract", "payment_method"]
OPSETS = {"": 17, "ai.onnx.ml": 3}


def numeric_steps():
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


def pipeline(classifier, integer_inputs=False):
    """A ColumnTransformer(SimpleImputer, StandardScaler, OneHotEncoder) pipeline."""
    if integer_inputs:
        numeric = [("ints", numeric_steps(), INTEGER), ("floats", numeric_steps(), FLOAT)]
    else:
        numeric = [("numeric", numeric_steps(), NUMERIC)]
    pre = ColumnTransformer(numeric + [("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    return Pipeline([("pre", pre), ("model", classifier)])


def column_types(integer_inputs=False):
    types = []
    for c in NUMERIC:
        kind = Int64TensorType if integer_inputs and c in INTEGER else FloatTensorType
        types.append((c, kind([None, 1])))
    types += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    return types


def column_feeds(df, types):
    feeds = {}
    for name, kind in types:
        if isinstance(kind, StringTensorType):
            feeds[name] = df[[name]].fillna("").astype(str).to_numpy()
        elif isinstance(kind, Int64TensorType):
            feeds[name] = df[[name]].to_numpy().astype(np.int64)
        else:
            feeds[name] = df[[name]].to_numpy().astype(np.float32)
    return feeds


def positive(outputs, names, key=1):
    """The positive class's probability from a [N, 2] tensor or a ZipMap."""
    value = outputs[names.index("probabilities")] if "probabilities" in names else outputs[-1]
    if isinstance(value, list):
        return [float(row[key]) for row in value]
    return [float(p) for p in np.asarray(value)[:, 1]]


def main():
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    df = pd.read_parquet(data)
    df.loc[df.index % 37 == 5, "monthly_charges"] = np.nan
    df.loc[df.index % 41 == 7, "total_charges"] = np.nan
    df["churned"] = np.where(df["label"] == 1, "yes", "no")
    df.to_parquet(out / "data.parquet", index=False)
    y = df["label"].to_numpy()
    expected = {}

    def export(name, model, types, feeds, key=1, zipmap=False):
        options = None if zipmap else {id(model): {"zipmap": False}}
        onx = to_onnx(model, initial_types=types, options=options, target_opset=OPSETS)
        path = out / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        expected[name] = positive(session.run(None, feeds), names, key)

    for name, classifier, integer_inputs in [
        ("logistic_regression", LogisticRegression(max_iter=1000), False),
        ("random_forest", RandomForestClassifier(n_estimators=40, max_depth=8, random_state=0), True),
        ("hist_gradient_boosting", HistGradientBoostingClassifier(max_iter=60, random_state=0), False),
        ("mlp", MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=0), False),
    ]:
        model = pipeline(classifier, integer_inputs).fit(df, y)
        types = column_types(integer_inputs)
        export(name, model, types, column_feeds(df, types))

    # A text target and skl2onnx's default ZipMap output, keyed by the class labels.
    model = pipeline(LogisticRegression(max_iter=1000)).fit(df, df["churned"])
    types = column_types()
    export("zipmap_text_target", model, types, column_feeds(df, types), key="yes", zipmap=True)

    matrix = df[NUMERIC].to_numpy().astype(np.float32)
    for name, classifier, convert in [
        ("xgboost", XGBClassifier(n_estimators=40, max_depth=4, random_state=0), convert_xgboost),
        ("lightgbm", LGBMClassifier(n_estimators=40, num_leaves=15, random_state=0, verbose=-1), convert_lightgbm),
    ]:
        classifier.fit(matrix, y)
        onx = convert(classifier, initial_types=[("input", MLFloat([None, len(NUMERIC)]))], target_opset=15)
        path = out / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        expected[name] = positive(session.run(None, {"input": matrix}), names)

    (out / "expected.json").write_text(json.dumps(expected))
    print(f"wrote {len(expected)} models and their probabilities for {len(df)} rows to {out}")


if __name__ == "__main__":
    main()
