"""``ServeConfig``: every knob of the server in one typed, validated place."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .errors import ServeConfigError

__all__ = ["ServeConfig"]

BatchPolicy = Literal["adaptive", "deadline"]
_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True)
class ServeConfig:
    """Settings of one server; the CLI flags and :func:`leanfit.serve.serve` only fill it.

    Attributes:
        host, port: where to listen (``127.0.0.1`` unless told otherwise).
        max_batch_size: rows per model call; ``0`` or ``1`` turns batching off (one call per request).
        max_delay_ms: the longest a queued request waits for companions, counted from the arrival
            of the first request of the batch.
        max_queue_rows: rows allowed to wait per model; past it requests get 503 with ``Retry-After``.
        batch_policy: ``"adaptive"`` dispatches as soon as the model is free and the request is
            alone or no new request arrived during one turn of the event loop (a lone caller pays
            nothing), still capped by ``max_delay_ms`` and ``max_batch_size``; ``"deadline"`` always waits for a full batch or
            the deadline (Triton's dynamic batcher).
        model_instances: model calls of one model that may run at once (threads).
        cache_size, cache_bytes: response cache bounds (entries, bytes); ``cache_size=0`` turns it off.
        token: the bearer token clients must send (``None``: no auth). Never printed.
        max_body_bytes: request body limit (413 past it).
        request_timeout_ms: default per-request deadline (``None``: none); a request may set its own.
        drain_timeout: seconds between SIGTERM and exit at most.
        intra_op_threads: ONNX Runtime intra-op threads per model instance (``None``: all cores but
            one, shared among the instances, so the event loop keeps a core; see
            :func:`leanfit.serve.registry.intra_op_threads`).
        drift_window: rows kept per model for ``/v2/models/{m}/drift``.
        access_log: one JSON line per request on the ``leanfit.serve.access`` logger.
        log_level: level of the ``leanfit`` and ``uvicorn`` loggers when :func:`serve` sets them up.

    Example:
        >>> ServeConfig(max_batch_size=0).batching
        False
        >>> "s3cret" in repr(ServeConfig(token="s3cret"))
        False
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 64
    max_delay_ms: float = 2.0
    max_queue_rows: int = 4096
    batch_policy: BatchPolicy = "adaptive"
    model_instances: int = 1
    cache_size: int = 10_000
    cache_bytes: int = 64 * 1024 * 1024
    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 64 * 1024 * 1024
    request_timeout_ms: float | None = None
    drain_timeout: float = 30.0
    intra_op_threads: int | None = None
    drift_window: int = 1000
    access_log: bool = True
    log_level: str = "info"

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("port", 0 <= self.port <= 65535, "an integer in 0..65535"),
            ("max_batch_size", self.max_batch_size >= 0, "0 (off) or a positive number of rows"),
            ("max_delay_ms", self.max_delay_ms >= 0, "a non-negative number of milliseconds"),
            ("max_queue_rows", self.max_queue_rows >= 1, "a positive number of rows"),
            ("batch_policy", self.batch_policy in ("adaptive", "deadline"), "'adaptive' or 'deadline'"),
            ("model_instances", self.model_instances >= 1, "at least 1"),
            ("cache_size", self.cache_size >= 0, "0 (off) or a positive number of entries"),
            ("cache_bytes", self.cache_bytes >= 0, "a non-negative number of bytes"),
            ("max_body_bytes", self.max_body_bytes >= 1, "a positive number of bytes"),
            (
                "request_timeout_ms",
                self.request_timeout_ms is None or self.request_timeout_ms > 0,
                "None or a positive number of milliseconds",
            ),
            ("drain_timeout", self.drain_timeout > 0, "a positive number of seconds"),
            (
                "intra_op_threads",
                self.intra_op_threads is None or self.intra_op_threads >= 1,
                "None (all cores but one) or at least 1",
            ),
            ("drift_window", self.drift_window >= 1, "a positive number of rows"),
            ("log_level", self.log_level.lower() in _LOG_LEVELS, f"one of {', '.join(_LOG_LEVELS)}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ServeConfigError(f"ServeConfig.{name} must be {expected}; got {getattr(self, name)!r}")
        if self.token is not None and not self.token.strip():
            raise ServeConfigError("ServeConfig.token is empty; pass None for no authentication")

    @property
    def batching(self) -> bool:
        """Whether concurrent requests share model calls."""
        return self.max_batch_size > 1

    def replace(self, **changes: Any) -> ServeConfig:
        """A copy with some fields changed (validated again)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ServeConfigError(f"ServeConfig has no field(s) {unknown}; known: {sorted(known)}")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ServeConfig(**values)
