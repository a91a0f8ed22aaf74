"""The outcome of a compression run: ``compression.csv`` rows, a JSON-able dict and a rich summary."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .candidates import Candidate

__all__ = ["CompressionResult", "candidate_row", "write_csv"]


def _num(value: Any, digits: int = 6) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, digits)
    return value


def candidate_row(c: Candidate, metric: str, configs: list[tuple[int, str]]) -> dict[str, Any]:
    """One ``compression.csv`` row: method, params, metrics, sizes, p50 per configuration, verdict."""
    row: dict[str, Any] = {
        "candidate": c.name,
        "method": c.method,
        "params": json.dumps(c.params, sort_keys=True, default=str),
        "parent": c.parent or "",
        "reference": c.reference,
        f"valid_{metric}": _num(c.valid_score),
        f"reference_{metric}": _num(c.reference_score),
        "drop": _num(c.drop),
        f"test_{metric}": _num(c.test.get(metric)) if c.test else None,
        "size_bytes": c.size_bytes or None,
        "size_gzip_bytes": c.gzip_bytes or None,
        "memory_bytes": c.memory_bytes or None,
        "parameters": c.parameters,
    }
    for batch, threads in configs:
        row[f"p50_us_b{batch}_t{threads}"] = _num(c.latency(batch, threads), 2)
    for batch, threads in configs:
        row[f"rows_per_s_b{batch}_t{threads}"] = _num(c.throughput(batch, threads), 1)
    row.update(status=c.status, reason=c.reason, pareto=c.pareto)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write rows (dicts with the same keys) as CSV, atomically."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["candidate"])
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    tmp.replace(path)


@dataclass
class CompressionResult:
    """What :func:`~leanfit.compress.compress_run` decided and measured.

    Attributes:
        run_dir: the run folder.
        chosen: the name of the candidate ``model/`` now holds (``"original"`` when nothing won).
        metric: the primary metric; ``tolerance`` the absolute drop allowed on it.
        target: batch size, threads and objective of the decision; ``budget`` its limits.
        rows: one ``compression.csv`` row per candidate.
        notes: search details, skipped methods and their reasons.
    """

    run_dir: Path
    chosen: str
    metric: str
    tolerance: float
    tolerance_setting: float | str
    target: dict[str, Any]
    budget: dict[str, float]
    rows: list[dict[str, Any]] = field(repr=False)
    notes: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict, repr=False)
    seconds: float = 0.0

    @property
    def chosen_row(self) -> dict[str, Any]:
        return next(r for r in self.rows if r["candidate"] == self.chosen)

    @property
    def original_row(self) -> dict[str, Any]:
        return next(r for r in self.rows if r["candidate"] == "original")

    def _target_key(self) -> str:
        return f"p50_us_b{self.target['batch_size']}_t{self.target['threads']}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the pipeline stores it under ``metrics["compression"]``)."""
        key = self._target_key()
        chosen, original = self.chosen_row, self.original_row
        reference = next((r for r in self.rows if r["candidate"] == "reference"), None)
        return {
            "chosen": self.chosen,
            "metric": self.metric,
            "tolerance": self.tolerance,
            "tolerance_setting": self.tolerance_setting,
            "target": dict(self.target),
            "budget": dict(self.budget),
            "original": {
                "valid": original[f"valid_{self.metric}"],
                "test": original[f"test_{self.metric}"],
                "latency_us": original.get(key),
                "size_bytes": original["size_bytes"],
            },
            "reference": None
            if reference is None
            else {"valid": reference[f"valid_{self.metric}"], "test": reference[f"test_{self.metric}"]},
            "result": {
                "valid": chosen[f"valid_{self.metric}"],
                "test": chosen[f"test_{self.metric}"],
                "latency_us": chosen.get(key),
                "size_bytes": chosen["size_bytes"],
                "reason": chosen["reason"],
            },
            "candidates": [
                {k: r[k] for k in ("candidate", "method", "status", "reason", "drop", "pareto", "size_bytes")}
                | {"latency_us": r.get(key), f"valid_{self.metric}": r[f"valid_{self.metric}"]}
                for r in self.rows
            ],
            "csv": str(self.run_dir / "compression.csv"),
            "notes": self.notes,
            "hardware": self.hardware,
            "seconds": round(self.seconds, 2),
        }

    def summary(self) -> Any:
        """A rich ``Table``: every candidate with metric, drop, size, target latency and verdict."""
        from rich.table import Table

        key = self._target_key()
        t = self.target
        table = Table(
            title=f"compression of {self.run_dir.name}: chosen {self.chosen}",
            caption=(
                f"target batch {t['batch_size']}, {t['threads']} thread(s), objective {t['objective']}; "
                f"tolerance {self.tolerance:.4g} on validation {self.metric}"
                + (f"; budget {self.budget}" if self.budget else "")
                + f" · {self.run_dir / 'compression.csv'}"
            ),
        )
        for col, justify in (
            ("candidate", "left"),
            (f"valid {self.metric}", "right"),
            ("drop", "right"),
            (f"test {self.metric}", "right"),
            ("KiB", "right"),
            ("p50 µs", "right"),
            ("status", "left"),
            ("reason", "left"),
        ):
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for r in self.rows:
            style = (
                "bold green"
                if r["status"] == "chosen"
                else "dim"
                if r["status"] in ("control", "reference", "failed")
                else None
            )
            table.add_row(
                r["candidate"] + (" *" if r["pareto"] else ""),
                _fmt(r[f"valid_{self.metric}"]),
                _fmt(r["drop"]),
                _fmt(r[f"test_{self.metric}"]),
                _fmt(r["size_bytes"] / 1024 if r["size_bytes"] else None, 1),
                _fmt(r.get(key), 1),
                r["status"],
                r["reason"],
                style=style,
            )
        return table


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)
