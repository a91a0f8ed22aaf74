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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .._logging import get_logger
from ..evaluate import score
from ..evaluate.bench import Timing
from ..models import Family, fit_family
from .distill import Distiller
from .graphs import merge_candidate, mlp_to_onnx, quantizable_nodes, run_graph
from .prune import MagnitudePruner, StructuredPruner
from .quantize import DEFAULT_SPECS, QuantSpec, fallback, fp16_available, prepare_graph, quantize_graph
from .surgery import count_parameters

__all__ = ["Candidate", "Context", "distilled", "magnitude_pruned", "pruned", "quantized", "reference_fit"]

logger = get_logger(__name__)

#: Student architectures (hidden width, depth) the distillation search tries.
STUDENTS: tuple[tuple[int, int], ...] = ((16, 1), (32, 1), (64, 1), (128, 1), (64, 2))


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


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
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
        common = {
            "family": family or ctx.family.name,
            "model_params": model_params if model_params is not None else dict(ctx.params),
            "reference": reference,
            "parent": parent,
        }
        try:
            graph, seconds = _timed(lambda spec=spec: quantize_graph(prepared, spec, calibration=calibration))
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
    estimator, seconds = _timed(
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


def _torch_candidate(
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


def _combos(ctx: Context, cand: Candidate) -> list[Candidate]:
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


def pruned(
    ctx: Context, reference: Any, *, sparsities: Sequence[float] = (0.5, 0.75), steps: int = 2
) -> list[Candidate]:
    """Structured pruning of the reference (gradual, fine-tuned), each snapshot also quantized."""
    original = count_parameters(reference.module_)
    pruner, seconds = _timed(
        lambda: StructuredPruner(sparsities=sparsities, steps=steps, seed=ctx.seed).fit(
            reference, ctx.X_train, ctx.y_train
        )
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
        cand = _torch_candidate(
            ctx, f"prune{round(snap.sparsity * 100)}", "prune", params, snap.estimator, seconds
        )
        out += [cand, *_combos(ctx, cand)]
    return out


def magnitude_pruned(
    ctx: Context, reference: Any, *, sparsities: Sequence[float] = (0.5, 0.8)
) -> list[Candidate]:
    """Unstructured magnitude pruning (dense graph; the gain is only in the compressed file size)."""
    pruner, seconds = _timed(
        lambda: MagnitudePruner(sparsities=sparsities, seed=ctx.seed).fit(reference, ctx.X_train, ctx.y_train)
    )
    return [
        _torch_candidate(
            ctx,
            f"magnitude{round(s.sparsity * 100)}",
            "magnitude",
            {"sparsity": s.sparsity, "nonzero": s.nonzero, "parameters": s.parameters},
            s.estimator,
            seconds,
        )
        for s in pruner.snapshots_
    ]


def _student_settings(n_rows: int) -> dict[str, Any]:
    """Training settings that keep distillation within minutes on large data."""
    big = n_rows > 10_000
    return {
        "batch_size": 512 if big else 128,
        "max_epochs": 40 if big else 80,
        "patience": 5 if big else 8,
        "max_rows": 60_000,
    }


def distilled(
    ctx: Context,
    teacher: Callable[[np.ndarray], np.ndarray],
    *,
    students: Sequence[tuple[int, int]] = STUDENTS,
    temperature: float = 2.0,
    alpha: float = 0.5,
    reference_score: float,
) -> list[Candidate]:
    """Distill into small MLP students; keep a student only if it beats plain training of itself.

    The search distills every architecture in ``students`` and picks two: the smallest within
    the tolerance of the reference (else the most accurate) and the most accurate. Each pick
    is trained plainly too (the control); both are reported, and the distilled one carries
    the verdict.
    """
    settings = _student_settings(len(ctx.X_train))
    search: list[dict[str, Any]] = []
    fitted: dict[tuple[int, int], tuple[Distiller, float, float]] = {}
    for hidden, depth in students:
        d, seconds = _timed(
            lambda h=hidden, k=depth: Distiller(
                hidden=h, depth=k, temperature=temperature, alpha=alpha, seed=ctx.seed, **settings
            ).fit(teacher, ctx.X_train, ctx.y_train, task=ctx.task, n_classes=ctx.n_classes)
        )
        valid = ctx.score_output(_predict(d.student_, ctx))
        fitted[hidden, depth] = (d, valid, seconds)
        search.append({"hidden": hidden, "depth": depth, "valid": round(valid, 6), "seconds": seconds})
    ctx.notes["distill_search"] = search

    def size(arch: tuple[int, int]) -> int:
        return count_parameters(fitted[arch][0].student_.module_)

    within = [a for a in fitted if ctx.drop(reference_score, fitted[a][1]) <= ctx.tolerance]
    most_accurate = max(fitted, key=lambda a: fitted[a][1] if ctx.maximize else -fitted[a][1])
    picks = list(dict.fromkeys([min(within, key=size) if within else most_accurate, most_accurate]))
    out: list[Candidate] = []
    for arch in picks:
        d, valid, seconds = fitted[arch]
        control, c_seconds = _timed(
            lambda a=arch: Distiller(
                hidden=a[0], depth=a[1], alpha=0.0, augment=0.0, seed=ctx.seed, **settings
            ).fit(None, ctx.X_train, ctx.y_train, task=ctx.task, n_classes=ctx.n_classes)
        )
        c_valid = ctx.score_output(_predict(control.student_, ctx))
        wins = (valid > c_valid) if ctx.maximize else (valid < c_valid)
        name = f"distill-h{arch[0]}x{arch[1]}"
        params = {**d.get_params(), "rows": d.rows_, "control_valid": round(c_valid, 6)}
        verdict = (
            ""
            if wins
            else f"distillation lost to plain training of the same student ({valid:.4f} vs {c_valid:.4f})"
        )
        cand = _torch_candidate(ctx, name, "distill", params, d.student_, seconds, why_not=verdict)
        ctrl = _torch_candidate(
            ctx, f"plain-h{arch[0]}x{arch[1]}", "distill", control.get_params(), control.student_, c_seconds
        )
        ctrl.method, ctrl.eligible = "control", False
        ctrl.why_not = f"control: plain training of {name}'s student, no teacher"
        out += [cand, ctrl]
        if wins:
            out += _combos(ctx, cand)
    return out


def _predict(estimator: Any, ctx: Context) -> np.ndarray:
    from ..models import get_family

    return np.asarray(get_family("mlp").predict_output(estimator, ctx.X_valid), dtype=np.float64)


def with_name(cand: Candidate, name: str) -> Candidate:
    """A copy of a candidate under another name."""
    return replace(cand, name=name)


def candidate_dir(root: Path, name: str) -> Path:
    """The folder of a candidate's artifact under ``candidates/``."""
    return root / "candidates" / name
