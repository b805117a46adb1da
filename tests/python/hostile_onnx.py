"""Writes hostile ONNX models for Tollgate's robustness test, with the onnx library.

Usage: hostile_onnx.py OUT_DIR

Each takes one float input `x` [N, 1] and claims a [N, 2] `probabilities` output:
- unknown_operator.onnx: a node of an operator no runtime has;
- cycle.onnx: two nodes that feed each other;
- huge_tensor.onnx: a ConstantOfShape of 2^60 elements, asked for at inference;
- endless_loop.onnx: a Loop whose trip count is 2^62 and whose condition stays true;
- huge_dimensions.onnx: an input declared [2^40, 2^40].
"""

import sys
from pathlib import Path

from onnx import TensorProto as T
from onnx import helper as h

OPSET = [h.make_opsetid("", 17)]


def save(out, name, nodes, inputs=None, initializers=()):
    x = inputs or [h.make_tensor_value_info("x", T.FLOAT, [None, 1])]
    y = [h.make_tensor_value_info("probabilities", T.FLOAT, [None, 2])]
    graph = h.make_graph(nodes, name, x, y, list(initializers))
    model = h.make_model(graph, opset_imports=OPSET)
    (out / f"{name}.onnx").write_bytes(model.SerializeToString())


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    save(out, "unknown_operator", [h.make_node("FrobnicateEverything", ["x"], ["probabilities"])])
    save(
        out,
        "cycle",
        [
            h.make_node("Relu", ["b"], ["a"]),
            h.make_node("Relu", ["a"], ["b"]),
            h.make_node("Concat", ["a", "x"], ["probabilities"], axis=1),
        ],
    )
    shape = h.make_tensor("shape", T.INT64, [2], [1 << 40, 1 << 20])
    save(
        out,
        "huge_tensor",
        [
            h.make_node("ConstantOfShape", ["shape"], ["big"]),
            h.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            h.make_node("Concat", ["x", "x"], ["pair"], axis=1),
            h.make_node("Add", ["pair", "total"], ["probabilities"]),
        ],
        initializers=[shape],
    )
    body = h.make_graph(
        [h.make_node("Identity", ["cond"], ["cond_out"]), h.make_node("Identity", ["v"], ["v_out"])],
        "body",
        [
            h.make_tensor_value_info("i", T.INT64, []),
            h.make_tensor_value_info("cond", T.BOOL, []),
            h.make_tensor_value_info("v", T.FLOAT, [None, 1]),
        ],
        [h.make_tensor_value_info("cond_out", T.BOOL, []), h.make_tensor_value_info("v_out", T.FLOAT, [None, 1])],
    )
    trips = h.make_tensor("trips", T.INT64, [], [1 << 62])
    keep = h.make_tensor("keep", T.BOOL, [], [True])
    save(
        out,
        "endless_loop",
        [
            h.make_node("Loop", ["trips", "keep", "x"], ["looped"], body=body),
            h.make_node("Concat", ["looped", "looped"], ["probabilities"], axis=1),
        ],
        initializers=[trips, keep],
    )
    wide = [h.make_tensor_value_info("x", T.FLOAT, [1 << 40, 1 << 40])]
    save(out, "huge_dimensions", [h.make_node("Concat", ["x", "x"], ["probabilities"], axis=1)], inputs=wide)
    print(f"wrote 5 hostile models to {out}")


if __name__ == "__main__":
    main()
