"""``compress_run``: make every candidate, evaluate and benchmark it, choose, and write the run folder.

Steps, in order:

1. read the run (recipe, splits, the original artifact; refit the original's configuration
   deterministically when the caller has no in-memory model);
2. build candidates per method (:mod:`leanfit.compress.candidates`), each a merged graph
   with the original's raw-column inputs and outputs;
3. evaluate each on the validation split (test reported, never used to choose);
4. benchmark all of them side by side with ONNX Runtime (:func:`leanfit.evaluate.bench.measure`);
5. select (:func:`leanfit.compress.select.select`), then write ``compression.csv``,
   ``candidates/<name>/`` artifacts (the original as ``candidates/original/``) and, when a
   candidate wins, replace ``model/`` with it; ``model/manifest.json`` records the decision.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from .._logging import get_logger
from .._threads import limit_threads, resolve_threads
from ..artifacts import Manifest, read_manifest, verify
from ..data import Prepared, build_preprocessor, prepare, preprocessor_to_onnx, to_feature_matrix
from ..evaluate import compute_metrics, primary_metric, score
from ..evaluate.metrics import GREATER_IS_BETTER
from ..exceptions import ArtifactError, LeanfitError
from ..models import fit_family, get_family
from ..recipe import CompressConfig, Recipe, load_recipe
from ..schema import to_feeds
from . import candidates as build
from .candidates import Candidate, Context
from .graphs import check_signature, mlp_to_onnx, quantizable_nodes, run_graph, session
from .outputs import benchmark_candidates, decide_and_write
from .quantize import QuantSpec
from .result import CompressionResult
from .select import resolve_tolerance
from .students import distilled

if TYPE_CHECKING:
    from ..pipeline import Refit

__all__ = ["compress_run"]

logger = get_logger(__name__)

DEFAULT_METHODS = ("quantize", "prune", "distill")
TORCH_FAMILIES = ("mlp", "cnn")


@dataclass
class _Refitted:
    """The original's configuration refitted on the development rows (what the pipeline's Refit holds)."""

    family: str
    params: dict[str, Any]
    seed: int
    preprocessor: Any
    estimator: Any


def _check_run_dir(run_dir: Path, need_recipe: bool) -> None:
    need = ["model/manifest.json", "metrics.json"] + (["recipe.yaml"] if need_recipe else [])
    missing = [rel for rel in need if not (run_dir / rel).is_file()]
    if not run_dir.is_dir() or missing:
        raise ArtifactError(
            f"{run_dir}: not a run folder ({'no such folder' if not run_dir.is_dir() else 'missing ' + ', '.join(missing)}). "
            "Point at runs/<name>, made by `leanfit run`."
        )


def _original_dir(run_dir: Path) -> Path:
    """``model/`` unless an earlier compression replaced it; then ``candidates/original/``.

    A fresh ``leanfit run`` rewrites ``model/`` without a ``compression`` section, so a stale
    ``candidates/original/`` from an earlier run of the same name is never mistaken for it.
    """
    kept = run_dir / "candidates" / "original"
    if "compression" in read_manifest(run_dir / "model").extra and (kept / "manifest.json").is_file():
        return kept
    return run_dir / "model"


def _refit(recipe: Recipe, prepared: Prepared, manifest: Manifest, metrics: dict[str, Any]) -> _Refitted:
    if manifest.family is None or "best_trial" not in metrics:
        raise ArtifactError(
            "the run's manifest names no family or metrics.json no best_trial; re-run `leanfit run`"
        )
    family, data = get_family(manifest.family), prepared.data
    seed = recipe.seed + int(metrics["best_trial"])
    dev_rows = data.X.iloc[prepared.dev]
    pre = build_preprocessor(data.columns, scale=family.scale).fit(dev_rows)
    estimator = fit_family(
        family,
        dict(manifest.params),
        data,
        to_feature_matrix(pre, dev_rows),
        data.y[prepared.dev],
        seed=seed,
        device=recipe.train.device,
        threads=recipe.train.threads,
    )
    return _Refitted(manifest.family, dict(manifest.params), seed, pre, estimator)


def compress_run(
    run_dir: str | Path,
    *,
    overrides: Iterable[str] = (),
    recipe: Recipe | None = None,
    prepared: Prepared | None = None,
    refit: Refit | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> CompressionResult:
    """Quantize, prune and distill a run's model; keep a candidate only if it measurably wins.

    Args:
        run_dir: a run folder (``runs/<name>``) made by :func:`leanfit.run`.
        overrides: ``a.b=c`` strings applied to the recipe (``compress.tolerance=0.02``).
        recipe, prepared, refit: what the pipeline already has in memory; when missing they
            are rebuilt from the run folder (the refit is deterministic; nothing is unpickled).
        progress: called with ``{"stage": "compress", "message": ...}`` events.

    Raises:
        ArtifactError: ``run_dir`` is not a run folder or a file fails its checksum.

    Example:
        >>> result = compress_run("runs/digits", overrides=["compress.target.batch_size=1024"])  # doctest: +SKIP
        >>> result.chosen                                                                       # doctest: +SKIP
        'prune50+static-minmax'
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, need_recipe=recipe is None)

    def notify(message: str) -> None:
        logger.info("compress: %s", message)
        if progress is not None:
            progress({"stage": "compress", "message": message})

    recipe = load_recipe(recipe if recipe is not None else run_dir / "recipe.yaml", overrides)
    config = recipe.compress or CompressConfig()
    prepared = prepared or prepare(recipe)
    original_dir = _original_dir(run_dir)
    manifest = verify(original_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    if refit is None:
        notify(f"refitting {manifest.family} on the development rows")
        refitted: Any = _refit(recipe, prepared, manifest, metrics)
    else:
        refitted = refit
    original_graph = onnx.load_model(str(original_dir / manifest.graph))
    with limit_threads(resolve_threads(recipe.train.threads, len(prepared.train))):
        cands, ctx, sel_notes = _build_and_measure(
            recipe, config, prepared, refitted, original_graph, metrics, notify
        )
    result = decide_and_write(run_dir, original_dir, manifest, config, ctx, cands, sel_notes, notify)
    result.seconds = time.perf_counter() - started
    metrics["compression"] = result.to_dict()
    _write_json(run_dir / "metrics.json", metrics)
    notify(f"chosen: {result.chosen} ({result.chosen_row['reason']})")
    return result


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(data), indent=2, default=str, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


def _finite(value: Any) -> Any:
    """NaN and infinities become null, so the JSON is strict (as the pipeline writes it)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _methods(config: CompressConfig, ctx: Context, net: onnx.ModelProto) -> tuple[list[str], dict[str, str]]:
    family = ctx.family.name
    why: dict[str, str] = {}
    if not quantizable_nodes(net):
        why["quantize"] = (
            f"the {family} graph has no MatMul, Gemm or Conv to quantize; distilled students are quantized instead"
        )
    if family not in TORCH_FAMILIES:
        why["prune"] = why["magnitude"] = f"pruning needs a torch network (mlp, cnn); the model is {family}"
    wanted = list(config.methods) if config.methods is not None else list(DEFAULT_METHODS)
    skipped = {m: why[m] for m in wanted if m in why}
    return [m for m in wanted if m not in why], skipped


def _build_and_measure(
    recipe: Recipe,
    config: CompressConfig,
    prepared: Prepared,
    refit: Any,
    original_graph: onnx.ModelProto,
    metrics: dict[str, Any],
    notify: Callable[[str], None],
) -> tuple[list[Candidate], Context, dict[str, Any]]:
    data = prepared.data
    task, n_classes = data.task, len(data.classes)
    metric = str(metrics.get("metric") or primary_metric(task, n_classes, recipe.search.metric))
    family = get_family(refit.family)
    pre = refit.preprocessor
    rows = {name: data.X.iloc[getattr(prepared, name)] for name in ("train", "valid", "test")}
    ctx = Context(
        family=family,
        params=dict(refit.params),
        seed=int(refit.seed),
        task=task,
        n_classes=n_classes,
        metric=metric,
        maximize=GREATER_IS_BETTER[metric],
        output="probabilities" if task == "classification" else "prediction",
        pre_graph=preprocessor_to_onnx(pre, data.columns),
        original_graph=original_graph,
        estimator=refit.estimator,
        data=data,
        X_train=to_feature_matrix(pre, rows["train"]),
        y_train=data.y[prepared.train],
        X_valid=to_feature_matrix(pre, rows["valid"]),
        y_valid=data.y[prepared.valid],
        device=recipe.train.device,
        threads=recipe.train.threads,
        notify=notify,
    )
    feeds = {name: to_feeds(rows[name], data.columns) for name in ("valid", "test")}
    y = {"valid": ctx.y_valid, "test": data.y[prepared.test]}
    _check_refit(ctx, original_graph, feeds["test"], to_feature_matrix(pre, rows["test"]))

    original = Candidate(
        "original", "original", {}, original_graph, family=family.name, model_params=ctx.params
    )
    _evaluate(ctx, original, feeds, y)
    if original.status == "failed" or not np.isfinite(original.valid_score):
        raise LeanfitError(
            f"cannot score the original model on the validation split ({original.why_not or metric + ' is undefined'}); "
            "nothing to compare candidates with"
        )
    ctx.tolerance = resolve_tolerance(config.tolerance, original.valid_score)
    net = (
        mlp_to_onnx(refit.estimator, ctx.n_features)
        if family.name in TORCH_FAMILIES
        else family.to_onnx(refit.estimator, ctx.n_features)
    )
    methods, skipped = _methods(config, ctx, net)
    notes: dict[str, Any] = {"methods": methods, "skipped": skipped}
    cands = [original]

    def add(new: list[Candidate]) -> None:
        for cand in new:
            if cand.graph is not None and cand.status != "failed":
                _evaluate(ctx, cand, feeds, y)
        cands.extend(new)

    if "quantize" in methods:
        notify("quantizing (dynamic int8, static int8 QDQ, fp16)")
        add(build.quantized(ctx, net, parent="original", reference="original"))
        ctx.combo_specs = _combo_specs(cands, ctx.maximize)
    elif "distill" in methods:
        ctx.combo_specs = [QuantSpec("dynamic"), QuantSpec("static")]
    retrained = [m for m in methods if m in ("prune", "magnitude", "distill")]
    if retrained:
        notify("fitting the reference (the original's configuration on the train split)")
        reference_est, reference = build.reference_fit(ctx)
        add([reference])
        if "prune" in methods:
            notify("structured pruning with fine-tuning")
            add(build.pruned(ctx, reference_est))
        if "magnitude" in methods:
            notify("unstructured magnitude pruning")
            add(build.magnitude_pruned(ctx, reference_est))
        if "distill" in methods:
            notify("distilling into MLP students (with plain-training controls)")

            def teacher(X: np.ndarray) -> np.ndarray:
                return np.asarray(family.predict_output(reference_est, X), dtype=np.float64)

            add(distilled(ctx, teacher, reference_score=reference.valid_score))
    for cand in cands:
        ref = original if cand.reference == "original" else next(c for c in cands if c.name == "reference")
        cand.reference_score = ref.valid_score
        cand.drop = ctx.drop(ref.valid_score, cand.valid_score)
    notify(f"benchmarking {sum(c.graph is not None for c in cands)} candidates side by side")
    benchmark_candidates(cands, config, rows["valid"], data.columns, notes)
    notes.update({k: v for k, v in ctx.notes.items()})
    return cands, ctx, notes


def _check_refit(
    ctx: Context, original_graph: onnx.ModelProto, feeds: dict[str, np.ndarray], X: np.ndarray
) -> None:
    """Warn when the in-memory model does not reproduce the stored original (e.g. a non-deterministic refit)."""
    if len(X) == 0:
        return
    stored = run_graph(original_graph, feeds, ctx.output)
    memory = np.asarray(ctx.family.predict_output(ctx.estimator, X), dtype=np.float64).reshape(stored.shape)
    scale = 1.0 if ctx.task == "classification" else max(1.0, float(np.abs(stored).max()))
    diff = float(np.abs(stored - memory).max()) / scale
    ctx.notes["refit_max_abs_diff"] = diff
    if diff > 1e-3:
        logger.warning(
            "the refitted %s differs from the stored model by %.2e on the test rows; candidates derive from the refit",
            ctx.family.name,
            diff,
        )


def _combo_specs(cands: list[Candidate], maximize: bool) -> list[QuantSpec]:
    """Dynamic int8, plus the static spec that lost least on the original: what retrained candidates get."""
    static = [
        c
        for c in cands
        if c.method == "quantize"
        and c.parent == "original"
        and c.params.get("kind") == "static"
        and "float_nodes" not in c.params
        and c.status != "failed"
    ]
    specs = [QuantSpec("dynamic")]
    if static:
        best = max(static, key=lambda c: c.valid_score if maximize else -c.valid_score)
        p = best.params
        specs.append(
            QuantSpec(
                "static",
                method=p.get("method", "minmax"),
                activation_type=p.get("activation_type", "qint8"),
                per_channel=bool(p.get("per_channel", False)),
            )
        )
    return specs


def _evaluate(
    ctx: Context, cand: Candidate, feeds: dict[str, dict[str, np.ndarray]], y: dict[str, np.ndarray]
) -> None:
    try:
        assert cand.graph is not None
        check_signature(cand.graph, ctx.original_graph, name=cand.name)
        sess = session(cand.graph)
        for split in ("valid", "test"):
            out = run_graph(sess, feeds[split], ctx.output)
            values = compute_metrics(y[split], out, task=ctx.task, n_classes=ctx.n_classes)
            setattr(cand, split, values)
            if split == "valid":
                cand.valid_score = float(
                    score(ctx.metric, y[split], out, task=ctx.task, n_classes=ctx.n_classes)
                )
    except (LeanfitError, ValueError, RuntimeError, AssertionError) as exc:
        logger.warning("candidate %s cannot be evaluated: %s", cand.name, exc)
        cand.status, cand.eligible, cand.why_not = "failed", False, f"failed: {exc}"
