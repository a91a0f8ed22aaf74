"""Data drift against the training reference stored in the artifact (no raw training rows).

Per feature, following Evidently's documented defaults (thresholds below), with the choice
between the "small" and "large" test made on the number of rows in the current window:

=============  ======================  ===========================  ======================================
kind           window <= 1000 rows      window > 1000 rows           reference
=============  ======================  ===========================  ======================================
numeric-like   Kolmogorov-Smirnov,     Wasserstein distance         101 training quantiles; a reference
               drift if p <= 0.05      / max(train std, 0.001),     sample is rebuilt from them by
                                       drift if >= 0.1              interpolating the inverse CDF
categorical,   chi-square against      Jensen-Shannon distance      training level frequencies; unseen
boolean        training frequencies,   (natural log), drift if      levels pooled in one "other" bucket
               drift if p <= 0.05      >= 0.1                       (expected share 1e-4, so no NaN)
=============  ======================  ===========================  ======================================

Numeric missing values (NaN) are left out of the tests; a categorical missing value is the
level ``""``. Booleans are tested as two levels using the training share of ``True``.
The dataset drifts when at least half of the tested features drift.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..artifacts import resolve_model_dir, verify
from ..exceptions import ArtifactError, DataError
from ..schema import DEFAULT_NA_VALUES, ColumnSpec, coerce_column
from .feeds import MatrixFeeds

__all__ = [
    "DATASET_SHARE",
    "DISTANCE_THRESHOLD",
    "P_VALUE_THRESHOLD",
    "SMALL_WINDOW",
    "DriftReport",
    "DriftWindow",
    "FeatureDrift",
    "compute_drift",
    "monitor",
]

SMALL_WINDOW = 1000
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
DATASET_SHARE = 0.5
_UNSEEN_SHARE = 1e-4
_STD_FLOOR = 0.001
_MAX_REFERENCE_SAMPLE = 10_000
_OTHER = "__other__"


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict for one feature.

    ``score`` is a p-value for ``ks`` and ``chisquare`` (drift when ``score <= threshold``)
    and a distance for ``wasserstein`` and ``jensenshannon`` (drift when ``score >= threshold``);
    ``None`` when the window holds no values for it (then ``drifted`` is false).
    """

    feature: str
    kind: str
    method: str
    score: float | None
    threshold: float
    drifted: bool
    n: int
    note: str = ""

    @property
    def statistic(self) -> str:
        return "p_value" if self.method in ("ks", "chisquare") else "distance"


@dataclass(frozen=True)
class DriftReport:
    """Drift of one model's recent inputs against its training reference.

    Example:
        >>> report = monitor("runs/credit", "new.csv")          # doctest: +SKIP
        >>> report.dataset_drift, report.share                  # doctest: +SKIP
        (True, 0.75)
    """

    model: str
    n_rows: int
    features: list[FeatureDrift]
    share: float
    dataset_drift: bool
    share_threshold: float = DATASET_SHARE
    thresholds: dict[str, float] = field(
        default_factory=lambda: {
            "ks": P_VALUE_THRESHOLD,
            "chisquare": P_VALUE_THRESHOLD,
            "wasserstein": DISTANCE_THRESHOLD,
            "jensenshannon": DISTANCE_THRESHOLD,
            "small_window": SMALL_WINDOW,
        }
    )

    TABLE_COLUMNS: ClassVar[tuple[str, ...]] = (
        "feature",
        "kind",
        "method",
        "score",
        "threshold",
        "drift",
        "rows",
    )

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``score`` is ``null`` where a feature had no values)."""
        return {
            "model": self.model,
            "n_rows": self.n_rows,
            "n_features": sum(f.score is not None for f in self.features),
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share,
            "share_threshold": self.share_threshold,
            "drifted_features": self.drifted_features,
            "thresholds": dict(self.thresholds),
            "features": [{**asdict(f), "statistic": f.statistic} for f in self.features],
        }

    def table(self) -> list[dict[str, str]]:
        """One row per feature for a ``rich`` table: ``{column: text}`` in :attr:`TABLE_COLUMNS` order.

        Example:
            >>> rows = report.table()                                          # doctest: +SKIP
            >>> table = rich.table.Table(*rows[0])                             # doctest: +SKIP
            >>> for row in rows: table.add_row(*row.values())                  # doctest: +SKIP
        """
        rows: list[dict[str, str]] = []
        for f in self.features:
            score = "-" if f.score is None else f"{f.score:.4g}"
            op = "<=" if f.statistic == "p_value" else ">="
            verdict = "DRIFT" if f.drifted else ("n/a" if f.score is None else "ok")
            cells = (f.feature, f.kind, f.method, score, f"{op} {f.threshold:g}", verdict, str(f.n))
            rows.append(dict(zip(self.TABLE_COLUMNS, cells, strict=True)))
        return rows


def _reference_sample(entry: Mapping[str, Any]) -> np.ndarray:
    """Rebuild a sample of the training distribution from its stored quantiles."""
    quantiles = np.asarray(entry["quantiles"], dtype=np.float64)
    size = int(min(max(int(entry.get("count", 0)), 100), _MAX_REFERENCE_SAMPLE))
    probs = (np.arange(size) + 0.5) / size
    return np.interp(probs, np.linspace(0.0, 1.0, quantiles.size), quantiles)


def _numeric(name: str, kind: str, entry: Mapping[str, Any], values: np.ndarray, small: bool) -> FeatureDrift:
    from scipy import stats

    current = np.asarray(values, dtype=np.float64).ravel()
    current = current[np.isfinite(current)]
    method = "ks" if small else "wasserstein"
    threshold = P_VALUE_THRESHOLD if small else DISTANCE_THRESHOLD
    if not entry.get("quantiles"):
        return FeatureDrift(
            name, kind, method, None, threshold, False, int(current.size), "no reference values"
        )
    if current.size == 0:
        return FeatureDrift(name, kind, method, None, threshold, False, 0, "no values in the window")
    reference = _reference_sample(entry)
    if small:
        result = stats.ks_2samp(current, reference)
        score = float(result.pvalue)
        if not np.isfinite(score):  # pragma: no cover - ks_2samp returns finite p for non-empty samples
            score = 1.0 if float(result.statistic) == 0 else 0.0
        return FeatureDrift(name, kind, method, score, threshold, score <= threshold, int(current.size))
    norm = max(float(entry.get("std") or np.std(reference)), _STD_FLOOR)
    score = float(stats.wasserstein_distance(reference, current)) / norm
    return FeatureDrift(name, kind, method, score, threshold, score >= threshold, int(current.size))


def _categorical(
    name: str, kind: str, frequencies: Mapping[str, float], values: Sequence[str], small: bool
) -> FeatureDrift:
    from scipy import stats
    from scipy.spatial import distance

    method = "chisquare" if small else "jensenshannon"
    threshold = P_VALUE_THRESHOLD if small else DISTANCE_THRESHOLD
    n = len(values)
    if n == 0:
        return FeatureDrift(name, kind, method, None, threshold, False, 0, "no values in the window")
    levels = [level for level in frequencies if level != _OTHER]
    index = {level: i for i, level in enumerate(levels)}
    observed = np.zeros(len(levels) + 1, dtype=np.float64)
    for value in values:
        observed[index.get(value, len(levels))] += 1
    expected = np.array(
        [float(frequencies[level]) for level in levels] + [float(frequencies.get(_OTHER, 0.0))]
    )
    unseen = int(observed[-1]) if not frequencies.get(_OTHER) else 0
    note = f"{unseen} value(s) of levels unseen in training" if unseen else ""
    if small:
        shares = expected + _UNSEEN_SHARE
        shares /= shares.sum()
        result = stats.chisquare(observed, shares * n)
        score = float(result.pvalue)
        if not np.isfinite(score):  # pragma: no cover - all expected counts are positive
            score = 1.0
        return FeatureDrift(name, kind, method, score, threshold, score <= threshold, n, note)
    ref = expected / expected.sum() if expected.sum() > 0 else np.full_like(expected, 1.0 / expected.size)
    score = float(distance.jensenshannon(ref, observed / n))
    return FeatureDrift(name, kind, method, score, threshold, score >= threshold, n, note)


def _bool_frequencies(entry: Mapping[str, Any]) -> dict[str, float]:
    share = float(entry.get("mean", 0.0) or 0.0)
    return {"true": share, "false": 1.0 - share}


def compute_drift(
    model: str,
    reference: Mapping[str, Any],
    columns: Sequence[ColumnSpec],
    values: Mapping[str, np.ndarray],
    n_rows: int,
) -> DriftReport:
    """Test each column's current values against the reference statistics.

    Args:
        model: the model's name (for the report).
        reference: the manifest's ``reference`` section.
        columns: the model's input columns.
        values: column name -> coerced values (as :func:`leanfit.schema.coerce_column` returns).
        n_rows: rows in the window; decides between the small-window and large-window tests.

    Raises:
        ArtifactError: the artifact carries no reference statistics.
    """
    features_ref = (reference or {}).get("features")
    if not features_ref:
        raise ArtifactError(
            f"model {model!r} carries no reference statistics; re-export it with a leanfit that writes "
            "manifest['reference'] to monitor drift"
        )
    small = n_rows <= SMALL_WINDOW
    results: list[FeatureDrift] = []
    for spec in columns:
        entry = features_ref.get(spec.name)
        column = values.get(spec.name)
        if entry is None or column is None:
            continue
        flat = np.asarray(column).ravel()
        if spec.kind == "categorical":
            results.append(
                _categorical(
                    spec.name, spec.kind, entry.get("frequencies", {}), [str(v) for v in flat], small
                )
            )
        elif spec.kind == "boolean":
            labels = ["true" if bool(v) else "false" for v in flat]
            results.append(_categorical(spec.name, spec.kind, _bool_frequencies(entry), labels, small))
        else:
            results.append(_numeric(spec.name, spec.kind, entry, flat, small))
    tested = [f for f in results if f.score is not None]
    share = (sum(f.drifted for f in tested) / len(tested)) if tested else 0.0
    return DriftReport(
        model=model,
        n_rows=int(n_rows),
        features=results,
        share=round(share, 6),
        dataset_drift=bool(tested) and share >= DATASET_SHARE,
    )


class DriftWindow:
    """The last ``size`` rows a model received, kept as references to the validated arrays.

    Adding is O(1) on the request path and keeps only numpy arrays (which the garbage collector
    does not track); the columns are joined only when a report is asked for. ``generation``
    changes on every add, so a report can be reused until then.

    Example:
        >>> w = DriftWindow(size=3)
        >>> for i in range(5): w.add({"x": np.full((1, 1), i, np.float32)}, 1)
        >>> w.snapshot()[0]["x"].tolist(), w.generation
        ([2.0, 3.0, 4.0], 5)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # (rows, names, arrays): one (N, F) matrix for matrix-form requests, else one (N, 1) per column
        self._chunks: deque[tuple[int, tuple[str, ...], tuple[np.ndarray, ...], bool]] = deque()
        self._rows = 0
        self.generation = 0
        self._lock = threading.Lock()

    def add(self, feeds: Mapping[str, np.ndarray], rows: int) -> None:
        chunk: tuple[int, tuple[str, ...], tuple[np.ndarray, ...], bool]
        if isinstance(feeds, MatrixFeeds):
            chunk = (rows, feeds.names, (feeds.matrix,), True)
        else:
            chunk = (rows, tuple(feeds), tuple(feeds.values()), False)
        with self._lock:
            self._chunks.append(chunk)
            self._rows += rows
            while self._chunks and self._rows - self._chunks[0][0] >= self.size:
                self._rows -= self._chunks.popleft()[0]
            self.generation += 1

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._rows = 0
            self.generation += 1

    def snapshot(self) -> tuple[dict[str, np.ndarray], int]:
        """Column name -> the window's last ``size`` values (flat), and the row count."""
        with self._lock:
            chunks = list(self._chunks)
            rows = min(self._rows, self.size)
        if not chunks:
            return {}, 0
        parts: dict[str, list[np.ndarray]] = {}
        for _, names, arrays, is_matrix in chunks:
            if is_matrix:
                for j, name in enumerate(names):
                    parts.setdefault(name, []).append(arrays[0][:, j])
            else:
                for name, array in zip(names, arrays, strict=True):
                    parts.setdefault(name, []).append(np.asarray(array).ravel())
        return {name: np.concatenate(values)[-self.size :] for name, values in parts.items()}, rows


def _read_table(path: str | os.PathLike[str]) -> Any:
    import pandas as pd

    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: no such file. Pass the CSV (or Parquet) file of new rows to monitor.")
    if source.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(source)
    try:
        return pd.read_csv(source, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{source}: cannot read it as CSV ({exc})") from exc


def monitor(
    run_or_model_path: str | os.PathLike[str],
    data_path: str | os.PathLike[str],
    *,
    window: int | None = None,
) -> DriftReport:
    """Compare a file of new rows with a model's training reference, offline.

    The same tests and thresholds as the server's ``GET /v2/models/{m}/drift``. The artifact's
    checksums are verified first; columns are coerced exactly as the server coerces them.

    Args:
        run_or_model_path: a run folder (``runs/<name>``) or its ``model/`` folder.
        data_path: a CSV (read as text, coerced per column) or Parquet file holding the model's
            input columns; extra columns are ignored.
        window: use only the last ``window`` rows (default: all of them).

    Raises:
        ArtifactError: the artifact is missing, tampered with, or has no reference statistics.
        DataError: the file is missing, unreadable, lacks a column, or holds a value of the wrong kind.

    Example:
        >>> report = monitor("runs/credit", "new.csv")   # doctest: +SKIP
        >>> report.to_dict()["dataset_drift"]             # doctest: +SKIP
        False
    """
    if window is not None and window < 1:
        raise DataError(f"window must be a positive number of rows; got {window!r}")
    directory = resolve_model_dir(run_or_model_path)
    manifest = verify(directory)
    frame = _read_table(data_path)
    if window is not None:
        frame = frame.tail(window)
    missing = [c.name for c in manifest.inputs if c.name not in frame.columns]
    if missing:
        raise DataError(
            f"{data_path}: missing column(s) {missing}; the model {manifest.name!r} expects "
            f"{manifest.feature_names}"
        )
    values = {
        c.name: coerce_column(frame[c.name].reset_index(drop=True), c, na_values=DEFAULT_NA_VALUES).ravel()
        for c in manifest.inputs
    }
    return compute_drift(manifest.name, manifest.reference, manifest.inputs, values, n_rows=len(frame))
