"""Training-time reference statistics for drift monitoring (no raw rows are kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..schema import ColumnSpec

__all__ = ["N_QUANTILES", "reference_statistics"]

#: Quantile points stored per numeric feature (p0, p1, ..., p100).
N_QUANTILES = 101
_MAX_LEVELS = 200


def reference_statistics(frame: pd.DataFrame, columns: Sequence[ColumnSpec]) -> dict[str, Any]:
    """Summarise training columns for drift checks.

    Numeric-like columns keep 101 quantiles, mean, std and the missing share;
    categorical columns keep level frequencies (the 200 most common, the rest
    pooled under ``"__other__"``).

    Example:
        >>> ref = reference_statistics(pd.DataFrame({"x": [1.0, 2.0, None]}), [ColumnSpec("x", "numeric")])
        >>> ref["features"]["x"]["missing_share"]
        0.3333
    """
    features: dict[str, Any] = {}
    for col in columns:
        values = frame[col.name]
        if col.kind == "categorical":
            counts = values.astype(str).value_counts()
            total = float(counts.sum()) or 1.0
            top = counts.iloc[:_MAX_LEVELS]
            freqs = {str(k): round(float(v) / total, 6) for k, v in top.items()}
            rest = float(counts.iloc[_MAX_LEVELS:].sum())
            if rest:
                freqs["__other__"] = round(rest / total, 6)
            features[col.name] = {"kind": "categorical", "frequencies": freqs, "count": int(total)}
            continue
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        finite = numbers[np.isfinite(numbers)]
        entry: dict[str, Any] = {
            "kind": "numeric",
            "count": int(finite.size),
            "missing_share": round(float(1 - finite.size / max(len(numbers), 1)), 4),
        }
        if finite.size:
            entry["quantiles"] = np.quantile(finite, np.linspace(0, 1, N_QUANTILES)).round(8).tolist()
            entry["mean"] = float(finite.mean())
            entry["std"] = float(finite.std())
        features[col.name] = entry
    return {"n_rows": int(len(frame)), "features": features}
