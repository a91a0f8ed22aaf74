"""Candidates: what each compression method makes from the run's model, as one merged graph each.

Training-free candidates (quantization, fp16) start from the deployed original and are
compared with it. Retrained candidates (pruning with fine-tuning, distillation) start from
the *reference*: the original's family, parameters and seed fitted on the train split only,
so that the validation split stays unseen by everything they learn from; their metric drop
is measured against the reference.

Example:
    >>> cands = quantized(ctx, net, parent="original", reference="original")   # doctest: +SKIP
    >>> [c.name for c in cands][:2]                                           # doctest: +SKIP
    ['dynamic-qint8', 'dynamic-quint8']
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from .._logging import get_logger
from ..evaluate import score
from ..evaluate.bench import Timing
from ..models import Family, fit_family
from .graphs import merge_candidate, mlp_to_onnx, quantizable_nodes, run_graph
from .prune import MagnitudePruner, StructuredPruner
from .quantize import DEFAULT_SPECS, QuantSpec, fallback, fp16_available, prepare_graph, quantize_graph
from .surgery import count_parameters

__all__ = [
    "Candidate",
    "Context",
    "magnitude_pruned",
    "pruned",
    "quantized",
    "reference_fit",
    "torch_candidate",
]

logger = get_logger(__name__)


@dataclass
class Candidate:
    """One compressed (or reference) model and everything measured about it."""

    name: str
    method: str
    params: dict[str, Any]
    graph: onnx.ModelProto | None = field(default=None, repr=False)
    net: onnx.ModelProto | None = field(default=None, repr=False)
    family: str = ""
    model_params: dict[str, Any] = field(default_factory=dict)
    reference: str = "original"
    parent: str | None = None
    eligible: bool = True
    why_not: str = ""
    parameters: int | None = None
    build_seconds: float = 0.0
    valid: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    valid_score: float = float("nan")
    reference_score: float = float("nan")
    drop: float = float("nan")
    timings: list[Timing] = field(default_factory=list)
    size_bytes: int = 0
    gzip_bytes: int = 0
    memory_bytes: int = 0
    status: str = ""
    reason: str = ""
    pareto: bool = False

    def latency(self, batch_size: int, threads: str) -> float:
        for t in self.timings:
            if t.batch_size == batch_size and t.threads == threads:
                return t.p50_us
        return float("nan")

    def throughput(self, batch_size: int, threads: str) -> float:
        for t in self.timings:
            if t.batch_size == batch_size and t.threads == threads:
                return t.throughput_rows_s
        return float("nan")


@dataclass
class Context:
    """Everything the builders share: data matrices, graphs, the metric and the tolerance."""

    family: Family
    params: dict[str, Any]
    seed: int
    task: str
    n_classes: int
    metric: str
    maximize: bool
    output: str
    pre_graph: onnx.ModelProto
    original_graph: onnx.ModelProto
    estimator: Any
    data: Any
    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    tolerance: float = 0.01
    device: str = "cpu"
    threads: int | str = "auto"
    notify: Callable[[str], None] = lambda message: None
    combo_specs: list[QuantSpec] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def score_output(self, output: np.ndarray) -> float:
        """The primary metric of outputs on the validation rows."""
        return float(score(self.metric, self.y_valid, output, task=self.task, n_classes=self.n_classes))

    def score_net(self, net: onnx.ModelProto) -> float:
        """The primary metric of a model graph (``features`` in) on the validation rows."""
        feeds = {net.graph.input[0].name: self.X_valid.astype(np.float32)}
        return self.score_output(run_graph(net, feeds, self.output))

    def drop(self, reference: float, value: float) -> float:
        return (reference - value) if self.maximize else (value - reference)

    def calibration(self, n: int = 512) -> np.ndarray:
        rows = np.random.default_rng(self.seed).permutation(len(self.X_train))[:n]
        return self.X_train[rows]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(), round(time.perf_counter() - start, 3)


def _failed(name: str, method: str, exc: BaseException, parent: str | None) -> Candidate:
    logger.warning("compression candidate %s failed: %s", name, exc)
    return Candidate(
        name, method, {}, parent=parent, eligible=False, why_not=f"failed: {exc}", status="failed"
    )


def quantized(
    ctx: Context,
    net: onnx.ModelProto,
    *,
    parent: str,
    reference: str,
    specs: Sequence[QuantSpec] | None = None,
    family: str | None = None,
    model_params: dict[str, Any] | None = None,
) -> list[Candidate]:
    """Quantized versions of a model graph; a version beyond tolerance also gets a float fallback."""
    if not quantizable_nodes(net):
        return []
    specs = list(specs if specs is not None else DEFAULT_SPECS)
    if not fp16_available():
        dropped = [s for s in specs if s.kind == "fp16"]
        specs = [s for s in specs if s.kind != "fp16"]
        if dropped:
            ctx.notes["fp16"] = "skipped: pip install onnxconverter-common to try fp16"
    prepared = prepare_graph(net)
    base_score = ctx.score_net(prepared)
    calibration = ctx.calibration()
    out: list[Candidate] = []
    for spec in specs:
        name = spec.name if parent == "original" else f"{parent}+{spec.name}"
        common: dict[str, Any] = {
            "family": family or ctx.family.name,
            "model_params": model_params if model_params is not None else dict(ctx.params),
            "reference": reference,
            "parent": parent,
        }
        try:
            graph, seconds = timed(functools.partial(quantize_graph, prepared, spec, calibration=calibration))
            drop = ctx.drop(base_score, ctx.score_net(graph))
            method = "fp16" if spec.kind == "fp16" else "quantize"
            out.append(
                Candidate(
                    name,
                    method,
                    spec.to_dict(),
                    merge_candidate(ctx.pre_graph, graph),
                    build_seconds=seconds,
                    **common,
                )
            )
            if drop > ctx.tolerance:
                found = fallback(
                    prepared,
                    spec,
                    lambda g: ctx.drop(base_score, ctx.score_net(g)),
                    ctx.tolerance,
                    X=ctx.X_valid,
                    output=ctx.output,
                    calibration=calibration,
                )
                if found is None:
                    logger.info("%s: no float fallback brings the drop within tolerance", name)
                    continue
                graph, trial, steps = found
                params = {**trial.to_dict(), "fallback_steps": steps}
                fname = trial.name if parent == "original" else f"{parent}+{trial.name}"
                out.append(Candidate(fname, method, params, merge_candidate(ctx.pre_graph, graph), **common))
        except Exception as exc:  # a quantizer failing on one graph must not end the stage
            out.append(_failed(name, "quantize", exc, parent))
    return out


def reference_fit(ctx: Context) -> tuple[Any, Candidate]:
    """The original's configuration fitted on the train split only: the baseline of retrained candidates."""
    estimator, seconds = timed(
        lambda: fit_family(
            ctx.family,
            dict(ctx.params),
            ctx.data,
            ctx.X_train,
            ctx.y_train,
            seed=ctx.seed,
            device=ctx.device,
            threads=ctx.threads,
        )
    )
    net = mlp_to_onnx(estimator, ctx.n_features) if ctx.family.name in ("mlp", "cnn") else None
    graph = merge_candidate(ctx.pre_graph, net or ctx.family.to_onnx(estimator, ctx.n_features))
    cand = Candidate(
        "reference",
        "reference",
        {"rows": "train"},
        graph,
        family=ctx.family.name,
        model_params=dict(ctx.params),
        reference="reference",
        eligible=False,
        why_not="reference: the original's configuration fitted on the train split only",
        build_seconds=seconds,
    )
    return estimator, cand


def torch_candidate(
    ctx: Context,
    name: str,
    method: str,
    params: dict[str, Any],
    estimator: Any,
    seconds: float,
    why_not: str = "",
) -> Candidate:
    student = method == "distill"
    net = mlp_to_onnx(estimator, ctx.n_features)
    return Candidate(
        name,
        method,
        params,
        merge_candidate(ctx.pre_graph, net),
        net=net,
        family="mlp" if student else ctx.family.name,
        model_params=_student_params(params) if student else dict(ctx.params),
        reference="reference",
        parent="reference",
        parameters=count_parameters(estimator.module_),
        build_seconds=seconds,
        why_not=why_not,
    )


def _student_params(params: dict[str, Any]) -> dict[str, Any]:
    return {"hidden": params["hidden"], "depth": params["depth"], "dropout": 0.0}


def combos(ctx: Context, cand: Candidate) -> list[Candidate]:
    if not ctx.combo_specs or cand.net is None:
        return []
    return quantized(
        ctx,
        cand.net,
        parent=cand.name,
        reference="reference",
        specs=ctx.combo_specs,
        family=cand.family,
        model_params=cand.model_params,
    )


def finetune_epochs(n_rows: int, *, row_passes: int = 400_000) -> int:
    """Fine-tuning epochs per pruning round: 20 on small data, fewer when an epoch is long.

    Example:
        >>> finetune_epochs(1_000), finetune_epochs(32_000), finetune_epochs(1_000_000)
        (20, 12, 3)
    """
    return int(min(20, max(3, row_passes // max(n_rows, 1))))


def pruned(
    ctx: Context, reference: Any, *, sparsities: Sequence[float] = (0.5, 0.75), steps: int = 2
) -> list[Candidate]:
    """Structured pruning of the reference (gradual, fine-tuned), each snapshot also quantized."""
    original = count_parameters(reference.module_)
    pruner, seconds = timed(
        lambda: StructuredPruner(
            sparsities=sparsities, steps=steps, epochs=finetune_epochs(len(ctx.X_train)), seed=ctx.seed
        ).fit(reference, ctx.X_train, ctx.y_train)
    )
    out: list[Candidate] = []
    for snap in pruner.snapshots_:
        params = {
            "sparsity": snap.sparsity,
            "importance": pruner.importance,
            "steps": pruner.steps,
            "widths": snap.widths,
            "parameters": snap.parameters,
            "original_parameters": original,
        }
        cand = torch_candidate(
            ctx, f"prune{round(snap.sparsity * 100)}", "prune", params, snap.estimator, seconds
        )
        out += [cand, *combos(ctx, cand)]
    return out


def magnitude_pruned(
    ctx: Context, reference: Any, *, sparsities: Sequence[float] = (0.5, 0.8)
) -> list[Candidate]:
    """Unstructured magnitude pruning (dense graph; the gain is only in the compressed file size)."""
    pruner, seconds = timed(
        lambda: MagnitudePruner(
            sparsities=sparsities, epochs=finetune_epochs(len(ctx.X_train)), seed=ctx.seed
        ).fit(reference, ctx.X_train, ctx.y_train)
    )
    return [
        torch_candidate(
            ctx,
            f"magnitude{round(s.sparsity * 100)}",
            "magnitude",
            {"sparsity": s.sparsity, "nonzero": s.nonzero, "parameters": s.parameters},
            s.estimator,
            seconds,
        )
        for s in pruner.snapshots_
    ]
