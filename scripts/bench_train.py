#!/usr/bin/env python3
"""`make bench-train`: Tollgate's trainer against scikit-learn's LogisticRegression.

Same generated data (`tollgate data generate`), same features (median-imputed,
standardized numeric columns; one-hot categoricals), a stratified 80/20 split with the
same seed, L2 logistic regression with C = 1 (Tollgate's alpha = 1) and at most 100
iterations. Each side runs in its own process; wall time and peak RSS are of that whole
process, "train s" is the in-process time from reading the file to held-out metrics.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run  # noqa: E402

NUMERIC = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
CATEGORICAL = ["contract", "payment_method"]


def sklearn_side(path):
    """Runs in a child process: prints one JSON line."""
    started = time.perf_counter()
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_parquet(path, columns=NUMERIC + CATEGORICAL + ["label"])
    x, y = df[NUMERIC + CATEGORICAL], df["label"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
    features = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("features", features), ("lr", LogisticRegression(C=1.0, max_iter=100))])
    model.fit(x_train, y_train)
    p = model.predict_proba(x_test)[:, 1]
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "auc_roc": roc_auc_score(y_test, p),
        "f1": f1_score(y_test, p >= 0.5),
    }))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--sklearn":
        return sklearn_side(sys.argv[2])
    tollgate, spec = sys.argv[1], sys.argv[2]
    os.makedirs(".bench", exist_ok=True)
    rows_list = [int(r) for r in os.environ.get("BENCH_ROWS", "100000,1000000").split(",")]
    print(f"{'rows':>9} {'tool':<10} {'train s':>8} {'wall s':>7} {'peak RSS MB':>12} {'AUC-ROC':>8} {'F1':>7}")
    for rows in rows_list:
        path = f".bench/churn-{rows}.parquet"
        if not os.path.exists(path):
            subprocess.run([tollgate, "data", "generate", "--rows", str(rows), "--seed", "42", "--out", path],
                           check=True, stdout=subprocess.DEVNULL)
        out, wall, rss = run([tollgate, "train", path, "--spec", spec, "--json"])
        t = json.loads(out)
        tg = (t["training_seconds"], wall, rss, t["metrics"]["auc_roc"], t["metrics"]["f1"])
        out, wall, rss = run([sys.executable, __file__, "--sklearn", path])
        s = json.loads(out.strip().splitlines()[-1])
        sk = (s["seconds"], wall, rss, s["auc_roc"], s["f1"])
        for name, (secs, w, r, auc, f1) in [("tollgate", tg), ("sklearn", sk)]:
            print(f"{rows:>9} {name:<10} {secs:>8.2f} {w:>7.2f} {r:>12.0f} {auc:>8.4f} {f1:>7.4f}")
        print(f"{'':>9} {'ratio':<10} {sk[0] / tg[0]:>7.1f}x {sk[1] / tg[1]:>6.1f}x {sk[2] / tg[2]:>11.1f}x "
              f"{tg[3] - sk[3]:>+8.4f} {tg[4] - sk[4]:>+7.4f}")


if __name__ == "__main__":
    main()
