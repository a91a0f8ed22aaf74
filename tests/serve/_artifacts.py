"""Build tiny, seeded, real artifacts (scikit-learn -> skl2onnx -> leanfit.artifacts.export).

They have exactly the shape ``leanfit run`` writes: raw-column inputs, plain ``label`` /
``probabilities`` or ``prediction`` outputs, and training reference statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from leanfit.artifacts import Manifest, reference_statistics
from leanfit.artifacts.export import write_artifact
from leanfit.schema import ColumnSpec

OPSET = {"": 18, "ai.onnx.ml": 3}


def _cast_inputs(model: onnx.ModelProto, casts: dict[str, int]) -> onnx.ModelProto:
    """Give inputs ``casts`` a public INT64/BOOL type, followed by a Cast to float inside the graph."""
    graph = model.graph
    for name, elem in casts.items():
        inner = f"{name}__as_float"
        for node in graph.node:
            for i, value in enumerate(node.input):
                if value == name:
                    node.input[i] = inner
        for value_info in graph.input:
            if value_info.name == name:
                value_info.type.tensor_type.elem_type = elem
        graph.node.insert(
            0, helper.make_node("Cast", [name], [inner], to=TensorProto.FLOAT, name=f"cast_{name}")
        )
    onnx.checker.check_model(model)
    return model


def _rename_outputs(model: onnx.ModelProto, mapping: dict[str, str]) -> onnx.ModelProto:
    for node in model.graph.node:
        for i, value in enumerate(node.output):
            if value in mapping:
                node.output[i] = mapping[value]
        for i, value in enumerate(node.input):
            if value in mapping:
                node.input[i] = mapping[value]
    for out in model.graph.output:
        if out.name in mapping:
            out.name = mapping[out.name]
    return model


def _classifier_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    names = [o.name for o in model.graph.output]
    return _rename_outputs(model, {names[0]: "label", names[1]: "probabilities"})


def _flatten_output(model: onnx.ModelProto, source: str, target: str) -> onnx.ModelProto:
    graph = model.graph
    shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), name=f"{target}__shape")
    graph.initializer.append(shape)
    graph.node.append(helper.make_node("Reshape", [source, shape.name], [target], name=f"flatten_{target}"))
    old = [o for o in graph.output if o.name == source]
    for o in old:
        graph.output.remove(o)
    graph.output.append(helper.make_tensor_value_info(target, TensorProto.FLOAT, [None]))
    onnx.checker.check_model(model)
    return model


def mixed_frame(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.normal(40 + shift * 10, 10, n)
    age[rng.random(n) < 0.05] = np.nan
    grades = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.3, 0.2] if not shift else [0.1, 0.2, 0.7])
    return pd.DataFrame(
        {
            "age": age,
            "rooms": rng.integers(1, 7, n).astype(np.int64),
            "member": rng.random(n) < 0.4,
            "grade": grades,
        }
    )


MIXED_COLUMNS = [
    ColumnSpec("age", "numeric", nullable=True),
    ColumnSpec("rooms", "integer"),
    ColumnSpec("member", "boolean"),
    ColumnSpec("grade", "categorical", categories=("A", "B", "C")),
]


def build_mixed(directory: Path, *, name: str = "mixed", extra: dict | None = None) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = mixed_frame(400, seed=0)
    score = np.nan_to_num(frame["age"].to_numpy(), nan=40) / 10 + frame["rooms"] + 2 * frame["member"]
    score = score + frame["grade"].map({"A": 0.0, "B": 1.5, "C": 3.0}).to_numpy()
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    x = frame.assign(rooms=frame["rooms"].astype(np.float32), member=frame["member"].astype(np.float32))
    pipe = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("age", SimpleImputer(strategy="median"), ["age"]),
                        ("num", "passthrough", ["rooms", "member"]),
                        ("grade", OneHotEncoder(handle_unknown="ignore"), ["grade"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(x, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[
            ("age", FloatTensorType([None, 1])),
            ("rooms", FloatTensorType([None, 1])),
            ("member", FloatTensorType([None, 1])),
            ("grade", StringTensorType([None, 1])),
        ],
        options={id(pipe.named_steps["clf"]): {"zipmap": False}},
        target_opset=OPSET,
    )
    onx = _cast_inputs(_classifier_outputs(onx), {"rooms": TensorProto.INT64, "member": TensorProto.BOOL})
    manifest = Manifest(
        name=name,
        task="classification",
        inputs=list(MIXED_COLUMNS),
        outputs=[],
        classes=["low", "mid", "high"],
        family="linear",
        reference=reference_statistics(frame, MIXED_COLUMNS),
        extra=dict(extra or {}),
    )
    return write_artifact(directory, onx, manifest)


NUMERIC_COLUMNS = [
    ColumnSpec("x0", "numeric"),
    ColumnSpec("x1", "numeric", nullable=True),
    ColumnSpec("n", "integer"),
    ColumnSpec("flag", "boolean"),
]


def build_numeric(directory: Path) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame(
        {
            "x0": rng.normal(0, 1, n),
            "x1": rng.normal(5, 2, n),
            "n": rng.integers(0, 10, n).astype(np.int64),
            "flag": rng.random(n) < 0.5,
        }
    )
    y = (frame["x0"] + 0.3 * frame["x1"] - 0.2 * frame["n"] + frame["flag"] > 0.5).astype(int).to_numpy()
    x = frame.astype(np.float32)
    cols = ["x0", "x1", "n", "flag"]
    pipe = Pipeline(
        [
            ("pre", ColumnTransformer([("all", SimpleImputer(strategy="mean"), cols)])),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    ).fit(x, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[(c, FloatTensorType([None, 1])) for c in cols],
        options={id(pipe.named_steps["clf"]): {"zipmap": False}},
        target_opset=OPSET,
    )
    onx = _cast_inputs(_classifier_outputs(onx), {"n": TensorProto.INT64, "flag": TensorProto.BOOL})
    manifest = Manifest(
        name="numeric",
        task="classification",
        inputs=list(NUMERIC_COLUMNS),
        outputs=[],
        classes=[0, 1],
        family="linear",
        reference=reference_statistics(frame, NUMERIC_COLUMNS),
    )
    return write_artifact(directory, onx, manifest)


REG_COLUMNS = [
    ColumnSpec("x", "numeric"),
    ColumnSpec("city", "categorical", categories=("paris", "rome", "oslo")),
]


def build_regression(directory: Path) -> Path:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(2)
    n = 300
    frame = pd.DataFrame({"x": rng.normal(0, 1, n), "city": rng.choice(["paris", "rome", "oslo"], n)})
    y = 3 * frame["x"].to_numpy() + frame["city"].map({"paris": 1.0, "rome": 2.0, "oslo": -1.0}).to_numpy()
    pipe = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [("x", "passthrough", ["x"]), ("city", OneHotEncoder(handle_unknown="ignore"), ["city"])]
                ),
            ),
            ("reg", Ridge(alpha=0.1)),
        ]
    ).fit(frame, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[("x", FloatTensorType([None, 1])), ("city", StringTensorType([None, 1]))],
        target_opset=OPSET,
    )
    onx = _flatten_output(onx, onx.graph.output[0].name, "prediction")
    manifest = Manifest(
        name="reg",
        task="regression",
        inputs=list(REG_COLUMNS),
        outputs=[],
        family="linear",
        reference=reference_statistics(frame, REG_COLUMNS),
    )
    return write_artifact(directory, onx, manifest)


def build_poison(directory: Path) -> Path:
    """``prediction = table[idx]``: an index outside 0..9 makes ONNX Runtime fail on that row's data."""
    table = numpy_helper.from_array(np.arange(10, dtype=np.float32) * 1.5, name="table")
    shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), name="flat")
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["idx", "flat"], ["idx_flat"]),
            helper.make_node("Gather", ["table", "idx_flat"], ["prediction"], axis=0),
        ],
        "poison",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, [None, 1])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])],
        initializer=[table, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    columns = [ColumnSpec("idx", "integer")]
    frame = pd.DataFrame({"idx": np.arange(10, dtype=np.int64)})
    manifest = Manifest(
        name="poison",
        task="regression",
        inputs=columns,
        outputs=[],
        reference=reference_statistics(frame, columns),
    )
    return write_artifact(directory, model, manifest)
