"""Prometheus metrics, one registry per app (so several apps can live in one process).

Names (all prefixed ``leanfit_``):

==================================  =========  ==========================  ===========================================
name                                type       labels                      meaning
==================================  =========  ==========================  ===========================================
``requests_total``                  counter    route, method, status       every HTTP request, 4xx and 5xx included
``request_duration_seconds``        histogram  route                       time from request start to response end
``inflight_requests``               gauge                                  requests being handled now
``queue_wait_seconds``              histogram  model                       time a request's rows waited for a model call
``queue_rows``                      gauge      model                       rows waiting now
``batch_size_rows``                 histogram  model                       rows per model call
``batch_requests``                  histogram  model                       requests per model call
``model_call_seconds``              histogram  model                       duration of one model call
``rows_total``                      counter    model                       rows inferred (``rate()`` gives rows/s)
``rejected_total``                  counter    model, reason               requests shed: ``queue_full``, ``deadline``, ``disconnected``
``cache_hits_total``                counter    model                       responses served from the cache
``cache_misses_total``              counter    model                       lookups that ran the model
``cache_evictions_total``           counter    model                       entries dropped to respect the bounds
``cache_entries``, ``cache_bytes``  gauge      model                       current cache size
``drift_score``                     gauge      model, feature              p-value (KS, chi-square) or distance (Wasserstein, JS)
``drift_detected``                  gauge      model, feature              1 if the feature drifted, else 0
``drift_share``                     gauge      model                       share of drifted features
==================================  =========  ==========================  ===========================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics", "ModelMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ModelMetrics:
    """The children of every per-model metric, bound once so the hot path does no label lookups."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.queue_wait = metrics.queue_wait.labels(model)
        self.queue_rows = metrics.queue_rows.labels(model)
        self.batch_rows = metrics.batch_rows.labels(model)
        self.batch_requests = metrics.batch_requests.labels(model)
        self.model_call = metrics.model_call.labels(model)
        self.rows = metrics.rows.labels(model)
        self.cache_hits = metrics.cache_hits.labels(model)
        self.cache_misses = metrics.cache_misses.labels(model)
        self.cache_evictions = metrics.cache_evictions.labels(model)
        self.cache_entries = metrics.cache_entries.labels(model)
        self.cache_bytes = metrics.cache_bytes.labels(model)
        self._rejected = metrics.rejected
        self._model = model

    def rejected(self, reason: str) -> None:
        self._rejected.labels(self._model, reason).inc()


class Metrics:
    """All metrics of one app on a private :class:`CollectorRegistry`.

    Example:
        >>> m = Metrics(); m.request("/v2/health/live", "GET", 200, 0.001)
        >>> b'leanfit_requests_total{method="GET",route="/v2/health/live",status="200"} 1.0' in m.render()
        True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "leanfit_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "leanfit_request_duration_seconds",
            "HTTP request latency.",
            ["route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.inflight = Gauge("leanfit_inflight_requests", "Requests being handled now.", registry=r)
        self.inflight.set_function(lambda: float(self.inflight_count()))
        #: Replaced by the app with a function returning the live count (read at scrape time).
        self.inflight_count: Callable[[], int] = lambda: 0
        self.queue_wait = Histogram(
            "leanfit_queue_wait_seconds",
            "Time rows waited for a model call.",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.queue_rows = Gauge("leanfit_queue_rows", "Rows waiting for a model call.", ["model"], registry=r)
        self.batch_rows = Histogram(
            "leanfit_batch_size_rows", "Rows per model call.", ["model"], buckets=_ROWS, registry=r
        )
        self.batch_requests = Histogram(
            "leanfit_batch_requests", "Requests per model call.", ["model"], buckets=_ROWS, registry=r
        )
        self.model_call = Histogram(
            "leanfit_model_call_seconds",
            "Duration of one model call.",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.rows = Counter("leanfit_rows", "Rows inferred.", ["model"], registry=r)
        self.rejected = Counter(
            "leanfit_rejected", "Requests shed before their rows ran.", ["model", "reason"], registry=r
        )
        self.cache_hits = Counter("leanfit_cache_hits", "Response cache hits.", ["model"], registry=r)
        self.cache_misses = Counter("leanfit_cache_misses", "Response cache misses.", ["model"], registry=r)
        self.cache_evictions = Counter(
            "leanfit_cache_evictions", "Response cache evictions.", ["model"], registry=r
        )
        self.cache_entries = Gauge(
            "leanfit_cache_entries", "Entries in the response cache.", ["model"], registry=r
        )
        self.cache_bytes = Gauge(
            "leanfit_cache_bytes", "Bytes held by the response cache.", ["model"], registry=r
        )
        self.drift_score = Gauge(
            "leanfit_drift_score",
            "Drift score per feature: a p-value (ks, chisquare) or a distance (wasserstein, jensenshannon).",
            ["model", "feature"],
            registry=r,
        )
        self.drift_detected = Gauge(
            "leanfit_drift_detected",
            "1 if the feature drifted in the current window.",
            ["model", "feature"],
            registry=r,
        )
        self.drift_share = Gauge("leanfit_drift_share", "Share of drifted features.", ["model"], registry=r)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def for_model(self, model: str) -> ModelMetrics:
        return ModelMetrics(self, model)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request and observe its latency."""
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(seconds)

    def set_drift(self, model: str, features: list[tuple[str, float | None, bool]], share: float) -> None:
        for feature, score, drifted in features:
            if score is not None:
                self.drift_score.labels(model, feature).set(score)
            self.drift_detected.labels(model, feature).set(1.0 if drifted else 0.0)
        self.drift_share.labels(model).set(share)

    def render(self) -> bytes:
        return generate_latest(self.registry)
