"""Errors the server turns into HTTP responses.

Each carries the status it maps to; the body is always ``{"error": "<message>"}``::

    LeanfitError
     ├ ServeConfigError(LeanfitError, ValueError)  a ServeConfig field is out of range (raised at start)
     └ ServeError                                   status 500 unless a subclass says otherwise
        ├ BadRequest(ServeError, ValueError)        400  the request cannot be read or does not fit the model
        ├ Unauthorized(ServeError, PermissionError) 401  missing or wrong bearer token
        ├ NotFound(ServeError, LookupError)         404  unknown model, version or route
        ├ PayloadTooLarge(ServeError, ValueError)   413  body (or rows) over the limit
        ├ UnsupportedMediaType(ServeError, ValueError) 415  a Content-Encoding we cannot decode
        ├ Unavailable(ServeError, RuntimeError)     503  not ready, draining, unloaded, or the queue is full
        └ DeadlineExceeded(ServeError, TimeoutError) 504  the request's deadline passed before its rows ran
"""

from __future__ import annotations

from ..exceptions import LeanfitError

__all__ = [
    "BadRequest",
    "ClientDisconnected",
    "DeadlineExceeded",
    "NotFound",
    "PayloadTooLarge",
    "ServeConfigError",
    "ServeError",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]


class ServeConfigError(LeanfitError, ValueError):
    """A server setting is out of range; raised before anything listens."""


class ServeError(LeanfitError):
    """An error with an HTTP status; the message is what the client reads."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ServeError, ValueError):
    status = 400


class Unauthorized(ServeError, PermissionError):
    status = 401


class NotFound(ServeError, LookupError):
    status = 404


class PayloadTooLarge(ServeError, ValueError):
    status = 413


class UnsupportedMediaType(ServeError, ValueError):
    status = 415


class Unavailable(ServeError, RuntimeError):
    status = 503


class DeadlineExceeded(ServeError, TimeoutError):
    status = 504


class ClientDisconnected(Exception):
    """The caller went away while its rows waited; nothing is sent back (logged as status 499)."""
