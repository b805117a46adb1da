"""Trains the churn model with scikit-learn and exports it to ONNX for Tollgate.

Tollgate runs this in a copy of this folder with:
  TOLLGATE_TRAIN_DATA  the training rows (Parquet, every column; the test rows are kept back)
  TOLLGATE_MODEL_OUT   where to write the ONNX model
  TOLLGATE_SEED        the spec's split seed, for our own randomness
  TOLLGATE_TARGET      the label column
Run it yourself the same way:
  TOLLGATE_TRAIN_DATA=churn.parquet TOLLGATE_MODEL_OUT=model.onnx python3 train.py
"""

import argparse
import os

import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
CATEGORICAL = ["contract", "payment_method"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--max-iter", type=int, default=100)
    args = parser.parse_args()

    rows = pd.read_parquet(os.environ["TOLLGATE_TRAIN_DATA"])
    target = os.environ.get("TOLLGATE_TARGET", "label")
    seed = int(os.environ.get("TOLLGATE_SEED", "42"))
    print(f"training on {len(rows)} rows, {rows[target].mean():.1%} positive")

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    features = ColumnTransformer(
        [("numeric", numeric, NUMERIC), ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    model = HistGradientBoostingClassifier(
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        max_iter=args.max_iter,
        random_state=seed,
    )
    pipeline = Pipeline([("features", features), ("model", model)])
    pipeline.fit(rows[NUMERIC + CATEGORICAL], rows[target])
    print(f"fitted {model.n_iter_} boosting iterations (max_depth {args.max_depth})")

    # One input per column, as Tollgate feeds them; probabilities as a [N, 2] tensor.
    inputs = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    inputs += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    onnx = to_onnx(
        pipeline,
        initial_types=inputs,
        options={id(pipeline): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    out = os.environ["TOLLGATE_MODEL_OUT"]
    with open(out, "wb") as f:
        f.write(onnx.SerializeToString())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
