"""The edge of the server: bearer token, body limit, draining, catch-all errors, access log, metrics.

One pure-ASGI middleware (no per-request task or thread) wraps every HTTP request:

* ``/v2/health/*`` is always open; every other route needs ``Authorization: Bearer <token>``
  when a token is configured (401 otherwise, compared in constant time).
* A ``Content-Length`` over the limit is refused with 413 before a byte of the body is read;
  a body without one is counted as it streams (:func:`read_body`).
* While draining (after SIGTERM) inference routes answer 503 with ``Connection: close``.
* Any exception a handler lets escape becomes a logged JSON 500 - never a traceback page.
* One JSON line per request on the ``leanfit.serve.access`` logger, and the request metrics.
"""

from __future__ import annotations

import hmac
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .._logging import get_logger
from .errors import (
    BadRequest,
    ClientDisconnected,
    PayloadTooLarge,
    ServeError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .jsonio import dumps
from .metrics import Metrics

__all__ = ["EdgeState", "ServeMiddleware", "error_body", "read_body"]

logger = get_logger("leanfit.serve")
access_logger = get_logger("leanfit.serve.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_OPEN_PREFIX = "/v2/health/"
_INFER_SUFFIXES = ("/infer", "/predict")


class EdgeState:
    """What the middleware needs from the server: limits, token, draining flag, counters."""

    def __init__(self, *, token: str | None, max_body_bytes: int, metrics: Metrics, access_log: bool) -> None:
        self.token = token.encode("utf-8") if token else None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.access_log = access_log
        self.draining = False
        self.inflight = 0
        metrics.inflight_count = lambda: self.inflight
        #: Set by the app: path -> (ASGI endpoint, path params, route template) for the POST hot
        #: routes, which then skip Starlette's router and exception layers.
        self.fast_route: Callable[[str], tuple[ASGIApp, dict[str, str], str] | None] | None = None


_MAX_MESSAGE = 2000
_CLOSE = {"connection": "close"}  # the unread rest of a refused body is not worth reading


def error_body(message: str) -> bytes:
    """``{"error": message}``, with the message cut at 2000 characters."""
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return dumps({"error": message})


async def _send_error(send: Send, exc: ServeError, *, close: bool = False) -> None:
    body = error_body(exc.message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int, content_encoding: str | None = None) -> bytes:
    """Read a request body, refusing it (413) as soon as it passes ``limit`` bytes.

    ``Content-Encoding: gzip`` or ``deflate`` bodies are inflated, and the inflated size is
    held to the same limit.
    """
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected()
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        chunks = [body]
        size = len(body)
        while True:
            if size > limit:
                raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes", headers=_CLOSE)
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
    if len(body) > limit:
        raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes", headers=_CLOSE)
    if content_encoding and content_encoding.lower() not in ("identity", ""):
        body = _inflate(body, content_encoding.lower(), limit)
    return body


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none"
        )
    for wbits in (31,) if encoding == "gzip" else (15, -15):
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge(f"the inflated request body is over the limit of {limit} bytes")
        return out
    raise BadRequest(f"the body is not valid {encoding} data (Content-Encoding: {encoding})")


class ServeMiddleware:
    """Pure-ASGI middleware applying :class:`EdgeState` to every HTTP request."""

    def __init__(self, app: ASGIApp, edge: EdgeState) -> None:
        self.app = app
        self.edge = edge

    def _precheck(self, scope: Scope, path: str) -> tuple[ServeError, bool] | None:
        edge = self.edge
        authorization = content_length = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value
            elif key == b"content-length":
                content_length = value
        if edge.token is not None and not path.startswith(_OPEN_PREFIX):
            expected = b"Bearer " + edge.token
            if authorization is None or not hmac.compare_digest(authorization, expected):
                reason = "missing" if authorization is None else "wrong"
                return (
                    Unauthorized(
                        f"{reason} bearer token; send 'Authorization: Bearer <token>'",
                        headers={"www-authenticate": 'Bearer realm="leanfit"'},
                    ),
                    False,
                )
        if content_length is not None:
            try:
                length = int(content_length)
            except ValueError:
                length = -1
            if length < 0:
                return BadRequest(f"Content-Length {content_length.decode('latin-1')!r} is not a size"), True
            if length > edge.max_body_bytes:
                return (
                    PayloadTooLarge(
                        f"the request body ({length} bytes) is over the limit of {edge.max_body_bytes} bytes"
                    ),
                    True,
                )
        if edge.draining and path.endswith(_INFER_SUFFIXES):
            return Unavailable(
                "the server is shutting down; send this request elsewhere", headers={"retry-after": "1"}
            ), True
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        edge = self.edge
        start = time.perf_counter()
        path: str = scope["path"]
        exchange = [0, 0, False]  # status, bytes out, response started

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange[0] = message["status"]
                exchange[2] = True
            else:
                exchange[1] += len(message.get("body", b""))
            await send(message)

        fast = edge.fast_route(path) if edge.fast_route is not None and scope["method"] == "POST" else None
        template = fast[2] if fast is not None else "unmatched"
        edge.inflight += 1
        try:
            refused = self._precheck(scope, path)
            if refused is not None:
                await _send_error(send_wrapper, refused[0], close=refused[1])
            elif fast is not None:
                scope["path_params"] = fast[1]
                await fast[0](scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except ClientDisconnected:
            exchange[0] = 499
        except Exception as exc:  # the last line of defence: log it, answer JSON
            logger.exception("unhandled error on %s %s", scope.get("method"), path)
            if not exchange[2]:
                await _send_error(
                    send_wrapper,
                    ServeError(f"internal server error ({type(exc).__name__}); see the server log"),
                )
            exchange[0] = exchange[0] or 500
        finally:
            edge.inflight -= 1
            elapsed = time.perf_counter() - start
            if fast is None:
                template = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            status = int(exchange[0])
            edge.metrics.request(template, method, status, elapsed)
            if edge.access_log and access_logger.isEnabledFor(logging.INFO):
                _access(scope, path, template, method, status, elapsed, int(exchange[1]))


def _access(scope: Scope, path: str, route: str, method: str, status: int, elapsed: float, sent: int) -> None:
    client = scope.get("client")
    record: dict[str, Any] = {
        "event": "access",
        "ts": round(time.time(), 3),
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "ms": round(elapsed * 1000.0, 3),
        "bytes_out": sent,
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    extra = scope.get("leanfit.log")
    if extra:
        record.update(extra)
        if isinstance(record.get("id"), str) and len(record["id"]) > 200:
            record["id"] = record["id"][:200] + "..."
    access_logger.info(dumps(record).decode("utf-8"))
