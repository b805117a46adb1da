#!/usr/bin/env python3
"""`make bench-train`: Tollgate's trainer against scikit-learn.

Same generated data (`tollgate data generate`), same features (median-imputed,
standardized numeric columns; one-hot categoricals), a stratified 80/20 split with the
same seed. First L2 logistic regression with C = 1 (Tollgate's alpha = 1) and at most 100
iterations on every size in BENCH_ROWS; then, on the sizes in BENCH_MODEL_ROWS, the other
algorithms with the same hyper-parameters on both sides: a decision tree (depth 8, 5 rows
per leaf), a random forest of 50 such trees (scikit-learn samples 70% of the features at
each split, Tollgate once per tree) and Gaussian naive Bayes; and on the sizes in
BENCH_BOOST_ROWS (200k and 1M) gradient boosting with HistGradientBoostingClassifier's
defaults on both sides (100 rounds, 31 leaves grown best first, 20 rows per leaf, early
stopping on a 10% validation fold after 10 rounds without a better loss). Each side runs
in its own process; wall time and peak RSS are of that whole process, "train s" is the
in-process time from reading the file to held-out metrics, and "fit s" the fit alone
(the feature pipeline and the model on the training rows), which the ratio compares.
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


# Tollgate's `algorithm:` block for each benchmarked kind; scikit-learn's match in
# `sklearn_model`.
ALGORITHMS = {
    "logistic_regression": "algorithm: {kind: logistic_regression, alpha: 1.0, max_iterations: 100}",
    "decision_tree": "algorithm: {kind: decision_tree, max_depth: 8, min_samples_leaf: 5}",
    "random_forest": "algorithm: {kind: random_forest, trees: 50, max_depth: 8, min_samples_leaf: 5, "
                     "feature_fraction: 0.7}",
    "gaussian_naive_bayes": "algorithm: {kind: gaussian_naive_bayes, var_smoothing: 1.0e-9}",
    "gradient_boosting": "algorithm: {kind: gradient_boosting, learning_rate: 0.1, trees: 100, max_leaf_nodes: 31, "
                         "min_samples_leaf: 20, l2: 0.0, validation_fraction: 0.1, early_stopping_rounds: 10}",
}


def sklearn_model(kind):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    return {
        "logistic_regression": lambda: LogisticRegression(C=1.0, max_iter=100),
        "decision_tree": lambda: DecisionTreeClassifier(max_depth=8, min_samples_leaf=5, random_state=42),
        "random_forest": lambda: RandomForestClassifier(n_estimators=50, max_depth=8, min_samples_leaf=5,
                                                        max_features=0.7, n_jobs=-1, random_state=42),
        "gaussian_naive_bayes": lambda: GaussianNB(var_smoothing=1e-9),
        # The same rounds, depth, leaf size, L2 and early stopping as Tollgate's block
        # (max_leaf_nodes=None: trees bounded by depth, as Tollgate's are).
        "gradient_boosting": lambda: HistGradientBoostingClassifier(
            learning_rate=0.1, max_iter=100, max_leaf_nodes=31, min_samples_leaf=20,
            l2_regularization=0.0, early_stopping=True, validation_fraction=0.1, n_iter_no_change=10,
            random_state=42),
    }[kind]()


def spec_for(spec, kind):
    """The spec file with its `algorithm:` block replaced by `kind`'s."""
    text = open(spec).read()
    start = text.index("algorithm:")
    end = text.index("\n\n", start)
    path = f".bench/spec-{kind}.yaml"
    with open(path, "w") as f:
        f.write(text[:start] + ALGORITHMS[kind] + text[end:])
    return path


def sklearn_side(path, kind):
    """Runs in a child process: prints one JSON line."""
    started = time.perf_counter()
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_parquet(path, columns=NUMERIC + CATEGORICAL + ["label"])
    x, y = df[NUMERIC + CATEGORICAL], df["label"]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
    features = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
    ])
    model = Pipeline([("features", features), ("model", sklearn_model(kind))])
    fitting = time.perf_counter()
    model.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - fitting
    p = model.predict_proba(x_test)[:, 1]
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "fit_seconds": fit_seconds,
        "auc_roc": roc_auc_score(y_test, p),
        "f1": f1_score(y_test, p >= 0.5),
    }))


def compare(tollgate, spec, kind, rows):
    """Trains `kind` on `rows` generated rows with both tools and prints three lines."""
    path = f".bench/churn-{rows}.parquet"
    if not os.path.exists(path):
        subprocess.run([tollgate, "data", "generate", "--rows", str(rows), "--seed", "42", "--out", path],
                       check=True, stdout=subprocess.DEVNULL)
    out, wall, rss = run([tollgate, "train", path, "--spec", spec_for(spec, kind), "--json"])
    t = json.loads(out)
    tg = (t["training_seconds"], t["fit_seconds"], wall, rss, t["metrics"]["auc_roc"], t["metrics"]["f1"])
    out, wall, rss = run([sys.executable, __file__, "--sklearn", path, kind])
    s = json.loads(out.strip().splitlines()[-1])
    sk = (s["seconds"], s["fit_seconds"], wall, rss, s["auc_roc"], s["f1"])
    for name, (secs, fit, w, r, auc, f1) in [("tollgate", tg), ("sklearn", sk)]:
        print(f"{kind:<21} {rows:>9} {name:<10} {secs:>8.2f} {fit:>7.2f} {w:>7.2f} {r:>12.0f} {auc:>8.4f} {f1:>7.4f}")
    print(f"{'':<21} {'':>9} {'ratio':<10} {sk[0] / tg[0]:>7.1f}x {sk[1] / tg[1]:>6.1f}x {sk[2] / tg[2]:>6.1f}x "
          f"{sk[3] / tg[3]:>11.1f}x {tg[4] - sk[4]:>+8.4f} {tg[5] - sk[5]:>+7.4f}", flush=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--sklearn":
        return sklearn_side(sys.argv[2], sys.argv[3])
    tollgate, spec = sys.argv[1], sys.argv[2]
    os.makedirs(".bench", exist_ok=True)
    sizes = lambda name, default: [int(r) for r in os.environ.get(name, default).split(",") if r]
    print(f"{'algorithm':<21} {'rows':>9} {'tool':<10} {'train s':>8} {'fit s':>7} {'wall s':>7} {'peak RSS MB':>12} "
          f"{'AUC-ROC':>8} {'F1':>7}", flush=True)
    for rows in sizes("BENCH_ROWS", "100000,1000000"):
        compare(tollgate, spec, "logistic_regression", rows)
    for rows in sizes("BENCH_MODEL_ROWS", "100000"):
        for kind in ["decision_tree", "random_forest", "gaussian_naive_bayes"]:
            compare(tollgate, spec, kind, rows)
    for rows in sizes("BENCH_BOOST_ROWS", "200000,1000000"):
        compare(tollgate, spec, "gradient_boosting", rows)


if __name__ == "__main__":
    main()
