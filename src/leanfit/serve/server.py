"""``serve()``: load artifacts, build the app and run it on uvicorn until SIGTERM (graceful drain)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from .._logging import get_logger
from ..exceptions import ArtifactError
from .config import ServeConfig
from .errors import ServeConfigError

__all__ = ["run_app", "serve"]

logger = get_logger("leanfit.serve")

EXIT_OK = 0
EXIT_STARTUP = 1
EXIT_REFUSED = 2


def _setup_logging(level: str) -> None:
    numeric = logging.getLevelName(level.upper()) if level.lower() != "trace" else 5
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root = logging.getLogger("leanfit")
    root.setLevel(numeric)
    if not any(not isinstance(h, logging.NullHandler) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        uvicorn_logger = logging.getLogger("uvicorn")
        uvicorn_logger.setLevel(max(numeric, logging.WARNING))
        uvicorn_logger.addHandler(handler)
        uvicorn_logger.propagate = False
    access = logging.getLogger("leanfit.serve.access")
    if not access.handlers:
        line = logging.StreamHandler(sys.stderr)
        line.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(line)
        access.propagate = False


def _token(token_env: str | None) -> str | None:
    if token_env is None:
        return None
    value = os.environ.get(token_env, "")
    if not value.strip():
        raise ServeConfigError(
            f"--token-env {token_env} was given but the environment variable {token_env} is empty or unset; "
            f"export {token_env}=<secret> first"
        )
    return value


def _make_server(app: Any, config: ServeConfig) -> Any:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn, but the first SIGTERM/SIGINT drains (readiness 503, in-flight finish) before exiting."""

        drain_started = False
        loop: asyncio.AbstractEventLoop | None = None
        drain_task: asyncio.Task[None] | None = None

        async def startup(self, sockets: Any = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().startup(sockets=sockets)
            if self.started:
                for server in getattr(self, "servers", []):
                    for sock in server.sockets or []:
                        host, port = sock.getsockname()[:2]
                        logger.info("listening on http://%s:%d", host, port)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.drain_started or self.loop is None:
                logger.warning("second signal %s: exiting now", signal.Signals(sig).name)
                self.force_exit = True
                self.should_exit = True
                return
            self.drain_started = True
            app.state.leanfit.begin_drain()
            self.loop.call_soon_threadsafe(self._start_drain)

        def _start_drain(self) -> None:
            assert self.loop is not None
            self.drain_task = self.loop.create_task(self._drain())

        async def _drain(self) -> None:
            service = app.state.leanfit
            start = time.monotonic()
            budget = config.drain_timeout
            while service.inflight > 0 and time.monotonic() - start < budget * 0.8:
                await asyncio.sleep(0.01)
            remaining = budget - (time.monotonic() - start)
            self.config.timeout_graceful_shutdown = max(0.05, remaining - 0.5)  # type: ignore[assignment]
            logger.info("drained in %.2f s; stopping", time.monotonic() - start)
            self.should_exit = True

    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_config=None,
        log_level=config.log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(config.drain_timeout)),
    )
    return DrainingServer(uv_config)


def run_app(app: Any, config: ServeConfig) -> int:
    """Run a :func:`create_app` app on uvicorn until a signal; returns the exit code.

    This owns the process, so it also freezes everything loaded so far out of the garbage
    collector's reach (``gc.freeze()``): full collections then scan only objects made while
    serving, which keeps their pauses (and the p99 latency) short.
    """
    gc.collect()
    gc.freeze()
    server = _make_server(app, config)
    try:
        server.run()
    except SystemExit as exc:
        logger.error("the server did not start (exit %s); is %s:%d free?", exc.code, config.host, config.port)
        return EXIT_STARTUP
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl+C during shutdown
        return 130
    if not server.started:
        return EXIT_STARTUP
    logger.info("server stopped")
    return EXIT_OK


def serve(
    paths: Sequence[str | os.PathLike[str]],
    *,
    names: Sequence[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch_size: int = 64,
    max_delay_ms: float = 2.0,
    max_queue_rows: int = 4096,
    cache_size: int = 10_000,
    token_env: str | None = None,
    intra_op_threads: int | None = None,
    drain_timeout: float = 30.0,
    log_level: str = "info",
    batch_policy: str = "adaptive",
    model_instances: int = 1,
    cache_bytes: int = 64 * 1024 * 1024,
    max_body_bytes: int = 64 * 1024 * 1024,
    request_timeout_ms: float | None = None,
    drift_window: int = 1000,
    access_log: bool = True,
) -> int:
    """Serve run folders over HTTP until SIGTERM/SIGINT; returns the process exit code.

    Every artifact is verified (SHA-256 of each file) before anything listens; a tampered or
    missing artifact, a bad name, or an unset token variable logs one clear line and returns 2.
    A port that cannot be bound returns 1. A clean shutdown (drain, then exit within
    ``drain_timeout`` seconds) returns 0.

    Args:
        paths: run folders (``runs/<name>``) or their ``model/`` folders.
        names: one model name per path (default: each run folder's name).
        token_env: name of an environment variable holding the bearer token clients must send.
        Others: see :class:`ServeConfig`.

    Example:
        >>> import sys
        >>> sys.exit(serve(["runs/credit"], port=8000))   # doctest: +SKIP
    """
    _setup_logging(log_level)
    try:
        config = ServeConfig(
            host=host,
            port=port,
            max_batch_size=max_batch_size,
            max_delay_ms=max_delay_ms,
            max_queue_rows=max_queue_rows,
            batch_policy=batch_policy,  # type: ignore[arg-type]
            model_instances=model_instances,
            cache_size=cache_size,
            cache_bytes=cache_bytes,
            token=_token(token_env),
            max_body_bytes=max_body_bytes,
            request_timeout_ms=request_timeout_ms,
            drain_timeout=drain_timeout,
            intra_op_threads=intra_op_threads,
            drift_window=drift_window,
            access_log=access_log,
            log_level=log_level,
        )
        if not paths:
            raise ServeConfigError("no model to serve; pass at least one run folder (runs/<name>)")
        if names is not None and len(names) != len(paths):
            raise ServeConfigError(
                f"got {len(names)} --name value(s) for {len(paths)} path(s); give one per path"
            )
        from .app import create_app
        from .registry import model_name_for, open_model

        models = []
        for index, path in enumerate(paths):
            name = names[index] if names is not None else model_name_for(path)
            models.append((name, open_model(path, config)))
            logger.info("verified %s as model %r", path, name)
        app = create_app(models, config=config)
    except (ArtifactError, ServeConfigError) as exc:
        logger.error("refusing to serve: %s", exc)
        return EXIT_REFUSED
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "listening on %s: reachable from other machines%s",
            host,
            "" if config.token else " without a token",
        )
    return run_app(app, config)
