"""The models a server holds: each artifact with its runner, cache, drift window and metadata."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Predictor, load, resolve_model_dir
from ..exceptions import ArtifactError
from .batcher import BaseRunner, Batcher, DirectRunner, Watch
from .cache import ResponseCache, cache_key
from .config import ServeConfig
from .drift import DriftReport, DriftWindow, compute_drift
from .errors import Unavailable
from .metrics import Metrics
from .protocol import ModelSchema

__all__ = ["ModelEntry", "intra_op_threads", "model_name_for", "open_model"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ORT_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


def model_name_for(path: str | os.PathLike[str]) -> str:
    """The name a model is served under by default: its run folder's name.

    Example:
        >>> model_name_for("runs/credit/model")     # doctest: +SKIP
        'credit'
    """
    directory = resolve_model_dir(path)
    return directory.parent.name if directory.name == "model" else directory.name


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ArtifactError(
            f"model name {name!r} cannot be used in a URL; use letters, digits, '.', '_' or '-' "
            "(start with a letter or digit), e.g. --name credit-v2"
        )
    return name


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def intra_op_threads(config: ServeConfig) -> int:
    """ONNX Runtime intra-op threads per model instance: as set, else all cores but one.

    ONNX Runtime's own default sizes its pool to every core and spins on them between calls;
    beside an event loop that needs a core of its own, that halves the server's throughput on a
    small machine. So unless told otherwise one core is left to the loop and the rest are shared
    among the model instances: ``max(1, (cores - 1) // model_instances)``.

    Example:
        >>> intra_op_threads(ServeConfig(intra_op_threads=3))
        3
    """
    if config.intra_op_threads is not None:
        return config.intra_op_threads
    return max(1, (available_cores() - 1) // config.model_instances)


def open_model(path: str | os.PathLike[str], config: ServeConfig) -> Predictor:
    """Load and verify an artifact (checksums first) with the server's ONNX Runtime settings."""
    return load(path, intra_op_threads=intra_op_threads(config))


def _strict_categories(predictor: Predictor) -> frozenset[str]:
    serving = predictor.manifest.extra.get("serving") or {}
    rule = serving.get("unknown_categories") if isinstance(serving, Mapping) else None
    categorical = {c.name for c in predictor.manifest.inputs if c.kind == "categorical"}
    if rule == "reject":
        return frozenset(categorical)
    if isinstance(rule, list):
        return frozenset(str(n) for n in rule) & categorical
    return frozenset()


def _output_metadata(predictor: Predictor) -> list[dict[str, Any]]:
    declared = {o.get("name"): o for o in predictor.manifest.outputs if isinstance(o, Mapping)}
    out = []
    for node in predictor.session.get_outputs():
        spec = declared.get(node.name, {})
        shape = spec.get("shape") or [d if isinstance(d, int) else -1 for d in (node.shape or [])]
        out.append(
            {
                "name": node.name,
                "datatype": spec.get("datatype") or _ORT_TO_V2.get(node.type, "FP32"),
                "shape": [int(d) if isinstance(d, int) and d >= 0 else -1 for d in shape],
            }
        )
    return out


class ModelEntry:
    """One served model: predictor, schema, runner, cache and drift window.

    The runner calls ``entry.predictor`` at call time, so :meth:`replace` swaps the model
    under a running server (the cache is cleared; the drift window too if the columns changed).
    """

    def __init__(self, name: str, predictor: Predictor, config: ServeConfig, metrics: Metrics) -> None:
        self.name = check_name(name)
        self.config = config
        self.metrics = metrics.for_model(name)
        self._all_metrics = metrics
        self.ready = True
        self.cache = ResponseCache(config.cache_size, config.cache_bytes)
        self.window = DriftWindow(config.drift_window)
        self._drift: tuple[int, DriftReport] | None = None
        self.runner: BaseRunner = self._make_runner()
        self.metrics.queue_rows.set_function(lambda: float(self.runner.queued_rows))
        self.metrics.cache_entries.set_function(lambda: float(len(self.cache)))
        self.metrics.cache_bytes.set_function(lambda: float(self.cache.bytes))
        self._install(predictor)

    def _make_runner(self) -> BaseRunner:
        c = self.config
        if c.batching:
            return Batcher(
                self.name,
                self._call,
                metrics=self.metrics,
                max_batch_size=c.max_batch_size,
                max_delay_ms=c.max_delay_ms,
                max_queue_rows=c.max_queue_rows,
                policy=c.batch_policy,
                instances=c.model_instances,
            )
        return DirectRunner(
            self.name,
            self._call,
            metrics=self.metrics,
            max_queue_rows=c.max_queue_rows,
            instances=c.model_instances,
        )

    def _install(self, predictor: Predictor) -> None:
        manifest = predictor.manifest
        self.predictor = predictor
        self.path: Path = Path(predictor.path)
        self.version = str(manifest.version)
        self.task = manifest.task
        self.classes = list(manifest.classes)
        graph = manifest.files.get(manifest.graph, {}).get("sha256", "")
        self.identity = f"{self.name}:{self.version}:{graph}"
        self.schema = ModelSchema(
            name=self.name,
            version=self.version,
            columns=list(manifest.inputs),
            outputs=[o.name for o in predictor.session.get_outputs()],
            strict_categories=_strict_categories(predictor),
        )
        self.outputs = _output_metadata(predictor)
        parameters: dict[str, Any] = {"task": self.task, "family": manifest.family}
        if self.classes:
            parameters["classes"] = self.classes
        if self.schema.all_numeric:
            parameters["matrix_input"] = {
                "datatype": "FP32",
                "shape": [-1, len(self.schema.columns)],
                "columns": self.schema.feature_names,
            }
        self.metadata = {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": c.name, "datatype": c.datatype, "shape": [-1, 1]} for c in self.schema.columns
            ],
            "outputs": self.outputs,
            "parameters": parameters,
        }

    def _call(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.predictor.run(feeds)

    def replace(self, predictor: Predictor) -> None:
        """Serve ``predictor`` from now on; cached outputs of the old model are dropped."""
        old_columns = self.schema.columns
        self._install(predictor)
        self.cache.clear()
        if old_columns != self.schema.columns:
            self.window.clear()
        self._drift = None
        self.ready = True

    async def reload(self) -> None:
        """Load the artifact again from its folder (checksums verified) and swap it in."""
        predictor = await asyncio.to_thread(open_model, self.path, self.config)
        self.replace(predictor)

    async def infer(
        self,
        feeds: Mapping[str, np.ndarray],
        rows: int,
        *,
        timeout: float | None = None,
        watch: Watch | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs for validated feeds: from the cache, or from the runner (batched or direct)."""
        if not self.ready:
            raise Unavailable(f"model {self.name!r} is unloaded; load it again to serve it")
        self.window.add(feeds, rows)
        key = None
        if self.cache.enabled:
            key = cache_key(self.identity, feeds)
            hit = self.cache.get(key)
            if hit is not None:
                self.metrics.cache_hits.inc()
                return hit
            self.metrics.cache_misses.inc()
        if timeout is None and self.config.request_timeout_ms is not None:
            timeout = self.config.request_timeout_ms / 1000.0
        outputs = await self.runner.submit(feeds, rows, timeout=timeout, watch=watch)
        if key is not None:
            evicted = self.cache.put(key, {k: np.array(v, copy=True) for k, v in outputs.items()})
            if evicted:
                self.metrics.cache_evictions.inc(evicted)
        return outputs

    def drift(self) -> DriftReport:
        """The drift report of the current window (recomputed only when new rows arrived)."""
        generation = self.window.generation
        if self._drift is not None and self._drift[0] == generation:
            return self._drift[1]
        values, rows = self.window.snapshot()
        report = compute_drift(
            self.name, self.predictor.manifest.reference, self.schema.columns, values, rows
        )
        self._drift = (generation, report)
        self._all_metrics.set_drift(
            self.name, [(f.feature, f.score, f.drifted) for f in report.features], report.share
        )
        return report

    def close(self) -> None:
        self.runner.close()
