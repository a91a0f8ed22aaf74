"""The recipe: one typed, validated description of a leanfit run.

A recipe is YAML on disk and a pydantic model in memory. Every key but
``data.source`` has a default here, and only here. ``a.b=c`` overrides (the
CLI's ``--set``) are applied before validation, so they are checked the same way.

Example:
    >>> recipe = Recipe.model_validate({"data": {"source": "sklearn:iris"}})
    >>> recipe.search.sampler, recipe.name
    ('tpe', 'iris')
    >>> apply_overrides({"data": {"source": "x.csv"}}, ["search.trials=5"])["search"]
    {'trials': 5}
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .exceptions import RecipeError
from .schema import DEFAULT_NA_VALUES

__all__ = [
    "CompressConfig",
    "DataConfig",
    "Recipe",
    "SearchConfig",
    "TrainConfig",
    "apply_overrides",
    "default_recipe_path",
    "load_recipe",
]

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes")
PRUNERS = ("none", "median", "hyperband")
FAMILIES = ("linear", "hgb", "rf", "knn", "mlp", "cnn")
METRICS = ("auto", "accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss", "rmse", "mae", "r2")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Where the data comes from and how it is read and split."""

    source: str = Field(
        description="path.csv, path.parquet (file or folder), sklearn:NAME or synthetic:KIND?rows=N"
    )
    target: str | None = Field(None, description="target column; bundled sources know theirs")
    task: Literal["auto", "classification", "regression"] = "auto"
    na_values: list[str] = Field(default_factory=lambda: list(DEFAULT_NA_VALUES))
    drop: list[str] = Field(default_factory=list, description="columns to ignore")
    categorical: list[str] = Field(default_factory=list, description="force these columns categorical")
    numeric: list[str] = Field(default_factory=list, description="force these columns numeric")
    image_shape: list[int] | None = Field(
        None, description="e.g. [8, 8]: feature columns are image pixels (for cnn)"
    )
    drop_id_like: bool = True
    drop_constant: bool = True
    test_size: float = Field(0.2, gt=0, lt=0.9)
    valid_size: float = Field(0.2, gt=0, lt=0.9, description="share of the rest held out for validation")
    cv: int | Literal["auto"] = Field(
        "auto", description="k-fold CV for model selection; 0 = one holdout; auto = 5 folds up to 5,000 rows"
    )

    @field_validator("cv")
    @classmethod
    def _check_cv(cls, value: int | str) -> int | str:
        if isinstance(value, int) and (value == 1 or value < 0):
            raise ValueError("cv must be 0 (holdout), 2 or more folds, or 'auto'")
        return value

    @field_validator("image_shape")
    @classmethod
    def _check_shape(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not 2 <= len(value) <= 3 or any(v <= 0 for v in value)):
            raise ValueError("image_shape must be [H, W] or [C, H, W] with positive sizes")
        return value


class SearchConfig(_Section):
    """The hyper-parameter search (an Optuna study)."""

    families: list[str] = Field(default_factory=lambda: ["linear", "hgb", "knn", "mlp"])
    sampler: str = "tpe"
    pruner: str = "median"
    trials: int | None = Field(
        40, ge=1, description="number of trials in the study (finished ones count on resume)"
    )
    timeout: float | None = Field(300, gt=0, description="seconds for the search in this invocation")
    metric: str = "auto"
    n_jobs: int = Field(1, ge=1, description="trials run in parallel processes")
    storage: str | None = Field(None, description="Optuna storage URL; default sqlite in the run folder")
    backend: Literal["local", "ray"] = "local"

    @field_validator("families")
    @classmethod
    def _check_families(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one family")
        for name in value:
            _check_choice(name, FAMILIES, "model family")
        return list(dict.fromkeys(value))

    @field_validator("sampler")
    @classmethod
    def _check_sampler(cls, value: str) -> str:
        return _check_choice(value, SAMPLERS, "sampler")

    @field_validator("pruner")
    @classmethod
    def _check_pruner(cls, value: str) -> str:
        return _check_choice(value, PRUNERS, "pruner")

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, value: str) -> str:
        return _check_choice(value, METRICS, "metric")

    @model_validator(mode="after")
    def _budget(self) -> SearchConfig:
        if self.trials is None and self.timeout is None:
            raise ValueError("set search.trials, search.timeout or both; with neither the search never ends")
        return self


class TrainConfig(_Section):
    """Options shared by the PyTorch families."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_epochs: int = Field(100, ge=1, description="upper bound on the epochs any torch trial may train")
    threads: int | Literal["auto"] = Field(
        "auto",
        description="threads per fit; auto = 1 up to 20,000 rows (faster on small data), else all cores",
    )


class CompressConfig(_Section):
    """Post-search compression; runs when the recipe has a ``compress`` section.

    ``target`` and ``budget`` are normalised on validation: ``target`` always holds
    ``batch_size``, ``threads`` (a count or ``"all"``) and ``objective``; ``budget`` holds
    only the limits given (``latency_us`` at the target, ``size_kb`` on disk).

    Example:
        >>> cfg = CompressConfig.model_validate({"tolerance": "1%", "target": {"objective": "size"}})
        >>> cfg.target, cfg.budget
        ({'batch_size': 1, 'threads': 1, 'objective': 'size'}, {})
    """

    METHODS: ClassVar[tuple[str, ...]] = ("quantize", "prune", "distill", "magnitude")
    OBJECTIVES: ClassVar[tuple[str, ...]] = ("latency", "size", "throughput")
    TARGET_KEYS: ClassVar[tuple[str, ...]] = ("batch_size", "threads", "objective")
    BUDGET_KEYS: ClassVar[tuple[str, ...]] = ("latency_us", "size_kb")

    methods: list[str] | None = Field(
        None,
        description="quantize, prune, distill, magnitude; default: all that apply to the best model's "
        "family (magnitude, unstructured pruning, only when named)",
    )
    tolerance: float | str = Field(
        0.01, description="largest allowed drop of the primary metric: absolute (0.01) or relative ('1%')"
    )
    target: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,
        description="{batch_size: 1, threads: 1 | all, objective: latency|size|throughput}",
    )
    budget: dict[str, float] = Field(
        default_factory=dict,
        validate_default=True,
        description="optional {latency_us, size_kb}: the most accurate that fits wins",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        # The recipe's generic hint cannot see inside an optional section; say it here.
        if isinstance(value, Mapping):
            for key in value:
                if key not in cls.model_fields:
                    hint = difflib.get_close_matches(str(key), list(cls.model_fields), n=1)
                    did = f" Did you mean 'compress.{hint[0]}'?" if hint else ""
                    raise ValueError(
                        f"unknown key 'compress.{key}'.{did} Valid keys here: {', '.join(cls.model_fields)}"
                    )
        return value

    @field_validator("methods")
    @classmethod
    def _check_methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one method, or leave compress.methods out for all that apply")
        for name in value:
            _check_choice(name, cls.METHODS, "compression method")
        return list(dict.fromkeys(value))

    @field_validator("tolerance")
    @classmethod
    def _check_tolerance(cls, value: float | str) -> float | str:
        if isinstance(value, str):
            text = value.strip()
            match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*%", text)
            if match is None:
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(
                        "tolerance must be an absolute drop like 0.01 or a relative one like '1%'"
                    ) from None
            else:
                return f"{float(match.group(1)):g}%"
        if not (value >= 0 and value == value and value != float("inf")):
            raise ValueError("tolerance must be a finite number >= 0")
        return float(value)

    @field_validator("target", mode="before")
    @classmethod
    def _check_target(cls, value: Any) -> dict[str, Any]:
        value = {} if value is None else value
        if not isinstance(value, Mapping):
            raise ValueError("target must be a mapping like {batch_size: 1, threads: 1, objective: latency}")
        for key in value:
            _check_choice(str(key), cls.TARGET_KEYS, "compress.target key")
        out: dict[str, Any] = {"batch_size": 1, "threads": 1, "objective": "latency", **value}
        batch = out["batch_size"]
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"target.batch_size must be a whole number >= 1; got {batch!r}")
        threads = out["threads"]
        if threads != "all" and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"target.threads must be a whole number >= 1 or 'all'; got {threads!r}")
        out["objective"] = _check_choice(str(out["objective"]), cls.OBJECTIVES, "target.objective")
        return out

    @field_validator("budget", mode="before")
    @classmethod
    def _check_budget(cls, value: Any) -> dict[str, float]:
        value = {} if value is None else value
        if not isinstance(value, Mapping):
            raise ValueError("budget must be a mapping like {latency_us: 50, size_kb: 300}")
        out: dict[str, float] = {}
        for key, limit in value.items():
            _check_choice(str(key), cls.BUDGET_KEYS, "compress.budget key")
            if limit is None:
                continue
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
                raise ValueError(f"budget.{key} must be a number > 0; got {limit!r}")
            out[str(key)] = float(limit)
        return out


class Recipe(_Section):
    """A whole leanfit run."""

    name: str = Field("", description="run folder name under runs/; default: from the data source")
    seed: int = 0
    data: DataConfig
    search: SearchConfig = Field(default_factory=lambda: SearchConfig())
    train: TrainConfig = Field(default_factory=lambda: TrainConfig())
    compress: CompressConfig | None = Field(None, description="compress the best model after the search")

    @model_validator(mode="after")
    def _default_name(self) -> Recipe:
        if not self.name:
            self.name = _name_from_source(self.data.source)
        if not re.fullmatch(r"[\w.\-]+", self.name):
            raise ValueError(
                f"name must be letters, digits, '.', '_' or '-' (it names a folder); got {self.name!r}"
            )
        return self


def _name_from_source(source: str) -> str:
    if ":" in source and not Path(source).exists() and not re.match(r"^[A-Za-z]:[\\/]", source):
        kind, _, rest = source.partition(":")
        base = rest.split("?")[0] or kind
        return re.sub(r"[^\w.\-]", "-", base if kind == "sklearn" else f"{kind}-{base}")
    stem = Path(source.rstrip("/")).stem
    return re.sub(r"[^\w.\-]", "-", stem) or "run"


def _check_choice(value: str, choices: Iterable[str], what: str) -> str:
    choices = tuple(choices)
    if value not in choices:
        hint = difflib.get_close_matches(str(value), choices, n=1)
        did = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}.{did}")
    return value


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Recipe
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return []
    return list(model.model_fields)


def _format_error(exc: ValidationError, source: str) -> RecipeError:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in loc) or "(recipe)"
        if err["type"] == "extra_forbidden":
            options = _fields_at(loc)
            hint = difflib.get_close_matches(str(loc[-1]), options, n=1)
            did = f" Did you mean {'.'.join([*map(str, loc[:-1]), hint[0]])!r}?" if hint else ""
            lines.append(f"{path}: unknown key.{did} Valid keys here: {', '.join(options)}")
        elif err["type"] == "missing":
            lines.append(f"{path}: required, but missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
            lines.append(f"{path}: {msg}{shown}")
    head = f"{source}: invalid recipe" if source else "invalid recipe"
    return RecipeError(head + "\n  " + "\n  ".join(lines))


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a recipe mapping; values are parsed as YAML.

    Example:
        >>> apply_overrides({}, ["search.families=[mlp, knn]", "seed=3"])
        {'search': {'families': ['mlp', 'knn']}, 'seed': 3}
    """
    out: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"override {item!r} is not KEY=VALUE, e.g. search.trials=20")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise RecipeError(
                f"override {item!r}: value is not valid YAML ({exc.__class__.__name__})"
            ) from exc
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def default_recipe_path() -> Path:
    """The bundled demo recipe (sklearn's digits)."""
    return Path(__file__).with_name("recipes") / "demo.yaml"


def load_recipe(
    source: str | os.PathLike[str] | Mapping[str, Any] | Recipe | None = None, overrides: Iterable[str] = ()
) -> Recipe:
    """Read and validate a recipe.

    Args:
        source: a YAML path, a mapping, a :class:`Recipe`, or None for the bundled demo.
        overrides: ``a.b=c`` strings applied before validation.

    Raises:
        RecipeError: naming the field path, what was expected and what arrived.

    Example:
        >>> load_recipe({"data": {"source": "sklearn:wine"}}, ["search.trials=3"]).search.trials
        3
    """
    label = ""
    if isinstance(source, Recipe):
        data: Mapping[str, Any] = source.model_dump()
    elif isinstance(source, Mapping):
        data = source
    else:
        path = Path(source) if source is not None else default_recipe_path()
        label = str(path)
        if not path.is_file():
            raise RecipeError(
                f"recipe file not found: {path}. Pass a YAML file, or no argument for the demo."
            )
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise RecipeError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
        if loaded is None:
            raise RecipeError(f"{path}: the recipe is empty; it needs at least data.source")
        if not isinstance(loaded, dict):
            raise RecipeError(
                f"{path}: a recipe is a mapping of keys (name, data, search, ...), got {type(loaded).__name__}"
            )
        data = loaded
    data = apply_overrides(data, overrides)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise _format_error(exc, label) from None
