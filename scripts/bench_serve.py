#!/usr/bin/env python3
"""`make bench-serve`: tollgate-server against `mlflow models serve`, measured alike.

The same generated data (`tollgate data generate`) trains both models: Tollgate's through
a pipeline run that ends in Production, scikit-learn's logistic regression here (median-
imputed, standardized numeric columns, one-hot categoricals, C = 1, as Tollgate's spec
says), saved as an MLflow model whose pyfunc answers predict_proba. MLflow serves it with
`mlflow models serve --env-manager local` and two uvicorn workers (this machine's cores);
`tollgate-bench serve` then sends the same records, one per request, from the same Rust
client to both servers at 1, 8 and 64 concurrent clients and prints the table.

The same again for a model users train themselves: one scikit-learn pipeline
(ColumnTransformer with imputer, scaler and one-hot encoder, then a
HistGradientBoostingClassifier), fitted once here, exported with skl2onnx for Tollgate
(which serves the ONNX file through ONNX Runtime) and saved as an MLflow model for
`mlflow models serve`.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

NUMERIC = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
CATEGORICAL = ["contract", "payment_method"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_mlflow_model(data, out):
    import mlflow.sklearn
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_parquet(data)
    # Numbers as float64, as the requests send them (an int64 schema would refuse 41.0).
    x, y = df[NUMERIC + CATEGORICAL].astype({c: "float64" for c in NUMERIC}), df["label"]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("prep", prep), ("lr", LogisticRegression(C=1.0, max_iter=100))]).fit(x, y)
    mlflow.sklearn.save_model(model, out, input_example=x.head(1), pyfunc_predict_fn="predict_proba",
                              skops_trusted_types=["numpy.dtype"])


def train_hgb(data, onnx_out, mlflow_out):
    """The HistGradientBoosting pipeline, fitted once: as ONNX and as an MLflow model."""
    import mlflow.sklearn
    import pandas as pd
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = pd.read_parquet(data)
    x, y = df[NUMERIC + CATEGORICAL].astype({c: "float64" for c in NUMERIC}), df["label"]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])
    model = Pipeline([("prep", prep), ("hgb", HistGradientBoostingClassifier(max_iter=100, random_state=0))])
    model.fit(x, y)
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    onx = to_onnx(model, initial_types=types, options={id(model): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    with open(onnx_out, "wb") as f:
        f.write(onx.SerializeToString())
    # We fitted this model ourselves a moment ago, so its tree predictor is trusted.
    trusted = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
    mlflow.sklearn.save_model(model, mlflow_out, input_example=x.head(1), pyfunc_predict_fn="predict_proba",
                              skops_trusted_types=trusted)


def serve(mlflow_bin, model_dir, tmp, name, env):
    """Starts `mlflow models serve` on a free port; returns (process, url, log)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = os.path.join(tmp, f"{name}.log")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [mlflow_bin, "models", "serve", "-m", model_dir, "-h", "127.0.0.1", "-p", str(port),
             "--env-manager", "local", "-w", "2"],
            stdout=out, stderr=out, start_new_session=True, env=env)
    return proc, url, log


def wait_ping(url, proc, log, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"mlflow models serve exited:\n{open(log).read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit(f"mlflow models serve did not answer /ping in {timeout} s:\n{open(log).read()[-3000:]}")


def main():
    bench, tollgate = sys.argv[1], sys.argv[2]
    rows = os.environ.get("BENCH_SERVE_ROWS", "20000")
    venv_bin = os.path.dirname(sys.executable)
    mlflow_bin = os.path.join(venv_bin, "mlflow")
    # MLflow starts uvicorn by name: the venv's bin goes first on its PATH.
    env = dict(os.environ, PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "churn.parquet")
        subprocess.run([tollgate, "data", "generate", "--rows", rows, "--out", data], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"training scikit-learn's logistic regression on {rows} rows for MLflow ...", file=sys.stderr)
        model_dir = os.path.join(tmp, "mlflow-model")
        train_mlflow_model(data, model_dir)
        print("training the HistGradientBoosting pipeline once, as ONNX and for MLflow ...", file=sys.stderr)
        onnx = os.path.join(tmp, "hgb.onnx")
        hgb_dir = os.path.join(tmp, "mlflow-hgb")
        train_hgb(data, onnx, hgb_dir)
        servers = [serve(mlflow_bin, model_dir, tmp, "mlflow", env), serve(mlflow_bin, hgb_dir, tmp, "mlflow-hgb", env)]
        try:
            for proc, url, log in servers:
                print(f"waiting for mlflow models serve on {url} ...", file=sys.stderr)
                wait_ping(url, proc, log)
            subprocess.run([bench, "serve", data, servers[0][1], onnx, servers[1][1]], check=True)
        finally:
            for proc, _, _ in servers:
                stop(proc)


def stop(proc):
    """SIGTERM to MLflow's process group (uvicorn and its workers), SIGKILL after 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
