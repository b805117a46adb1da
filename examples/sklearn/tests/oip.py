"""A few lines of the Open Inference Protocol (KServe v2) over HTTP, with the standard
library only: what the tests below use to call the model Tollgate serves."""

import json
import os
import urllib.request

SERVER = os.environ.get("TOLLGATE_SERVER_URL", "http://127.0.0.1:8000")
MODEL = os.environ.get("TOLLGATE_MODEL", "churn-sklearn")
VERSION = os.environ.get("TOLLGATE_VERSION", "")


def _url(path):
    version = f"/versions/{VERSION}" if VERSION else ""
    return f"{SERVER}/v2/models/{MODEL}{version}{path}"


def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(_url(path), data, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def metadata():
    return call("")


def probabilities(frame, columns):
    """P(churn) for each row of a pandas frame, one request per 500 rows."""
    meta = {i["name"]: i["datatype"] for i in metadata()["inputs"]}
    out = []
    for start in range(0, len(frame), 500):
        part = frame.iloc[start : start + 500]
        inputs = []
        for c in columns:
            values = part[c].astype(object).where(part[c].notna(), None).tolist()
            inputs.append({"name": c, "shape": [len(part), 1], "datatype": meta[c], "data": values})
        answer = call("/infer", {"inputs": inputs, "outputs": [{"name": "probability"}]})
        out += answer["outputs"][0]["data"]
    return out
