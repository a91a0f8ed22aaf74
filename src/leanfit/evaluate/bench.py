"""Latency, throughput, size and memory of ONNX graphs on this machine, with ONNX Runtime.

Every compression candidate gets this measurement, and ``leanfit bench`` gives it to any
artifact. The method, in one place:

* one ``InferenceSession`` per graph and thread setting (``intra_op_num_threads`` 1 and
  all cores by default; sequential execution, full graph optimisation);
* warm-up calls first, then ``rounds`` interleaved rounds: in each round every graph runs
  a burst of calls (about ``round_ms`` of work, at least 3 calls), in an order rotated
  from round to round, so a noisy neighbour slows every graph alike;
* every call is timed alone (``perf_counter_ns``); p50/p95/p99 are over all calls, and
  throughput is the median over rounds of rows per second;
* memory is the growth of the process's resident set while a session is created and run
  once at the largest batch (allocators reuse freed pages, so it is a lower bound).

Rows come from the caller (``sample``) or are synthesised from the manifest's reference
statistics (numeric quantiles, categorical frequencies), so ``bench`` needs no data.

Example:
    >>> report = bench_artifact("runs/digits/model", batch_sizes=[1, 32])   # doctest: +SKIP
    >>> report.latency(1, 1) < report.latency(32, 1)                        # doctest: +SKIP
    True
"""

from __future__ import annotations

import gc
import os
import platform
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._logging import get_logger
from ..artifacts import Manifest, resolve_model_dir, verify, write_manifest
from ..exceptions import ArtifactError
from ..schema import to_feeds

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "BenchReport",
    "Timing",
    "bench_artifact",
    "file_sizes",
    "hardware_fingerprint",
    "make_feeds",
    "measure",
    "synthesize_rows",
    "thread_label",
]

logger = get_logger(__name__)

DEFAULT_BATCH_SIZES = (1, 32, 1024)
_ISA_PREFIXES = ("avx2", "avx512", "avx_vnni", "amx", "fma", "f16c", "sse4_2", "neon", "asimd", "sve")
GraphSource = str | os.PathLike[str] | bytes


@dataclass
class Timing:
    """Latency of one graph at one batch size and thread setting (microseconds per call)."""

    batch_size: int
    threads: str
    p50_us: float
    p95_us: float
    p99_us: float
    mean_us: float
    throughput_rows_s: float
    calls: int


def thread_label(threads: int | str) -> str:
    """``"all"`` or a count, as text: the key timings use for a thread setting.

    Example:
        >>> thread_label(1), thread_label("all")
        ('1', 'all')
    """
    if threads == "all":
        return "all"
    count = int(threads)
    if count < 1:
        raise ValueError(f"threads must be >= 1 or 'all'; got {threads!r}")
    return str(count)


def _thread_count(threads: int | str) -> int:
    return max(os.cpu_count() or 1, 1) if threads == "all" else int(threads)


def hardware_fingerprint() -> dict[str, Any]:
    """CPU model, core counts, vector ISA flags and runtime versions of this machine.

    Example:
        >>> sorted(hardware_fingerprint())[:3]
        ['cores_logical', 'cores_physical', 'cpu_model']
    """
    import psutil

    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and value.strip():
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    isa = sorted(f for f in flags if f.startswith(_ISA_PREFIXES) or "vnni" in f)
    versions = {}
    for dist in ("onnxruntime", "onnx", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu_model": model,
        "cores_logical": psutil.cpu_count(logical=True),
        "cores_physical": psutil.cpu_count(logical=False),
        "machine": platform.machine(),
        "system": platform.system(),
        "isa": isa,
        "memory_bytes": int(psutil.virtual_memory().total),
        "versions": versions,
    }


def synthesize_rows(manifest: Manifest, n: int, *, seed: int = 0) -> pd.DataFrame:
    """Draw ``n`` plausible raw rows from an artifact's reference statistics (no training data).

    Numeric-like columns sample between the stored quantiles (and are missing at the stored
    rate when the column is nullable); categorical columns draw levels by frequency.

    Example:
        >>> from leanfit.artifacts import read_manifest
        >>> synthesize_rows(read_manifest("runs/digits/model"), 4).shape   # doctest: +SKIP
        (4, 64)
    """
    rng = np.random.default_rng(seed)
    features = manifest.reference.get("features", {})
    columns: dict[str, Any] = {}
    for spec in manifest.inputs:
        ref = features.get(spec.name, {})
        if spec.kind == "categorical":
            freqs = {k: v for k, v in ref.get("frequencies", {}).items() if k != "__other__"}
            levels = list(freqs) or list(spec.categories) or [""]
            weights = np.asarray([freqs.get(level, 1.0) for level in levels], dtype=np.float64)
            columns[spec.name] = rng.choice(
                np.asarray(levels, dtype=object), size=n, p=weights / weights.sum()
            )
            continue
        quantiles = np.asarray(ref.get("quantiles") or [0.0, 1.0], dtype=np.float64)
        grid = np.linspace(0.0, 1.0, len(quantiles))
        values = np.interp(rng.random(n), grid, quantiles)
        if spec.kind == "integer":
            columns[spec.name] = np.rint(values).astype(np.int64)
        elif spec.kind == "boolean":
            columns[spec.name] = values >= 0.5
        else:
            if spec.nullable:
                values[rng.random(n) < float(ref.get("missing_share", 0.0))] = np.nan
            columns[spec.name] = values.astype(np.float32)
    return pd.DataFrame(columns)


def make_feeds(
    manifest: Manifest, rows: pd.DataFrame, batch_sizes: Iterable[int], *, seed: int = 0
) -> dict[int, dict[str, np.ndarray]]:
    """ONNX feeds of each batch size, drawn from ``rows`` (with replacement when there are too few).

    Example:
        >>> feeds = make_feeds(manifest, synthesize_rows(manifest, 8), [1, 32])   # doctest: +SKIP
        >>> sorted(feeds)                                                         # doctest: +SKIP
        [1, 32]
    """
    if len(rows) == 0:
        raise ArtifactError("no rows to benchmark with; pass a non-empty sample")
    rng = np.random.default_rng(seed)
    out = {}
    for batch in sorted(set(batch_sizes)):
        if batch < 1:
            raise ValueError(f"batch sizes must be >= 1; got {batch}")
        index = rng.choice(len(rows), size=batch, replace=len(rows) < batch)
        out[batch] = to_feeds(rows.iloc[index].reset_index(drop=True), manifest.inputs)
    return out


def _session(graph: GraphSource, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


_RUNTIME_READY = False


def _warm_runtime() -> None:
    """Create one throwaway session, so ONNX Runtime's process-wide setup is not billed to a model."""
    global _RUNTIME_READY
    if _RUNTIME_READY:
        return
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "warm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    for threads in (1, max(os.cpu_count() or 1, 1)):
        _session(model.SerializeToString(), threads).run(None, {"x": np.zeros(1, dtype=np.float32)})
    _RUNTIME_READY = True


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def measure(
    graphs: Mapping[str, GraphSource],
    feeds: Mapping[int, Mapping[str, np.ndarray]],
    *,
    threads: Sequence[int | str] = (1, "all"),
    rounds: int = 7,
    warmup: int = 3,
    round_ms: float = 20.0,
    configs: Sequence[tuple[int, int | str]] | None = None,
    sessions: dict[tuple[str, str], Any] | None = None,
) -> tuple[dict[str, list[Timing]], dict[str, int]]:
    """Time several graphs side by side: every configuration, interleaved rounds, rotated order.

    Args:
        graphs: name -> ONNX file path or serialized graph; all take the same feeds.
        feeds: batch size -> feeds.
        threads: intra-op thread settings (counts or ``"all"``).
        rounds: interleaved rounds per configuration.
        warmup: untimed calls per graph and configuration before the rounds.
        round_ms: work per graph per round, which sets the calls per burst (at least 3).
        configs: ``(batch_size, threads)`` pairs to time; default every batch size x thread setting.
        sessions: a cache ``(name, threads label) -> session`` shared between calls; memory is
            measured only for sessions created in this call.

    Returns:
        ``(timings, memory)``: per graph its :class:`Timing` list, and the resident-set growth
        in bytes of creating and running its one-thread session.

    Example:
        >>> timings, memory = measure({"m": "model.onnx"}, {1: feeds}, threads=[1])   # doctest: +SKIP
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}")
    names = list(graphs)
    pairs = list(configs) if configs is not None else [(b, t) for b in sorted(feeds) for t in threads]
    largest = feeds[max(feeds)]
    sessions = {} if sessions is None else sessions
    memory: dict[str, int] = {}
    _warm_runtime()
    fresh = [name for name in names if (name, "1") not in sessions]
    if fresh:
        gc.collect()  # once: a full collection in a big process takes a good part of a second
    for name in fresh:
        before = _rss()
        session = _session(graphs[name], 1)
        session.run(None, dict(largest))
        memory[name] = max(_rss() - before, 0)
        sessions[name, "1"] = session
    timings: dict[str, list[Timing]] = {name: [] for name in names}
    for batch, setting in pairs:
        label = thread_label(setting)
        for name in names:
            if (name, label) not in sessions:
                sessions[name, label] = _session(graphs[name], _thread_count(setting))
        runs = {name: sessions[name, label] for name in names}
        for name, timing in _time_config(
            runs, dict(feeds[batch]), batch, label, rounds, warmup, round_ms
        ).items():
            timings[name].append(timing)
    return timings, memory


def _time_config(
    sessions: Mapping[str, Any],
    feed: dict[str, np.ndarray],
    batch: int,
    label: str,
    rounds: int,
    warmup: int,
    round_ms: float,
) -> dict[str, Timing]:
    """One configuration: warm up every session, then interleaved rotated rounds of timed bursts."""
    names = list(sessions)
    burst: dict[str, int] = {}
    for name in names:
        start = time.perf_counter()
        for _ in range(max(warmup, 1)):
            sessions[name].run(None, feed)
        per_call = (time.perf_counter() - start) / max(warmup, 1)
        burst[name] = int(min(max(3, round_ms / 1e3 / max(per_call, 1e-7)), 2000))
    calls: dict[str, list[float]] = {name: [] for name in names}
    speeds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            session, n = sessions[name], burst[name]
            times = np.empty(n, dtype=np.float64)
            begin = time.perf_counter_ns()
            for i in range(n):
                t0 = time.perf_counter_ns()
                session.run(None, feed)
                times[i] = time.perf_counter_ns() - t0
            elapsed = (time.perf_counter_ns() - begin) / 1e9
            calls[name].extend((times / 1e3).tolist())
            speeds[name].append(batch * n / max(elapsed, 1e-12))
    out = {}
    for name in names:
        values = np.asarray(calls[name])
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        out[name] = Timing(
            batch_size=int(batch),
            threads=label,
            p50_us=round(float(p50), 2),
            p95_us=round(float(p95), 2),
            p99_us=round(float(p99), 2),
            mean_us=round(float(values.mean()), 2),
            throughput_rows_s=round(float(np.median(speeds[name])), 1),
            calls=int(values.size),
        )
    return out


def file_sizes(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Bytes of a file on disk and after zlib (level 6) compression.

    The second number is what unstructured sparsity can save: zeros compress, but the
    graph on disk and in memory stays dense.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "z"; _ = p.write_bytes(bytes(1000))
        >>> file_sizes(p)[0], file_sizes(p)[1] < 100
        (1000, True)
    """
    data = Path(path).read_bytes()
    return len(data), len(zlib.compress(data, 6))


@dataclass
class BenchReport:
    """What :func:`bench_artifact` measured for one artifact."""

    path: str
    model_bytes: int
    model_gzip_bytes: int
    memory_bytes: int
    timings: list[Timing]
    hardware: dict[str, Any]
    rounds: int
    rows: str
    measured_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def latency(self, batch_size: int, threads: int | str = 1, stat: str = "p50_us") -> float:
        """One latency statistic (microseconds per call) at a batch size and thread setting."""
        label = thread_label(threads)
        for t in self.timings:
            if t.batch_size == batch_size and t.threads == label:
                return float(getattr(t, stat))
        raise KeyError(f"no timing at batch {batch_size} with {label} thread(s)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able measurements (what goes under ``benchmark`` in the manifest)."""
        return {
            "measured_at": self.measured_at,
            "model_bytes": self.model_bytes,
            "model_gzip_bytes": self.model_gzip_bytes,
            "memory_bytes": self.memory_bytes,
            "rounds": self.rounds,
            "rows": self.rows,
            "timings": [asdict(t) for t in self.timings],
            "hardware": self.hardware,
        }

    def table(self) -> Any:
        """A rich ``Table`` of the timings, with size, memory and hardware in the caption."""
        from rich.table import Table

        hw = self.hardware
        table = Table(
            title=f"benchmark of {self.path}",
            caption=(
                f"{self.model_bytes / 1024:.1f} KiB on disk · session memory {self.memory_bytes / 2**20:.1f} MiB · "
                f"{hw.get('cpu_model')} ({hw.get('cores_logical')} logical cores) · "
                f"onnxruntime {hw.get('versions', {}).get('onnxruntime')} · {self.rows}"
            ),
        )
        for column in ("batch", "threads", "p50 µs", "p95 µs", "p99 µs", "rows/s", "calls"):
            table.add_column(column, justify="right")
        for t in self.timings:
            table.add_row(
                str(t.batch_size),
                t.threads,
                f"{t.p50_us:,.1f}",
                f"{t.p95_us:,.1f}",
                f"{t.p99_us:,.1f}",
                f"{t.throughput_rows_s:,.0f}",
                str(t.calls),
            )
        return table


def bench_artifact(
    path: str | os.PathLike[str],
    *,
    batch_sizes: list[int] | None = None,
    threads: Sequence[int | str] = (1, "all"),
    record: bool = True,
    rounds: int = 7,
    sample: pd.DataFrame | None = None,
) -> BenchReport:
    """Benchmark an artifact with ONNX Runtime on this machine.

    Args:
        path: an artifact folder (``runs/<name>/model``) or a run folder.
        batch_sizes: default 1, 32 and 1024.
        threads: intra-op thread settings; ``"all"`` is every logical core.
        record: store the results under ``benchmark`` in the manifest (checksums are
            verified first and rewritten with it; the graph is not touched).
        rounds: interleaved timing rounds per configuration.
        sample: raw rows to feed; default rows synthesised from the manifest's reference statistics.

    Raises:
        ArtifactError: the folder is not an artifact, or a file fails its checksum.

    Example:
        >>> report = bench_artifact("runs/digits", batch_sizes=[1], record=False)   # doctest: +SKIP
        >>> round(report.latency(1, 1)) > 0                                         # doctest: +SKIP
        True
    """
    directory = resolve_model_dir(path)
    manifest = verify(directory)
    sizes = sorted(set(batch_sizes or DEFAULT_BATCH_SIZES))
    if sample is None:
        rows, source = synthesize_rows(manifest, max(256, min(max(sizes), 4096))), "synthetic rows"
    else:
        rows, source = sample, f"{len(sample)} given rows"
    feeds = make_feeds(manifest, rows, sizes)
    graph = directory / manifest.graph
    timings, memory = measure({"model": graph}, feeds, threads=list(threads), rounds=rounds)
    size, packed = file_sizes(graph)
    report = BenchReport(
        path=str(directory),
        model_bytes=size,
        model_gzip_bytes=packed,
        memory_bytes=memory["model"],
        timings=timings["model"],
        hardware=hardware_fingerprint(),
        rounds=rounds,
        rows=source,
    )
    if record:
        manifest.extra["benchmark"] = report.to_dict()
        write_manifest(directory, manifest)
        logger.info("recorded the benchmark in %s", directory / "manifest.json")
    return report
