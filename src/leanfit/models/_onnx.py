"""Helpers that bring every family's ONNX graph to the one contract.

One input ``features`` (``float [N, F]``); outputs ``label`` (``int64 [N]``) and
``probabilities`` (``float [N, C]``) for classification, or ``prediction``
(``float [N]``) for regression; opsets exactly ``ai.onnx`` 18 and ``ai.onnx.ml`` 3,
IR version 10, so the graph merges with the preprocessing graph
(``onnx.compose.merge_models``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..exceptions import ArtifactError

__all__ = [
    "BATCH_DIM",
    "INPUT_NAME",
    "IR_VERSION",
    "TARGET_OPSET",
    "finish",
    "flatten_output",
    "quiet_torch_export",
    "rename_output",
    "set_opsets",
    "skl_to_onnx",
]

INPUT_NAME = "features"
BATCH_DIM = "N"
TARGET_OPSET: dict[str, int] = {"": 18, "ai.onnx.ml": 3}
IR_VERSION = 10


def skl_to_onnx(estimator: Any, n_features: int, *, classifier: bool) -> onnx.ModelProto:
    """Convert a fitted scikit-learn estimator with skl2onnx and :func:`finish` the graph.

    Example:
        >>> import numpy as np
        >>> from sklearn.linear_model import Ridge
        >>> model = skl_to_onnx(Ridge().fit(np.eye(3), [0.0, 1.0, 2.0]), 3, classifier=False)
        >>> [o.name for o in model.graph.output]
        ['prediction']
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(estimator): {"zipmap": False}} if classifier else None
    model = convert_sklearn(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=dict(TARGET_OPSET),
        options=options,
    )
    return finish(model, classifier=classifier)


def rename_output(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename the graph output ``old`` to ``new`` everywhere it appears, in place."""
    if old == new:
        return
    graph = model.graph
    for node in graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
    for value in [*graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new


def flatten_output(model: onnx.ModelProto, old: str, new: str) -> None:
    """Replace the ``[N, 1]`` graph output ``old`` by a 1-D output ``new`` of shape ``[N]``, in place."""
    graph = model.graph
    shape_name = f"{new}_flat_shape"
    graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), shape_name))
    graph.node.append(helper.make_node("Reshape", [old, shape_name], [new], name=f"{new}_flatten"))
    (output,) = [o for o in graph.output if o.name == old]
    elem_type = output.type.tensor_type.elem_type
    graph.output.remove(output)
    graph.output.append(helper.make_tensor_value_info(new, elem_type, [BATCH_DIM]))


def _set_shape(value: onnx.ValueInfoProto, elem_type: int, dims: list[int | str]) -> None:
    value.CopyFrom(helper.make_tensor_value_info(value.name, elem_type, dims))


def set_opsets(model: onnx.ModelProto) -> None:
    """Set the opset imports to exactly :data:`TARGET_OPSET` and the IR version to 10, in place.

    Graphs built for older ``ai.onnx.ml`` versions (skl2onnx asks for the lowest that works)
    stay valid: ``ai.onnx.ml`` 3 only added tensor-valued attributes to the tree ensembles.
    """
    if len(model.functions):
        raise ArtifactError(
            f"the model graph holds local functions ({', '.join(f.name for f in model.functions)}); "
            "inline them before export."
        )
    used = {node.domain for node in model.graph.node}
    unknown = used - set(TARGET_OPSET) - {"ai.onnx"}
    if unknown:
        raise ArtifactError(
            f"the model graph uses operator domains {sorted(unknown)} outside {TARGET_OPSET}."
        )
    del model.opset_import[:]
    model.opset_import.extend(
        helper.make_opsetid(domain, version) for domain, version in TARGET_OPSET.items()
    )
    model.ir_version = IR_VERSION


def finish(model: onnx.ModelProto, *, classifier: bool) -> onnx.ModelProto:
    """Bring a converted graph to the contract (names, shapes, opsets) and check it.

    Classification graphs must already output a label and a probability matrix (in that
    order); regression graphs one ``[N]`` or ``[N, 1]`` tensor.
    """
    graph = model.graph
    if len(graph.input) != 1:
        raise ArtifactError(f"a model graph must have one input {INPUT_NAME!r}; got {len(graph.input)}.")
    _set_shape(graph.input[0], TensorProto.FLOAT, [BATCH_DIM, _static_dim(graph.input[0], 1)])
    rename_output(model, graph.input[0].name, INPUT_NAME)
    graph.input[0].name = INPUT_NAME
    outputs = [o.name for o in graph.output]
    if classifier:
        if len(outputs) != 2:
            raise ArtifactError(
                f"a classifier graph must have 2 outputs (label, probabilities); got {outputs}."
            )
        rename_output(model, outputs[0], "label")
        rename_output(model, outputs[1], "probabilities")
        label, proba = graph.output
        n_classes = _static_dim(proba, 1)
        if len(label.type.tensor_type.shape.dim) == 2:
            flatten_output(model, "label", "label_flat")
            rename_output(model, "label_flat", "label")
            label = next(o for o in graph.output if o.name == "label")
        if label.type.tensor_type.elem_type != TensorProto.INT64:
            raise ArtifactError("the label output must be int64 class codes.")
        _set_shape(label, TensorProto.INT64, [BATCH_DIM])
        _set_shape(proba, TensorProto.FLOAT, [BATCH_DIM, n_classes])
        # Keep the order label, probabilities.
        by_name = {o.name: o for o in graph.output}
        ordered = [onnx.ValueInfoProto(), onnx.ValueInfoProto()]
        ordered[0].CopyFrom(by_name["label"])
        ordered[1].CopyFrom(by_name["probabilities"])
        del graph.output[:]
        graph.output.extend(ordered)
    else:
        if len(outputs) != 1:
            raise ArtifactError(f"a regressor graph must have 1 output; got {outputs}.")
        (output,) = graph.output
        if len(output.type.tensor_type.shape.dim) == 2:
            flatten_output(model, outputs[0], "prediction")
        else:
            rename_output(model, outputs[0], "prediction")
        _set_shape(graph.output[0], TensorProto.FLOAT, [BATCH_DIM])
    set_opsets(model)
    onnx.checker.check_model(model, full_check=True)
    return model


def _static_dim(value: onnx.ValueInfoProto, axis: int) -> int:
    dims = value.type.tensor_type.shape.dim
    if len(dims) <= axis or not dims[axis].HasField("dim_value"):
        raise ArtifactError(f"graph value {value.name!r} needs a static size on axis {axis}.")
    return int(dims[axis].dim_value)


@contextlib.contextmanager
def quiet_torch_export() -> Iterator[None]:
    """Quiet the exporter while it runs; restore every setting after.

    ``torch.onnx`` logs a warning per missing torchvision operator, its graph passes
    (``onnx_ir``, ``onnxscript``) log at INFO, and torch's internals raise deprecation notes
    (e.g. a ``LeafSpec`` ``FutureWarning`` from ``copyreg``) that carry nothing a user can act
    on and would fail a ``-W error`` run.
    """
    levels = {"torch.onnx": logging.ERROR, "onnx_ir": logging.WARNING, "onnxscript": logging.WARNING}
    loggers = {name: logging.getLogger(name) for name in levels}
    previous = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(max(levels[name], logger.getEffectiveLevel()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(previous[name])
