"""The Starlette app: Open Inference Protocol routes, ``/predict``, drift, metrics, OpenAPI.

Routes (all answer JSON; errors are ``{"error": "..."}``):

=======  ===============================================  ==============================================
method   path                                             what
=======  ===============================================  ==============================================
GET      ``/v2/health/live``, ``/v2/health/ready``        liveness; readiness (503 while draining)
GET      ``/v2``                                          server name, version, extensions
GET      ``/v2/models/{m}[/versions/{v}]``                model metadata
GET      ``/v2/models/{m}[/versions/{v}]/ready``          model readiness
POST     ``/v2/models/{m}[/versions/{v}]/infer``          inference (JSON or binary tensors)
GET      ``/v2/models/{m}[/versions/{v}]/drift``          drift of recent inputs
POST     ``/v2/repository/index``                         models and their state
POST     ``/v2/repository/models/{m}/load|unload``        reload from disk (verified) / unload
POST     ``/predict``, ``/models/{m}/predict``            ``{"rows": [...]}`` for people without a V2 client
GET      ``/metrics``                                     Prometheus text format
GET      ``/openapi.json``                                the OpenAPI document
=======  ===============================================  ==============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from .._logging import get_logger
from ..artifacts import Predictor
from ..exceptions import ArtifactError
from .config import ServeConfig
from .errors import BadRequest, NotFound, ServeConfigError, ServeError, Unavailable
from .jsonio import dumps
from .metrics import CONTENT_TYPE, Metrics
from .openapi import openapi_document
from .protocol import encode_infer_response, parse_infer
from .registry import ModelEntry, model_name_for, open_model
from .rows import encode_predict_response, parse_rows
from .security import EdgeState, ServeMiddleware, error_body, read_body

__all__ = ["EXTENSIONS", "ModelSource", "Service", "create_app"]

logger = get_logger("leanfit.serve")

#: Protocol extensions this server implements (reported by ``GET /v2``).
EXTENSIONS = ["binary_tensor_data", "model_repository"]

ModelSource = (
    tuple[str, Predictor] | tuple[str, "str | os.PathLike[str]"] | Predictor | str | os.PathLike[str]
)
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Reply = tuple[int, bytes, dict[str, str]]
Handler = Callable[[Scope, Receive], Awaitable[Reply]]
_JSON = {"content-type": "application/json"}
_INFER = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_PREDICT = re.compile(r"/models/([^/]+)/predict")
_VERSIONED_INFER = "/v2/models/{model}/versions/{version}/infer"


def _json(payload: Any) -> Reply:
    return 200, dumps(payload), _JSON


class Endpoint:
    """A raw ASGI endpoint for one handler: no Request/Response objects on the hot path.

    The handler returns ``(status, body, headers)``; a :class:`ServeError` becomes its JSON error.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.__name__ = getattr(handler, "__name__", "endpoint")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, headers = await self.handler(scope, receive)
        except ServeError as exc:
            status, body, headers = exc.status, error_body(exc.message), {**_JSON, **exc.headers}
        raw = [(b"content-length", str(len(body)).encode())]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def _watch(receive: Receive) -> Callable[[], Awaitable[None]]:
    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    return watch


class Service:
    """The state behind the routes: models, config, metrics and the edge (auth, limits, draining)."""

    def __init__(self, entries: list[ModelEntry], config: ServeConfig, metrics: Metrics) -> None:
        self.models = {entry.name: entry for entry in entries}
        self.config = config
        self.metrics = metrics
        self.edge = EdgeState(
            token=config.token,
            max_body_bytes=config.max_body_bytes,
            metrics=metrics,
            access_log=config.access_log,
        )
        self.edge.fast_route = self.fast_route
        self._infer_endpoint = Endpoint(self.infer)
        self._predict_endpoint = Endpoint(self.predict)

    def fast_route(self, path: str) -> tuple[Endpoint, dict[str, str], str] | None:
        """The POST inference routes, matched without Starlette's router (the hot path)."""
        if path.endswith("/infer"):
            match = _INFER.fullmatch(path)
            if match is None:
                return None
            if match[2] is None:
                return self._infer_endpoint, {"model": match[1]}, "/v2/models/{model}/infer"
            return self._infer_endpoint, {"model": match[1], "version": match[2]}, _VERSIONED_INFER
        if path == "/predict":
            return self._predict_endpoint, {}, "/predict"
        match = _PREDICT.fullmatch(path)
        if match is not None:
            return self._predict_endpoint, {"model": match[1]}, "/models/{model}/predict"
        return None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def draining(self) -> bool:
        return self.edge.draining

    def begin_drain(self) -> None:
        """Readiness turns 503 now; new inference requests are refused; in-flight ones finish."""
        if not self.edge.draining:
            logger.info("draining: readiness is now 503; %d request(s) in flight", self.edge.inflight)
        self.edge.draining = True

    @property
    def inflight(self) -> int:
        return self.edge.inflight

    def close(self) -> None:
        for entry in self.models.values():
            entry.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        logger.info("serving model(s) %s", ", ".join(f"{n} (v{e.version})" for n, e in self.models.items()))
        try:
            yield
        finally:
            self.close()

    # -- lookups ---------------------------------------------------------------------------
    def entry(self, scope: Scope) -> ModelEntry:
        params = scope.get("path_params", {})
        name = params.get("model")
        if name is None:
            if len(self.models) != 1:
                raise BadRequest(
                    f"several models are served ({', '.join(self.models)}); use /models/{{name}}/predict"
                )
            return next(iter(self.models.values()))
        entry = self.models.get(name)
        if entry is None:
            raise NotFound(f"unknown model {name!r}; this server has {sorted(self.models)}")
        version = params.get("version")
        if version is not None and version != entry.version:
            raise NotFound(f"model {name!r} has no version {version!r}; it serves version {entry.version!r}")
        return entry

    # -- health and metadata ---------------------------------------------------------------
    async def live(self, scope: Scope, receive: Receive) -> Reply:
        return _json({"live": True})

    async def ready(self, scope: Scope, receive: Receive) -> Reply:
        if self.draining:
            raise Unavailable("the server is shutting down")
        return _json({"ready": True})

    async def server_metadata(self, scope: Scope, receive: Receive) -> Reply:
        return _json({"name": "leanfit", "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(self, scope: Scope, receive: Receive) -> Reply:
        return _json(self.entry(scope).metadata)

    async def model_ready(self, scope: Scope, receive: Receive) -> Reply:
        entry = self.entry(scope)
        if self.draining:
            raise Unavailable(f"model {entry.name!r} is not ready: the server is shutting down")
        if not entry.ready:
            raise Unavailable(f"model {entry.name!r} is not ready: it is unloaded")
        return _json({"name": entry.name, "ready": True})

    # -- inference -------------------------------------------------------------------------
    async def infer(self, scope: Scope, receive: Receive) -> Reply:
        entry = self.entry(scope)
        headers = dict(scope["headers"])
        body = await read_body(receive, self.config.max_body_bytes, _text(headers.get(b"content-encoding")))
        parsed = parse_infer(
            body,
            entry.schema,
            header_length=_text(headers.get(b"inference-header-content-length")),
            timeout_header=_text(headers.get(b"x-request-timeout-ms")),
        )
        scope["leanfit.log"] = {"model": entry.name, "rows": parsed.rows, "id": parsed.id}
        outputs = await entry.infer(parsed.feeds, parsed.rows, timeout=parsed.timeout, watch=_watch(receive))
        payload, extra = encode_infer_response(entry.schema, parsed, outputs)
        return 200, payload, extra

    async def predict(self, scope: Scope, receive: Receive) -> Reply:
        entry = self.entry(scope)
        headers = dict(scope["headers"])
        body = await read_body(receive, self.config.max_body_bytes, _text(headers.get(b"content-encoding")))
        parsed = parse_rows(body, entry.schema, timeout_header=_text(headers.get(b"x-request-timeout-ms")))
        scope["leanfit.log"] = {"model": entry.name, "rows": parsed.rows}
        outputs = await entry.infer(parsed.feeds, parsed.rows, timeout=parsed.timeout, watch=_watch(receive))
        return (
            200,
            encode_predict_response(entry.schema, outputs, task=entry.task, classes=entry.classes),
            _JSON,
        )

    # -- drift, metrics, repository, docs --------------------------------------------------
    async def drift(self, scope: Scope, receive: Receive) -> Reply:
        entry = self.entry(scope)
        try:
            report = await asyncio.to_thread(entry.drift)
        except ArtifactError as exc:
            raise NotFound(str(exc)) from None
        return _json({**report.to_dict(), "window_size": self.config.drift_window})

    async def metrics_text(self, scope: Scope, receive: Receive) -> Reply:
        for entry in self.models.values():
            if entry.window.generation:
                try:
                    await asyncio.to_thread(entry.drift)
                except ArtifactError:
                    continue
        return 200, self.metrics.render(), {"content-type": CONTENT_TYPE}

    async def repository_index(self, scope: Scope, receive: Receive) -> Reply:
        return _json(
            [
                {
                    "name": e.name,
                    "version": e.version,
                    "state": "READY" if e.ready else "UNAVAILABLE",
                    "reason": "" if e.ready else "unloaded",
                }
                for e in self.models.values()
            ]
        )

    async def repository_load(self, scope: Scope, receive: Receive) -> Reply:
        entry = self.entry(scope)
        try:
            await entry.reload()
        except ArtifactError as exc:
            logger.error("reload of model %r refused: %s", entry.name, exc)
            raise BadRequest(
                f"model {entry.name!r} was not reloaded (still serving the old one): {exc}"
            ) from None
        logger.info("model %r reloaded from %s (version %s)", entry.name, entry.path, entry.version)
        return _json({})

    async def repository_unload(self, scope: Scope, receive: Receive) -> Reply:
        entry = self.entry(scope)
        entry.ready = False
        entry.cache.clear()
        logger.info("model %r unloaded", entry.name)
        return _json({})

    async def openapi(self, scope: Scope, receive: Receive) -> Reply:
        return _json(openapi_document(list(self.models), __version__))

    def routes(self) -> list[Route]:
        v = "/versions/{version}"
        table: list[tuple[str, Handler, str]] = [
            ("/v2/models/{model}/infer", self.infer, "POST"),
            ("/v2/models/{model}" + v + "/infer", self.infer, "POST"),
            ("/predict", self.predict, "POST"),
            ("/models/{model}/predict", self.predict, "POST"),
            ("/v2/health/live", self.live, "GET"),
            ("/v2/health/ready", self.ready, "GET"),
            ("/v2", self.server_metadata, "GET"),
            ("/v2/models/{model}", self.model_metadata, "GET"),
            ("/v2/models/{model}" + v, self.model_metadata, "GET"),
            ("/v2/models/{model}/ready", self.model_ready, "GET"),
            ("/v2/models/{model}" + v + "/ready", self.model_ready, "GET"),
            ("/v2/models/{model}/drift", self.drift, "GET"),
            ("/v2/models/{model}" + v + "/drift", self.drift, "GET"),
            ("/v2/repository/index", self.repository_index, "POST"),
            ("/v2/repository/models/{model}/load", self.repository_load, "POST"),
            ("/v2/repository/models/{model}/unload", self.repository_unload, "POST"),
            ("/metrics", self.metrics_text, "GET"),
            ("/openapi.json", self.openapi, "GET"),
        ]
        return [
            Route(path, Endpoint(handler), methods=[method], name=handler.__name__)
            for path, handler, method in table
        ]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail
    if exc.status_code == 404:
        message = f"no route {request.url.path!r}; see /openapi.json"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path!r}"
    return Response(
        error_body(message),
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
        media_type="application/json",
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
    return Response(
        error_body(f"internal server error ({type(exc).__name__}); see the server log"),
        500,
        media_type="application/json",
    )


def _normalise(models: Any, config: ServeConfig) -> list[tuple[str, Predictor]]:
    items: Iterable[Any]
    if isinstance(models, Mapping):
        items = list(models.items())
    elif isinstance(models, (str, os.PathLike, Predictor)):
        items = [models]
    else:
        items = list(models)
    out: list[tuple[str, Predictor]] = []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            name, source = item
        else:
            name, source = None, item
        if isinstance(source, Predictor):
            predictor = source
        elif isinstance(source, (str, os.PathLike)):
            predictor = open_model(source, config)
        else:
            raise ServeConfigError(
                f"create_app() takes run folders, artifact folders, Predictors or (name, either) pairs; "
                f"got {type(source).__name__}"
            )
        out.append((str(name) if name is not None else model_name_for(predictor.path), predictor))
    if not out:
        raise ServeConfigError("create_app() needs at least one model")
    names = [name for name, _ in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ServeConfigError(f"two models are named {duplicates}; give each its own name (--name)")
    return out


def create_app(models: Any, *, config: ServeConfig | None = None) -> Starlette:
    """Build the ASGI app for some models (for tests, embedding, or your own ASGI server).

    Args:
        models: run folders, artifact folders, :class:`~leanfit.Predictor` objects, ``(name, either)``
            pairs, or a ``{name: either}`` mapping. A model's default name is its run folder's name.
        config: server settings (defaults: :class:`ServeConfig`).

    Example:
        >>> app = create_app([("credit", leanfit.load("runs/credit"))], config=ServeConfig())  # doctest: +SKIP
        >>> TestClient(app).get("/v2/models/credit/ready").status_code                          # doctest: +SKIP
        200
    """
    config = config or ServeConfig()
    metrics = Metrics()
    entries = [ModelEntry(name, predictor, config, metrics) for name, predictor in _normalise(models, config)]
    service = Service(entries, config, metrics)
    app = Starlette(
        routes=service.routes(),
        middleware=[Middleware(ServeMiddleware, edge=service.edge)],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=service.lifespan,
    )
    app.state.leanfit = service
    return app
