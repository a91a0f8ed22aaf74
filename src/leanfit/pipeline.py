"""Run a recipe end to end: data -> search -> refit -> evaluate -> export -> run folder.

Example:
    >>> import leanfit
    >>> result = leanfit.run({"data": {"source": "sklearn:iris"}, "search": {"trials": 4}}, out="runs")  # doctest: +SKIP
    >>> result.metrics["test"]["accuracy"] > 0.9                                                        # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import yaml

from ._logging import get_logger
from .artifacts import Manifest, load, reference_statistics
from .artifacts.export import merge_graphs, write_artifact
from .data import Dataset, Prepared, build_preprocessor, prepare, preprocessor_to_onnx, to_feature_matrix
from .evaluate import compute_metrics, metric_direction, primary_metric
from .exceptions import LeanfitError
from .models import cap_epochs, fit_family, get_family
from .recipe import Recipe, load_recipe
from .search import Search, finished_count, leaderboard
from .search.objective import Objective

__all__ = ["Refit", "RunResult", "export_graph", "run", "write_model"]

logger = get_logger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]
#: Largest allowed gap between ONNX Runtime and in-memory probabilities/predictions.
PARITY_TOLERANCE = 1e-4


@dataclass
class Refit:
    """The chosen configuration refitted on the development rows, with its exported graph."""

    family: str
    params: dict[str, Any]
    seed: int
    preprocessor: Any
    estimator: Any
    graph: Any
    metrics: dict[str, Any]
    dev_rows: pd.DataFrame = field(repr=False)


@dataclass
class RunResult:
    """What :func:`run` produced."""

    run_dir: Path
    recipe: Recipe
    family: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    leaderboard: pd.DataFrame = field(repr=False)

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"


def _metric(recipe: Recipe, prepared: Prepared) -> str:
    return primary_metric(prepared.data.task, len(prepared.data.classes), recipe.search.metric)


def _objective(recipe: Recipe, prepared: Prepared) -> Objective:
    return Objective(
        prepared.data,
        prepared.folds,
        families=recipe.search.families,
        metric=_metric(recipe, prepared),
        seed=recipe.seed,
        max_epochs=recipe.train.max_epochs,
        device=recipe.train.device,
        threads=recipe.train.threads,
    )


def _objective_from_dict(recipe_data: dict[str, Any]) -> Objective:
    recipe = Recipe.model_validate(recipe_data)
    return _objective(recipe, prepare(recipe))


def _enqueued(recipe: Recipe, task: str) -> list[dict[str, Any]]:
    """Fixed trials to run first: each family's grid (grid sampler) or its defaults."""
    out: list[dict[str, Any]] = []
    for name in recipe.search.families:
        family = get_family(name)
        configs = family.grid(task) if recipe.search.sampler == "grid" else [family.defaults(task)]
        out.extend({"family": name, **{f"{name}__{k}": v for k, v in cfg.items()}} for cfg in configs)
    return out


def _params_of(trial: optuna.trial.FrozenTrial) -> tuple[str, dict[str, Any]]:
    name = str(trial.params["family"])
    prefix = f"{name}__"
    return name, {k.removeprefix(prefix): v for k, v in trial.params.items() if k.startswith(prefix)}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


def run(
    recipe: str | os.PathLike[str] | Mapping[str, Any] | Recipe | None = None,
    *,
    out: str | os.PathLike[str] = "runs",
    overrides: Iterable[str] = (),
    progress: ProgressFn | None = None,
) -> RunResult:
    """Run a recipe: search, refit the best model, evaluate it on the test split and export it.

    Re-running the same recipe resumes its study: finished trials are kept and only
    the missing ones run.

    Args:
        recipe: a YAML path, a mapping, a :class:`~leanfit.Recipe`, or None for the bundled demo.
        out: parent folder of run folders; the run goes to ``out/<recipe.name>``.
        overrides: ``a.b=c`` strings applied to the recipe.
        progress: called with event dicts (``stage``, ``done``, ``total``, ``best``...); the CLI draws them.

    Example:
        >>> leanfit.run("recipe.yaml", overrides=["search.trials=10"])   # doctest: +SKIP
    """
    started = time.perf_counter()
    notify = progress or (lambda event: None)
    resolved = load_recipe(recipe, overrides)
    run_dir = Path(out) / resolved.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.yaml").write_text(
        yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )

    notify({"stage": "data", "message": f"loading {resolved.data.source}"})
    prepared = prepare(resolved)
    data = prepared.data
    metric = _metric(resolved, prepared)
    _write_json(run_dir / "data_report.json", data.quality.to_dict())
    notify(
        {
            "stage": "data",
            "message": f"{len(data.y)} rows, {len(data.columns)} features, {data.task}"
            + (f", {len(data.classes)} classes" if data.classes else "")
            + f"; selecting on {metric} with "
            + (f"{len(prepared.folds)}-fold CV" if len(prepared.folds) > 1 else "a validation split"),
        }
    )

    s = resolved.search
    storage = s.storage or f"sqlite:///{(run_dir / 'study.db').resolve()}"
    search = Search(
        sampler=s.sampler,
        pruner=s.pruner,
        direction=metric_direction(metric),
        storage=storage,
        study_name=resolved.name,
        seed=resolved.seed,
        enqueue=_enqueued(resolved, data.task),
    )
    n_trials = s.trials
    if s.sampler == "grid":
        n_trials = min(n_trials or len(search.enqueue), len(search.enqueue))

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = finished_count(study)
        try:
            best = study.best_value
        except ValueError:
            best = None
        notify(
            {
                "stage": "search",
                "done": done,
                "total": n_trials,
                "best": best,
                "trial": trial.number,
                "state": trial.state.name,
                "family": trial.params.get("family"),
                "value": trial.value,
                "error": trial.user_attrs.get("error"),
            }
        )

    notify({"stage": "search", "done": 0, "total": n_trials, "best": None, "timeout": s.timeout})
    study = search.run(
        _objective(resolved, prepared),
        n_trials=n_trials,
        timeout=s.timeout,
        n_jobs=s.n_jobs,
        callbacks=[on_trial],
        objective_factory=functools.partial(_objective_from_dict, resolved.model_dump(mode="json")),
    )
    board = leaderboard(study)
    board.to_csv(run_dir / "leaderboard.csv", index=False)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        errors = sorted({str(e) for e in board["error"].dropna()})[:3]
        raise LeanfitError(
            f"no trial finished in study {resolved.name!r}; see {run_dir / 'leaderboard.csv'}. "
            + (f"Errors: {'; '.join(errors)}" if errors else "Give the search more time (search.timeout).")
        )

    best = study.best_trial
    name, params = _params_of(best)
    if get_family(name).iterative:
        params = cap_epochs(params, resolved.train.max_epochs)
    notify({"stage": "refit", "message": f"refitting {name} (trial {best.number}) on train+valid"})
    refit = _refit_and_export(resolved, prepared, metric, name, params, best)
    metrics = refit.metrics
    metrics.update(
        {
            "best_trial": best.number,
            "validation": {metric: round(float(best.value or 0.0), 6)},
            "n_trials": {
                state: int((board["state"] == state).sum()) for state in ("COMPLETE", "PRUNED", "FAIL")
            },
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    write_model(run_dir / "model", resolved, data, refit)
    _check_parity(run_dir / "model", prepared, metrics)
    _write_json(run_dir / "metrics.json", metrics)
    if resolved.compress is not None:
        from .compress import compress_run

        notify({"stage": "compress", "message": "compressing the best model"})
        compressed = compress_run(run_dir, recipe=resolved, prepared=prepared, refit=refit, progress=notify)
        metrics["compression"] = compressed.to_dict()
    notify({"stage": "done", "run_dir": str(run_dir), "metrics": metrics})
    return RunResult(run_dir, resolved, name, params, metrics, board)


def write_model(directory: Path, recipe: Recipe, data: Dataset, refit: Refit) -> Path:
    """Write a refitted model as an artifact: its merged graph plus a manifest with schema,
    classes, metrics, drift reference (from the development rows) and the recipe.

    Example:
        >>> write_model(Path("runs/x/model"), recipe, prepared.data, refit)   # doctest: +SKIP
    """
    manifest = Manifest(
        name=recipe.name,
        task=data.task,
        inputs=list(data.columns),
        outputs=[],
        classes=list(data.classes),
        target=data.target,
        family=refit.family,
        params=refit.params,
        metrics=refit.metrics,
        reference=reference_statistics(refit.dev_rows, data.columns),
        recipe=recipe.model_dump(mode="json"),
    )
    return write_artifact(directory, refit.graph, manifest)


def export_graph(preprocessor: Any, estimator: Any, family: str, data: Dataset, n_features: int) -> Any:
    """One ONNX graph from raw columns to outputs: the preprocessing graph merged with the model's."""
    net = get_family(family).to_onnx(estimator, n_features)
    return merge_graphs(preprocessor_to_onnx(preprocessor, data.columns), net)


def _refit_and_export(
    recipe: Recipe,
    prepared: Prepared,
    metric: str,
    name: str,
    params: dict[str, Any],
    best: optuna.trial.FrozenTrial,
) -> Refit:
    """Refit the chosen configuration on the development rows, score it, and build its graph."""
    data, family = prepared.data, get_family(name)
    dev_rows = data.X.iloc[prepared.dev]
    pre = build_preprocessor(data.columns, scale=family.scale)
    pre.fit(dev_rows)
    X_dev = to_feature_matrix(pre, dev_rows)
    X_test = to_feature_matrix(pre, data.X.iloc[prepared.test])
    seed = recipe.seed + best.number
    estimator = fit_family(
        family,
        params,
        data,
        X_dev,
        data.y[prepared.dev],
        seed=seed,
        device=recipe.train.device,
        threads=recipe.train.threads,
    )
    n_classes = len(data.classes)
    test_out = family.predict_output(estimator, X_test)
    train_out = family.predict_output(estimator, X_dev)
    test = compute_metrics(data.y[prepared.test], test_out, task=data.task, n_classes=n_classes)
    train = compute_metrics(data.y[prepared.dev], train_out, task=data.task, n_classes=n_classes)
    gap = {k: round(train[k] - test[k], 6) for k in test if test[k] is not None and train[k] is not None}
    graph = export_graph(pre, estimator, name, data, X_dev.shape[1])
    metrics = {
        "task": data.task,
        "metric": metric,
        "family": name,
        "test": test,
        "train": train,
        "train_test_gap": gap,
        "rows": {"train": int(len(prepared.dev)), "test": int(len(prepared.test))},
        "_test_output": test_out,
    }
    return Refit(name, params, seed, pre, estimator, graph, metrics, dev_rows)


def _check_parity(model_dir: Path, prepared: Prepared, metrics: dict[str, Any]) -> None:
    """The exported graph must give what the in-memory model gave on the test split."""
    expected = np.asarray(metrics.pop("_test_output"), dtype=np.float64)
    predictor = load(model_dir)
    outputs = predictor.run(predictor.feeds(prepared.data.X.iloc[prepared.test]))
    got = outputs["probabilities" if prepared.data.task == "classification" else "prediction"].astype(
        np.float64
    )
    scale = (
        1.0 if prepared.data.task == "classification" else max(1.0, float(np.abs(expected).max(initial=0.0)))
    )
    diff = float(np.abs(got.reshape(expected.shape) - expected).max(initial=0.0)) / scale
    metrics["onnx_parity_max_abs_diff"] = diff
    if diff > PARITY_TOLERANCE:
        logger.warning(
            "ONNX output differs from the in-memory model by %.2e (tolerance %.0e)", diff, PARITY_TOLERANCE
        )
