"""Write an artifact: merge the preprocessing graph and the model graph into one ONNX file.

Training side only (imports onnx; the callers bring skl2onnx / torch graphs).
"""

from __future__ import annotations

import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx
from onnx import compose

from ..exceptions import ArtifactError
from .manifest import Manifest, write_manifest

__all__ = ["OPSETS", "library_versions", "merge_graphs", "output_specs", "write_artifact"]

#: Opsets every leanfit graph uses, so the pieces merge.
OPSETS = {"": 18, "ai.onnx.ml": 3}

_ONNX_TO_V2 = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.DOUBLE: "FP64",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.STRING: "BYTES",
    onnx.TensorProto.FLOAT16: "FP16",
}


def _normalise(model: onnx.ModelProto, ir_version: int) -> onnx.ModelProto:
    """A copy with one opset import per domain, leanfit's opsets, and no shape notes on its inputs/outputs.

    Quantizers add duplicate opset imports, and ``compose.add_prefix`` renames every
    ``value_info`` entry, so a note on an output (``quant_pre_process`` writes them) would
    rename the output itself.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    for domain, version in OPSETS.items():
        if versions.setdefault(domain, version) != version:
            raise ArtifactError(
                f"graph uses opset {versions[domain]} for domain {domain or 'ai.onnx'!r}; leanfit graphs use {version}"
            )
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in versions.items())
    io = {v.name for v in (*model.graph.input, *model.graph.output)}
    kept = [v for v in model.graph.value_info if v.name not in io]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    model.ir_version = ir_version
    return model


def merge_graphs(
    preprocessor: onnx.ModelProto, model: onnx.ModelProto, *, join: str = "features"
) -> onnx.ModelProto:
    """Join a preprocessing graph (raw columns -> ``join``) and a model graph (``join`` -> outputs).

    The result takes the raw columns and returns the model's outputs only.

    Example:
        >>> merged = merge_graphs(pre, net)        # doctest: +SKIP
        >>> [o.name for o in merged.graph.output]  # doctest: +SKIP
        ['label', 'probabilities']
    """
    ir = max(preprocessor.ir_version, model.ir_version, 9)
    pre = _normalise(preprocessor, ir)
    net = _normalise(model, ir)
    if join not in {o.name for o in pre.graph.output}:
        raise ArtifactError(f"the preprocessing graph has no output {join!r}")
    if join not in {i.name for i in net.graph.input}:
        raise ArtifactError(f"the model graph has no input {join!r}")
    pre = compose.add_prefix(pre, "pre/", rename_inputs=False, rename_outputs=False)
    net = compose.add_prefix(net, "net/", rename_inputs=False, rename_outputs=False)
    merged = compose.merge_models(pre, net, io_map=[(join, join)])
    keep = [o.name for o in net.graph.output]
    outputs = [o for o in merged.graph.output if o.name in keep]
    del merged.graph.output[:]
    merged.graph.output.extend(outputs)
    onnx.checker.check_model(merged)
    return merged


def output_specs(model: onnx.ModelProto) -> list[dict[str, Any]]:
    """Name, V2 datatype and shape (``-1`` for symbolic dimensions) of each graph output."""
    specs = []
    for out in model.graph.output:
        tensor = out.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        specs.append({"name": out.name, "datatype": _ONNX_TO_V2.get(tensor.elem_type, "FP32"), "shape": dims})
    return specs


def library_versions() -> dict[str, str]:
    """Versions of the libraries an artifact was made with."""
    out = {"python": platform.python_version()}
    for dist in ("leanfit", "numpy", "onnx", "onnxruntime", "scikit-learn", "skl2onnx", "torch", "optuna"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_artifact(directory: str | Path, graph: onnx.ModelProto, manifest: Manifest) -> Path:
    """Write ``model.onnx`` and a checksummed ``manifest.json`` into ``directory`` (replaced whole).

    The folder is written beside its final place and moved in at the end, so a crash
    never leaves a half-written artifact where a server would load it.
    """
    directory = Path(directory)
    staging = directory.with_name(directory.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    onnx.save_model(graph, str(staging / manifest.graph))
    if not manifest.outputs:
        manifest.outputs = output_specs(graph)
    if not manifest.versions:
        manifest.versions = library_versions()
    write_manifest(staging, manifest)
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return directory
