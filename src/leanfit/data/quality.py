"""The data-quality report: what is odd about a dataset before any model sees it.

Checks: the missing share per column, constant columns, ID-like columns (one distinct
value per row: text keys, or integer sequences; never float measurements), duplicate rows
(ignoring the dropped columns) and leakage suspects (one feature that predicts the target
almost perfectly on its own).
Constant and ID-like columns are dropped by default; everything else only warns. Every
warning also goes to the ``leanfit.data`` logger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._logging import get_logger
from ..schema import ColumnSpec

__all__ = ["QualityReport", "quality_report"]

logger = get_logger(__name__)

#: A single feature scoring at least this (balanced accuracy, |rank correlation| or
#: correlation ratio) on its own is reported as a leakage suspect.
LEAKAGE_THRESHOLD = 0.98
#: Columns missing more than this share get a warning.
MISSING_WARN_SHARE = 0.5
#: ID-like detection needs at least this many rows; smaller tables are all "unique".
ID_MIN_ROWS = 10


@dataclass
class QualityReport:
    """Findings about one dataset; ``to_dict()`` is what ``data_report.json`` holds.

    Example:
        >>> report = QualityReport(n_rows=3, n_columns=1, missing={"a": 0.0})
        >>> report.to_dict()["n_rows"], report.warnings
        (3, [])
    """

    n_rows: int
    n_columns: int
    missing: dict[str, float] = field(default_factory=dict)
    constant: list[str] = field(default_factory=list)
    id_like: list[str] = field(default_factory=list)
    duplicate_rows: int = 0
    leakage: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    target_missing: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return asdict(self)

    def warn(self, message: str) -> None:
        """Record a warning and log it."""
        self.warnings.append(message)
        logger.warning("%s", message)


def quality_report(
    frame: pd.DataFrame,
    y: np.ndarray,
    columns: Sequence[ColumnSpec],
    *,
    task: str,
    drop_id_like: bool = True,
    drop_constant: bool = True,
    sample: int = 5000,
    seed: int = 0,
) -> QualityReport:
    """Check a dataset of coerced columns and say which columns to drop.

    Args:
        frame: the coerced feature columns (``Dataset.X``).
        y: the target: class codes for classification, floats for regression.
        columns: the specs of ``frame``'s columns.
        task: ``"classification"`` or ``"regression"``.
        drop_id_like: put ID-like columns in ``report.dropped``.
        drop_constant: put constant columns in ``report.dropped``.
        sample: the leakage checks look at a seeded sample of at most this many rows.
        seed: the sample's seed.

    Returns:
        The report; ``report.dropped`` lists the columns the caller should drop.

    Example:
        >>> frame = pd.DataFrame({"id": np.arange(20), "x": np.linspace(0, 1, 20), "k": np.ones(20)})
        >>> cols = [ColumnSpec("id", "integer"), ColumnSpec("x", "numeric"), ColumnSpec("k", "numeric")]
        >>> y = np.array([0, 1] * 10)
        >>> quality_report(frame, y, cols, task="classification").dropped
        ['id', 'k']
    """
    n = len(frame)
    report = QualityReport(n_rows=n, n_columns=len(columns))
    for spec in columns:
        column = frame[spec.name]
        share = float(_missing(column, spec).mean()) if n else 0.0
        report.missing[spec.name] = round(share, 6)
        if share > MISSING_WARN_SHARE and share < 1.0:
            report.warn(f"column {spec.name!r} is {share:.0%} missing")
        if column.nunique(dropna=False) <= 1:
            report.constant.append(spec.name)
            value = "missing" if share == 1.0 or n == 0 else repr(_plain(column.iloc[0]))
            what = "dropped" if drop_constant else "kept (drop_constant is off)"
            report.warn(f"column {spec.name!r} is constant ({value} in every row); {what}")
            if drop_constant:
                report.dropped.append(spec.name)
        elif _id_like(column, spec):
            report.id_like.append(spec.name)
            what = "dropped" if drop_id_like else "kept (drop_id_like is off)"
            report.warn(
                f"column {spec.name!r} looks like a row ID ({column.nunique()} distinct values in {n} rows); {what}. "
                "An ID cannot generalise to new rows."
            )
            if drop_id_like:
                report.dropped.append(spec.name)
    if n:
        kept = [c.name for c in columns if c.name not in report.dropped]  # IDs would hide copies
        with_target = frame[kept].assign(__target__=y)
        report.duplicate_rows = int(with_target.duplicated().sum())
        if report.duplicate_rows:
            report.warn(
                f"{report.duplicate_rows} duplicate rows ({report.duplicate_rows / n:.1%}); copies that "
                "land in both train and test inflate test scores. Deduplicate the file unless they are "
                "real repeats."
            )
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=sample, replace=False)) if n > sample else np.arange(n)
    y_sample = np.asarray(y)[rows]
    for spec in columns:
        if spec.name in report.constant or spec.name in report.id_like:
            continue
        found = _leakage(frame[spec.name].iloc[rows], y_sample, spec, task)
        if found is not None:
            measure, score = found
            report.leakage.append({"column": spec.name, "measure": measure, "score": round(score, 4)})
            report.warn(
                f"column {spec.name!r} predicts the target almost perfectly on its own ({measure} "
                f"{score:.3f}); check that it is not derived from the target (leakage), or drop it with "
                f"data.drop: [{spec.name}]"
            )
    return report


def _missing(column: pd.Series, spec: ColumnSpec) -> np.ndarray:
    if spec.kind == "categorical":
        return (column == "").to_numpy(dtype=bool)
    return column.isna().to_numpy(dtype=bool)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


#: Share of distinct values above which a text or integer column counts as an ID.
ID_UNIQUE_SHARE = 0.95


def _id_like(column: pd.Series, spec: ColumnSpec) -> bool:
    n = len(column)
    if n < ID_MIN_ROWS or spec.kind not in ("categorical", "integer"):
        return False
    # "Unique per row" up to duplicated rows: a messy file repeats whole rows, IDs included.
    if column.nunique() < ID_UNIQUE_SHARE * n:
        return False
    if spec.kind == "categorical":
        return True
    values = column.to_numpy(dtype=np.int64)
    steps = np.diff(np.unique(values))
    return bool(
        np.mean(steps == 1) >= ID_UNIQUE_SHARE or np.all(np.diff(values) >= 0) or np.all(np.diff(values) <= 0)
    )


def _leakage(column: pd.Series, y: np.ndarray, spec: ColumnSpec, task: str) -> tuple[str, float] | None:
    if spec.kind == "categorical":
        found = _category_purity(column, y, task)
    elif task == "classification":
        found = _stump_accuracy(column.to_numpy(dtype=np.float64), y)
    else:
        found = _rank_correlation(column.to_numpy(dtype=np.float64), y)
    if found is not None and found[1] >= LEAKAGE_THRESHOLD:
        return found
    return None


def _stump_accuracy(x: np.ndarray, y: np.ndarray) -> tuple[str, float] | None:
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.tree import DecisionTreeClassifier

    if len(np.unique(y)) < 2:
        return None
    stump = DecisionTreeClassifier(max_leaf_nodes=max(2, len(np.unique(y))), random_state=0)
    stump.fit(x.reshape(-1, 1), y)
    return "balanced accuracy", float(balanced_accuracy_score(y, stump.predict(x.reshape(-1, 1))))


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> tuple[str, float] | None:
    keep = ~np.isnan(x)
    if keep.sum() < 3:
        return None
    a = pd.Series(x[keep]).rank().to_numpy()
    b = pd.Series(np.asarray(y, dtype=np.float64)[keep]).rank().to_numpy()
    if a.std() == 0 or b.std() == 0:
        return None
    return "|rank correlation|", float(abs(np.corrcoef(a, b)[0, 1]))


def _category_purity(column: pd.Series, y: np.ndarray, task: str) -> tuple[str, float] | None:
    """How well 'one prediction per category' fits, on categories seen at least twice."""
    table = pd.DataFrame({"c": column.to_numpy(dtype=object), "y": y})
    sizes = table.groupby("c")["y"].transform("size").to_numpy()
    table = table[sizes >= 2]
    if len(table) < max(3, len(column) // 2):
        return None  # mostly singletons: purity would be trivially perfect
    if task == "classification":
        from sklearn.metrics import balanced_accuracy_score

        if table["y"].nunique() < 2:
            return None
        majority = table.groupby("c")["y"].agg(lambda s: s.value_counts().index[0])
        predicted = table["c"].map(majority).to_numpy()
        return "balanced accuracy", float(balanced_accuracy_score(table["y"].to_numpy(), predicted))
    values = table["y"].to_numpy(dtype=np.float64)
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return None
    means = table.groupby("c")["y"].transform("mean").to_numpy(dtype=np.float64)
    between = float(((means - values.mean()) ** 2).sum())
    return "correlation ratio", float(np.sqrt(between / total))
