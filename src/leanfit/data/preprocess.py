"""The leak-free preprocessor: raw columns -> one float matrix, in scikit-learn and in ONNX.

:func:`build_preprocessor` returns an *unfitted* ``ColumnTransformer``; fit it on the
training rows only, so the imputer medians, scaler statistics and category lists never
see validation or test rows. :func:`preprocessor_to_onnx` turns the fitted transformer into
a graph whose inputs are the raw columns (one ``[N, 1]`` input per
:class:`~leanfit.schema.ColumnSpec`) and whose one output ``features`` is ``float [N, F]``.

Column groups, in output order:

===========  =================================================  ==================================
name         columns                                            steps
===========  =================================================  ==================================
numeric      numeric, integer, boolean, datetime                median imputer (+ standard scaler)
missing      the nullable ones among those                      missing indicator (0/1)
onehot       categorical with at most ``onehot_max`` levels     one-hot, unseen levels -> zeros
ordinal      categorical with more levels                       ordinal, unseen -> -1 (+ scaler)
===========  =================================================  ==================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from ..exceptions import DataError
from ..schema import ColumnSpec

__all__ = ["OPSETS", "build_preprocessor", "preprocessor_to_onnx", "to_feature_matrix"]

#: The opsets of every leanfit graph; merged graphs must agree.
OPSETS: dict[str, int] = {"": 18, "ai.onnx.ml": 3}
_NUMERIC_KINDS = ("numeric", "integer", "boolean", "datetime")
_OUTPUT = "features"
_CAST_INPUTS = {"integer": TensorProto.INT64, "boolean": TensorProto.BOOL}


def build_preprocessor(
    columns: Sequence[ColumnSpec], *, scale: bool, onehot_max: int = 20
) -> ColumnTransformer:
    """An unfitted ``ColumnTransformer`` from the raw columns to one dense float matrix.

    Args:
        columns: the dataset's column specs (``Dataset.columns``).
        scale: standardise numeric and ordinal-encoded columns (for linear models, kNN,
            neural networks; trees do not need it).
        onehot_max: categorical columns with at most this many levels are one-hot encoded,
            wider ones ordinal encoded.

    Example:
        >>> cols = [
        ...     ColumnSpec("x", "numeric", nullable=True),
        ...     ColumnSpec("c", "categorical", categories=("a", "b")),
        ... ]
        >>> frame = pd.DataFrame({"x": [1.0, np.nan, 3.0], "c": ["a", "b", "a"]})
        >>> build_preprocessor(cols, scale=False).fit(frame).transform(frame).tolist()
        [[1.0, 0.0, 1.0, 0.0], [2.0, 1.0, 0.0, 1.0], [3.0, 0.0, 1.0, 0.0]]
    """
    numeric = [c.name for c in columns if c.kind in _NUMERIC_KINDS]
    nullable = [c.name for c in columns if c.kind in _NUMERIC_KINDS and c.nullable]
    onehot = [c.name for c in columns if c.kind == "categorical" and len(c.categories) <= onehot_max]
    ordinal = [c.name for c in columns if c.kind == "categorical" and len(c.categories) > onehot_max]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
    if nullable:
        transformers.append(("missing", MissingIndicator(features="all"), nullable))
    if onehot:
        transformers.append(("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), onehot))
    if ordinal:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        steps = [("encode", encoder)] + ([("scale", StandardScaler())] if scale else [])
        transformers.append(("ordinal", Pipeline(steps), ordinal))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def to_feature_matrix(fitted: ColumnTransformer, X: pd.DataFrame) -> np.ndarray:
    """Transform coerced raw columns (``Dataset.X`` rows) into the float32 model matrix.

    Example:
        >>> cols = [ColumnSpec("x", "numeric")]
        >>> ct = build_preprocessor(cols, scale=True).fit(pd.DataFrame({"x": [0.0, 2.0]}))
        >>> to_feature_matrix(ct, pd.DataFrame({"x": [1.0]})).tolist()
        [[0.0]]
    """
    return np.asarray(fitted.transform(X), dtype=np.float32)


def preprocessor_to_onnx(fitted: ColumnTransformer, columns: Sequence[ColumnSpec]) -> onnx.ModelProto:
    """Convert a fitted preprocessor into an ONNX graph with the raw-column contract.

    Inputs: one ``[N, 1]`` tensor per column, named after it (numeric/datetime float,
    integer int64, boolean bool, categorical string). Output: ``features``, ``float [N, F]``.
    Opsets: ``ai.onnx`` 18 and ``ai.onnx.ml`` 3.

    Example:
        >>> import onnxruntime as ort
        >>> cols = [ColumnSpec("n", "integer"), ColumnSpec("c", "categorical", categories=("a", "b"))]
        >>> frame = pd.DataFrame({"n": [1, 3], "c": pd.Series(["a", "b"], dtype=object)})
        >>> graph = preprocessor_to_onnx(build_preprocessor(cols, scale=False).fit(frame), cols)
        >>> session = ort.InferenceSession(graph.SerializeToString())
        >>> feeds = {"n": np.array([[2]], dtype=np.int64), "c": np.array([["b"]], dtype=object)}
        >>> session.run(["features"], feeds)[0].tolist()
        [[2.0, 0.0, 1.0]]
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    clash = [c.name for c in columns if c.name == _OUTPUT]
    if clash:
        raise DataError(
            f"column {_OUTPUT!r} has the name of the preprocessor's output; rename the column "
            "(e.g. with pandas DataFrame.rename) before training."
        )
    _register_missing_indicator()
    initial_types = [
        (c.name, StringTensorType([None, 1]) if c.kind == "categorical" else FloatTensorType([None, 1]))
        for c in columns
    ]
    width = len(fitted.get_feature_names_out())
    model = convert_sklearn(
        fitted,
        name="leanfit_preprocessor",
        initial_types=initial_types,
        final_types=[("features", FloatTensorType([None, width]))],
        target_opset=dict(OPSETS),
    )
    _restore_input_names(model, columns)
    _cast_typed_inputs(model, columns)
    _set_opsets(model)
    onnx.checker.check_model(model, full_check=True)
    return model


def _names(graph: onnx.GraphProto) -> set[str]:
    names = {name for node in graph.node for name in (*node.input, *node.output)}
    names |= {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    return names | {t.name for t in graph.initializer}


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    taken.add(name)
    return name


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename one tensor everywhere in a graph (no subgraphs in preprocessors)."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        if value.name == old:
            value.name = new


def _restore_input_names(model: onnx.ModelProto, columns: Sequence[ColumnSpec]) -> None:
    """skl2onnx makes input names identifier-safe ("a b" -> "a_b"); put the column names back."""
    graph = model.graph
    if [i.name for i in graph.input] == [c.name for c in columns]:
        return
    if len(graph.input) != len(columns):
        raise RuntimeError(f"skl2onnx returned {len(graph.input)} inputs for {len(columns)} columns")
    wanted = {c.name for c in columns}
    taken = _names(graph) | wanted
    current = {i.name for i in graph.input}
    for name in sorted(_names(graph) & wanted - current):  # an inner tensor holds a column's name
        _rename(graph, name, _fresh(f"{name}_inner", taken))
    for graph_input, spec in zip(list(graph.input), columns, strict=True):
        if graph_input.name != spec.name:
            _rename(graph, graph_input.name, spec.name)


def _cast_typed_inputs(model: onnx.ModelProto, columns: Sequence[ColumnSpec]) -> None:
    """Give integer and boolean inputs their public type, cast to float inside the graph."""
    graph = model.graph
    taken = _names(graph)
    casts = []
    for spec in columns:
        if spec.kind not in _CAST_INPUTS:
            continue
        inner = _fresh(f"{spec.name}__as_float", taken)
        for node in graph.node:
            node.input[:] = [inner if name == spec.name else name for name in node.input]
        casts.append(
            helper.make_node("Cast", [spec.name], [inner], to=TensorProto.FLOAT, name=f"cast_{inner}")
        )
        for graph_input in graph.input:
            if graph_input.name == spec.name:
                graph_input.type.tensor_type.elem_type = _CAST_INPUTS[spec.kind]
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def _set_opsets(model: onnx.ModelProto) -> None:
    """Pin the opset imports to :data:`OPSETS` (the ML ops used exist unchanged in ml opset 3)."""
    imports = {o.domain: o.version for o in model.opset_import}
    if imports.get("", OPSETS[""]) > OPSETS[""] or imports.get("ai.onnx.ml", 0) > OPSETS["ai.onnx.ml"]:
        raise RuntimeError(f"skl2onnx produced opsets {imports}, newer than leanfit's {OPSETS}")
    imports.update(OPSETS)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in imports.items())


_REGISTERED = False


def _register_missing_indicator() -> None:
    """Teach skl2onnx ``MissingIndicator``: ``Cast(IsNaN(Gather(X, features_)), float)``."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxGather, OnnxIsNaN
    from skl2onnx.common.data_types import FloatTensorType

    def shape(operator: Any) -> None:
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = FloatTensorType([n, len(operator.raw_operator.features_)])

    def convert(scope: Any, operator: Any, container: Any) -> None:
        op, opv = operator.raw_operator, container.target_opset
        picked = OnnxGather(
            operator.inputs[0], np.array(op.features_, dtype=np.int64), axis=1, op_version=opv
        )
        flags = OnnxIsNaN(picked, op_version=opv)
        cast = OnnxCast(flags, to=TensorProto.FLOAT, op_version=opv, output_names=operator.outputs[:1])
        cast.add_to(scope, container)

    update_registered_converter(MissingIndicator, "LeanfitMissingIndicator", shape, convert)
    _REGISTERED = True
