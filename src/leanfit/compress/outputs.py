"""Measure every candidate side by side, choose, and write the run folder.

Example:
    >>> benchmark_candidates(cands, config, valid_rows, columns, notes)   # doctest: +SKIP
    >>> result = decide_and_write(run_dir, original_dir, manifest, config, ctx, cands, notes, print)  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..artifacts import Manifest, read_manifest, write_manifest
from ..artifacts.export import write_artifact
from ..evaluate.bench import hardware_fingerprint, make_feeds, measure, thread_label
from ..recipe import CompressConfig
from .candidates import Candidate, Context
from .result import CompressionResult, candidate_row, write_csv
from .select import Scored, select

__all__ = ["BATCH_SIZES", "benchmark_candidates", "decide_and_write"]

#: Benchmark effort: interleaved rounds and work per burst (ms), at the target and elsewhere.
TARGET_ROUNDS, TARGET_ROUND_MS = 9, 10.0
GRID_ROUNDS, GRID_ROUND_MS = 3, 4.0
BATCH_SIZES = (1, 32, 1024)


def benchmark_candidates(
    cands: list[Candidate], config: CompressConfig, rows: Any, columns: list[Any], notes: dict[str, Any]
) -> None:
    """Time every candidate side by side: many rounds at the target, a few at the other configurations."""
    from ..schema import ColumnSpec

    target = (int(config.target["batch_size"]), thread_label(config.target["threads"]))
    threads = list(dict.fromkeys(["1", "all", target[1]]))
    batches = sorted({*BATCH_SIZES, target[0]})
    spec_manifest = Manifest(
        name="bench", task="", inputs=[c for c in columns if isinstance(c, ColumnSpec)], outputs=[]
    )
    feeds = make_feeds(spec_manifest, rows.reset_index(drop=True), batches)
    graphs = {
        c.name: c.graph.SerializeToString() for c in cands if c.graph is not None and c.status != "failed"
    }
    sessions: dict[tuple[str, str], Any] = {}  # shared by both passes: created (and memory measured) once
    at_target, memory = measure(
        graphs,
        feeds,
        configs=[(target[0], _setting(target[1]))],
        rounds=TARGET_ROUNDS,
        round_ms=TARGET_ROUND_MS,
        sessions=sessions,
    )
    others = [(b, _setting(t)) for b in batches for t in threads if (b, t) != target]
    elsewhere, _ = measure(
        graphs, feeds, configs=others, rounds=GRID_ROUNDS, round_ms=GRID_ROUND_MS, sessions=sessions
    )
    for c in cands:
        if c.name not in graphs:
            continue
        data = graphs[c.name]
        c.size_bytes, c.gzip_bytes = len(data), len(zlib.compress(data, 6))
        c.memory_bytes = memory[c.name]
        c.timings = sorted(at_target[c.name] + elsewhere[c.name], key=lambda t: (t.batch_size, t.threads))
    notes["benchmark"] = {
        "target": {"batch_size": target[0], "threads": target[1], "rounds": TARGET_ROUNDS},
        "grid": {"batch_sizes": batches, "threads": threads, "rounds": GRID_ROUNDS},
        "rows": "validation rows (raw columns)",
    }


def _setting(label: str) -> int | str:
    return "all" if label == "all" else int(label)


def decide_and_write(
    run_dir: Path,
    original_dir: Path,
    manifest: Manifest,
    config: CompressConfig,
    ctx: Context,
    cands: list[Candidate],
    notes: dict[str, Any],
    notify: Callable[[str], None],
) -> CompressionResult:
    target = {**config.target, "threads": thread_label(config.target["threads"])}
    tb, tt = int(target["batch_size"]), str(target["threads"])
    scored = [
        Scored(
            c.name,
            c.valid_score,
            c.reference_score,
            c.latency(tb, tt),
            c.throughput(tb, tt),
            c.size_bytes,
            eligible=c.eligible,
            why_not=c.why_not,
        )
        for c in cands
        if c.status != "failed" and c.timings
    ]
    selection = select(
        scored,
        tolerance=ctx.tolerance,
        objective=str(target["objective"]),
        budget=config.budget,
        maximize=ctx.maximize,
    )
    for c in cands:
        if c.status != "failed":
            c.status = selection.status.get(c.name, c.status)
            c.reason = selection.reason.get(c.name, c.reason)
            c.pareto = c.name in selection.pareto
        else:
            c.reason = c.why_not
    configs = sorted({(t.batch_size, t.threads) for c in cands for t in c.timings})
    rows = [candidate_row(c, ctx.metric, configs) for c in cands]
    hardware = hardware_fingerprint()
    result = CompressionResult(
        run_dir=run_dir,
        chosen=selection.chosen,
        metric=ctx.metric,
        tolerance=ctx.tolerance,
        tolerance_setting=config.tolerance,
        target=target,
        budget=dict(config.budget),
        rows=rows,
        notes=notes,
        hardware=hardware,
    )
    notify(f"writing {len(cands)} candidates to {run_dir / 'candidates'}")
    _write_outputs(run_dir, original_dir, manifest, cands, result, ctx)
    write_csv(run_dir / "compression.csv", rows)
    return result


def _candidate_manifest(original: Manifest, c: Candidate, ctx: Context, hardware: dict[str, Any]) -> Manifest:
    m = Manifest.from_dict(original.to_dict())
    m.files, m.outputs, m.versions = {}, [], {}
    m.extra = {k: v for k, v in m.extra.items() if k not in ("compression", "benchmark")}
    if c.name != "original":
        m.family, m.params = c.family or original.family, dict(c.model_params)
        m.metrics = {"task": ctx.task, "metric": ctx.metric, "test": c.test, "validation": c.valid}
    m.extra["compression"] = {
        "candidate": c.name,
        "method": c.method,
        "params": c.params,
        "parent": c.parent,
        "reference": c.reference,
        "valid": c.valid_score,
        "reference_valid": c.reference_score,
        "drop": c.drop,
        "status": c.status,
        "reason": c.reason,
        "pareto": c.pareto,
    }
    m.extra["benchmark"] = {
        "model_bytes": c.size_bytes,
        "model_gzip_bytes": c.gzip_bytes,
        "memory_bytes": c.memory_bytes,
        "timings": [asdict(t) for t in c.timings],
        "rows": "validation rows (raw columns)",
        "hardware": hardware,
    }
    return m


def _write_outputs(
    run_dir: Path,
    original_dir: Path,
    manifest: Manifest,
    cands: list[Candidate],
    result: CompressionResult,
    ctx: Context,
) -> None:
    root = run_dir / "candidates"
    root.mkdir(exist_ok=True)
    keep = root / "original"
    if original_dir != keep:  # first compression: keep the original as candidates/original
        staging = root / "original.tmp"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(original_dir, staging)
        clean = read_manifest(staging)
        clean.extra = {k: v for k, v in clean.extra.items() if k != "compression"}
        write_manifest(staging, clean)
        if keep.exists():
            shutil.rmtree(keep)
        staging.rename(keep)
    for old in root.iterdir():
        if old.is_dir() and old.name != "original":
            shutil.rmtree(old)
    by_name = {c.name: c for c in cands}
    for c in cands:
        if c.graph is None or c.name == "original":
            continue
        write_artifact(root / c.name, c.graph, _candidate_manifest(manifest, c, ctx, result.hardware))
    chosen = by_name[result.chosen]
    assert chosen.graph is not None
    final = _candidate_manifest(manifest, chosen, ctx, result.hardware)
    final.extra["compression"] = {
        **final.extra["compression"],
        "decision": {k: v for k, v in result.to_dict().items() if k not in ("candidates", "hardware")},
        "candidates": [{"candidate": c.name, "status": c.status, "reason": c.reason} for c in cands],
        "csv": "../compression.csv",
    }
    write_artifact(run_dir / "model", chosen.graph, final)
