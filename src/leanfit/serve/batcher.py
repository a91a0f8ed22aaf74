"""Run model calls off the event loop: one call per request, or dynamic batches of rows.

Two interchangeable runners behind :class:`BaseRunner`:

* :class:`DirectRunner` (batching off): each request is its own model call, in a thread.
* :class:`Batcher`: concurrent requests are concatenated along rows into one call of at most
  ``max_batch_size`` rows. A batch is sent when it is full, when ``max_delay_ms`` has passed
  since its *first* request arrived (one deadline per batch), or - with the default
  ``adaptive`` policy - as soon as the model is free and either the request is alone or no
  further request arrived during one turn of the event loop (so a lone caller never waits). A request larger than ``max_batch_size`` runs alone. If a batched call
  fails, each member is re-run alone so only the poisoned request fails. Callers whose
  deadline passed, who were cancelled, or who disconnected while queued are skipped.

The model call itself runs in a thread (ONNX Runtime releases the GIL), so the loop keeps
parsing and answering requests while the model works.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from .._logging import get_logger
from .errors import BadRequest, ClientDisconnected, DeadlineExceeded, ServeError, Unavailable
from .feeds import join_feeds
from .metrics import ModelMetrics

__all__ = ["BaseRunner", "Batcher", "DirectRunner", "ModelCall"]

logger = get_logger("leanfit.serve.batcher")

Feeds = Mapping[str, np.ndarray]
Outputs = dict[str, np.ndarray]
ModelCall = Callable[[Feeds], Outputs]
Watch = Callable[[], Awaitable[None]]

_QUEUED, _RUNNING, _DEAD = 0, 1, 2
#: Requests queued longer than this get a watcher that notices a client disconnecting.
WATCH_AFTER_S = 0.05


def _retry_after(queued_rows: int, max_batch_size: int) -> str:
    return str(max(1, min(30, queued_rows // max(max_batch_size, 1) // 100 + 1)))


class BaseRunner(abc.ABC):
    """Runs one model's feeds off the event loop and returns each caller its own outputs."""

    def __init__(
        self,
        name: str,
        call: ModelCall,
        *,
        metrics: ModelMetrics,
        max_queue_rows: int,
        instances: int = 1,
    ) -> None:
        self.name = name
        self.call = call
        self.metrics = metrics
        self.max_queue_rows = max_queue_rows
        self.instances = instances
        self._executor: ThreadPoolExecutor | None = None
        self.closed = False

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.instances, thread_name_prefix=f"leanfit-{self.name}"
            )
        return self._executor

    @property
    @abc.abstractmethod
    def queued_rows(self) -> int:
        """Rows accepted but not yet finished (direct) or not yet sent to the model (batched)."""

    @abc.abstractmethod
    async def submit(
        self, feeds: Feeds, rows: int, *, timeout: float | None = None, watch: Watch | None = None
    ) -> Outputs:
        """Run ``feeds`` (``rows`` rows) and return this caller's outputs.

        Raises:
            Unavailable: the queue is full (503, with ``Retry-After``) or the runner is closed.
            DeadlineExceeded: ``timeout`` seconds passed first (504).
            BadRequest: the model failed on these rows (it did not fail on the others).
            ClientDisconnected: ``watch`` returned (the client left) while the rows were queued.
        """

    def close(self) -> None:
        self.closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _overloaded(self, rows: int) -> Unavailable:
        self.metrics.rejected("queue_full")
        return Unavailable(
            f"model {self.name!r} is overloaded: {self.queued_rows} rows are queued and this request adds "
            f"{rows}, over max_queue_rows={self.max_queue_rows}; retry later",
            headers={"retry-after": _retry_after(self.queued_rows, 1)},
        )

    def _run_one(self, feeds: Feeds) -> Outputs | BaseException:
        start = time.perf_counter()
        try:
            return self.call(feeds)
        except Exception as exc:  # the model's own error (ONNX Runtime raises untyped errors)
            return exc
        finally:
            self.metrics.model_call.observe(time.perf_counter() - start)

    def _model_failed(self, exc: BaseException) -> ServeError:
        if isinstance(exc, ServeError):
            return exc
        logger.warning("model %r failed on a request's data: %s: %s", self.name, type(exc).__name__, exc)
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return BadRequest(f"model {self.name!r} could not run on this request's data: {message[:500]}")


class DirectRunner(BaseRunner):
    """Batching off: one model call per request, in a thread, at most ``instances`` at once."""

    def __init__(
        self, name: str, call: ModelCall, *, metrics: ModelMetrics, max_queue_rows: int, instances: int = 1
    ):
        super().__init__(name, call, metrics=metrics, max_queue_rows=max_queue_rows, instances=instances)
        self._inflight_rows = 0

    @property
    def queued_rows(self) -> int:
        return self._inflight_rows

    def _timed(self, feeds: Feeds, arrival: float) -> Outputs | BaseException:
        self.metrics.queue_wait.observe(time.perf_counter() - arrival)
        return self._run_one(feeds)

    async def submit(
        self, feeds: Feeds, rows: int, *, timeout: float | None = None, watch: Watch | None = None
    ) -> Outputs:
        if self.closed:
            raise Unavailable(f"model {self.name!r} is shutting down", headers={"retry-after": "1"})
        if self._inflight_rows + rows > self.max_queue_rows and self._inflight_rows:
            raise self._overloaded(rows)
        self._inflight_rows += rows
        self.metrics.batch_rows.observe(rows)
        self.metrics.batch_requests.observe(1)
        loop = asyncio.get_running_loop()
        try:
            try:
                future = loop.run_in_executor(self.executor, self._timed, feeds, time.perf_counter())
            except RuntimeError:  # the executor was shut down
                raise Unavailable(f"model {self.name!r} is shutting down") from None
            if timeout is None:
                try:
                    result = await future
                except asyncio.CancelledError:
                    if self.closed and not _being_cancelled():  # cancelled by close(), not by the caller
                        raise Unavailable(f"model {self.name!r} is shutting down") from None
                    raise
            else:
                try:
                    result = await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    self.metrics.rejected("deadline")
                    raise DeadlineExceeded(
                        f"deadline of {timeout * 1000:.0f} ms passed before model {self.name!r} answered"
                    ) from None
        finally:
            self._inflight_rows -= rows
        if isinstance(result, BaseException):
            raise self._model_failed(result)
        self.metrics.rows.inc(rows)
        return result


class _Item:
    __slots__ = ("arrival", "feeds", "future", "rows", "state", "watch", "watcher")

    def __init__(self, feeds: Feeds, rows: int, future: asyncio.Future[Any], watch: Watch | None) -> None:
        self.feeds = feeds
        self.rows = rows
        self.future = future
        self.arrival = time.perf_counter()
        self.state = _QUEUED
        self.watch = watch
        self.watcher: asyncio.Task[None] | None = None


class Batcher(BaseRunner):
    """Dynamic batching of rows across concurrent requests (see the module docstring).

    Example:
        >>> batcher = Batcher("m", predictor.run, metrics=m, max_batch_size=64, max_delay_ms=2,
        ...                   max_queue_rows=4096)                     # doctest: +SKIP
        >>> outputs = await batcher.submit(feeds, rows=1)              # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        call: ModelCall,
        *,
        metrics: ModelMetrics,
        max_batch_size: int,
        max_delay_ms: float,
        max_queue_rows: int,
        policy: str = "adaptive",
        instances: int = 1,
    ) -> None:
        super().__init__(name, call, metrics=metrics, max_queue_rows=max_queue_rows, instances=instances)
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000.0
        self.policy = policy
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._busy = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._running: dict[int, list[_Item]] = {}  # batches handed to a worker, by id
        self._work_event = asyncio.Event()
        self._slot = asyncio.Event()
        self._full = asyncio.Event()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    # -- lifecycle -------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._dispatcher is not None and not self._dispatcher.done():
            return
        if self._loop is not loop:  # first use, or a new loop (tests): fresh primitives
            self._work_event, self._slot, self._full = asyncio.Event(), asyncio.Event(), asyncio.Event()
            self._busy = 0
        self._loop = loop
        self._dispatcher = loop.create_task(self._dispatch_forever(), name=f"leanfit-batcher-{self.name}")
        self._watchdog = loop.create_task(self._watch_forever(), name=f"leanfit-watchdog-{self.name}")

    def close(self) -> None:
        """Stop dispatching; queued callers get 503."""
        self.closed = True
        for task in (self._dispatcher, self._watchdog):
            if task is not None:
                task.cancel()
        pending = list(self._queue) + [item for batch in self._running.values() for item in batch]
        for item in pending:
            if not item.future.done():
                item.future.set_result(Unavailable(f"model {self.name!r} is shutting down"))
        self._queue.clear()
        self._running.clear()
        self._queued_rows = 0
        super().close()

    # -- callers -----------------------------------------------------------------------------
    async def submit(
        self, feeds: Feeds, rows: int, *, timeout: float | None = None, watch: Watch | None = None
    ) -> Outputs:
        if self.closed:
            raise Unavailable(f"model {self.name!r} is shutting down", headers={"retry-after": "1"})
        if self._queued_rows + rows > self.max_queue_rows and self._queued_rows:
            raise self._overloaded(rows)
        self._ensure_started()
        assert self._loop is not None
        item = _Item(feeds, rows, self._loop.create_future(), watch)
        self._queue.append(item)
        self._queued_rows += rows
        if self._queued_rows >= self.max_batch_size:
            self._full.set()
        self._work_event.set()
        try:
            if timeout is None:
                result = await item.future
            else:
                result = await asyncio.wait_for(item.future, timeout)
        except TimeoutError:
            self._forget(item)
            self.metrics.rejected("deadline")
            raise DeadlineExceeded(
                f"deadline of {timeout * 1000:.0f} ms passed before model {self.name!r} answered"  # type: ignore[operator]
            ) from None
        except asyncio.CancelledError:
            disconnected = item.state == _DEAD and item.watcher is not None and item.watcher.done()
            self._forget(item)
            if disconnected and not _being_cancelled():
                raise ClientDisconnected() from None
            raise
        if isinstance(result, BaseException):
            raise self._model_failed(result)
        return cast(Outputs, result)

    def _forget(self, item: _Item) -> None:
        if item.state == _QUEUED:
            item.state = _DEAD
            self._queued_rows -= item.rows
        if item.watcher is not None and not item.watcher.done():
            item.watcher.cancel()

    # -- dispatch ----------------------------------------------------------------------------
    async def _dispatch_forever(self) -> None:
        while True:
            try:
                await self._dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug here must not wedge every caller
                logger.exception("batcher for model %r failed; continuing", self.name)
                await asyncio.sleep(0.001)

    def _drop_dead_head(self) -> None:
        queue = self._queue
        while queue and (queue[0].state == _DEAD or queue[0].future.done()):
            item = queue.popleft()
            if item.state == _QUEUED:
                item.state = _DEAD
                self._queued_rows -= item.rows

    async def _dispatch_once(self) -> None:
        self._drop_dead_head()
        if not self._queue:
            self._work_event.clear()
            await self._work_event.wait()
            return
        if self._busy >= self.instances:
            self._slot.clear()
            await self._slot.wait()
            return
        deadline = self._queue[0].arrival + self.max_delay
        if self.policy == "deadline":
            while self._queued_rows < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), remaining)
        elif len(self._queue) > 1:  # others arrived with it: wait while more keep coming
            seen = len(self._queue)
            while self._queued_rows < self.max_batch_size and time.perf_counter() < deadline:
                await asyncio.sleep(0)
                if len(self._queue) == seen:
                    break
                seen = len(self._queue)
        batch = self._take()
        if batch:
            self._launch(batch)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        total = 0
        queue = self._queue
        while queue:
            item = queue[0]
            if item.state == _DEAD or item.future.done():
                queue.popleft()
                if item.state == _QUEUED:
                    item.state = _DEAD
                    self._queued_rows -= item.rows
                continue
            if batch and total + item.rows > self.max_batch_size:
                break
            queue.popleft()
            item.state = _RUNNING
            self._queued_rows -= item.rows
            if item.watcher is not None:
                item.watcher.cancel()
            batch.append(item)
            total += item.rows
            if total >= self.max_batch_size:
                break
        if self._queued_rows < self.max_batch_size:
            self._full.clear()
        return batch

    def _launch(self, batch: list[_Item]) -> None:
        """Hand a batch to a worker thread; :meth:`_complete` runs on the loop when it is done."""
        start = time.perf_counter()
        rows = [item.rows for item in batch]
        for item in batch:
            self.metrics.queue_wait.observe(start - item.arrival)
        self.metrics.batch_rows.observe(sum(rows))
        self.metrics.batch_requests.observe(len(batch))
        self._busy += 1
        self._running[id(batch)] = batch
        try:
            self.executor.submit(self._work, self._loop, batch, [item.feeds for item in batch], rows)
        except RuntimeError:  # the executor was shut down (closing)
            self._complete(batch, [Unavailable(f"model {self.name!r} is shutting down")] * len(batch))

    def _work(self, loop: Any, batch: list[_Item], feeds: list[Feeds], rows: list[int]) -> None:
        results = self._run_batch(feeds, rows)
        with contextlib.suppress(RuntimeError):  # the loop closed while the model ran
            loop.call_soon_threadsafe(self._complete, batch, results)

    def _complete(self, batch: list[_Item], results: list[Outputs | BaseException]) -> None:
        self._running.pop(id(batch), None)
        self._busy -= 1
        self._slot.set()
        self._work_event.set()
        done = 0
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            item.future.set_result(result)  # an exception result is raised by submit() for this caller alone
            if not isinstance(result, BaseException):
                done += item.rows
        self.metrics.rows.inc(done)

    def _run_batch(self, feeds: list[Feeds], rows: list[int]) -> list[Outputs | BaseException]:
        """In a worker thread: one call for the whole batch, or each member alone if that fails."""
        if len(feeds) == 1:
            return [self._run_one(feeds[0])]
        start = time.perf_counter()
        try:
            outputs = self.call(join_feeds(feeds))
            total = sum(rows)
            if any(np.ndim(a) == 0 or a.shape[0] != total for a in outputs.values()):
                raise ValueError("an output has no row per input row; cannot split the batch")
            bounds = np.cumsum(rows)[:-1]
            per_output = {name: np.split(array, bounds) for name, array in outputs.items()}
            self.metrics.model_call.observe(time.perf_counter() - start)
            return [{name: parts[i] for name, parts in per_output.items()} for i in range(len(feeds))]
        except Exception as exc:
            logger.info(
                "batched call of model %r (%d requests) failed (%s); running each request alone",
                self.name,
                len(feeds),
                type(exc).__name__,
            )
        return [self._run_one(f) for f in feeds]

    # -- disconnect watchdog ---------------------------------------------------------------
    async def _watch_forever(self) -> None:
        while True:
            if not self._queue:
                await self._work_event.wait()
                if not self._queue:
                    await asyncio.sleep(WATCH_AFTER_S)
                    continue
            await asyncio.sleep(WATCH_AFTER_S)
            cutoff = time.perf_counter() - WATCH_AFTER_S
            for item in list(self._queue):
                if item.arrival > cutoff:
                    break
                if item.state == _QUEUED and item.watch is not None and item.watcher is None:
                    item.watcher = asyncio.get_running_loop().create_task(self._watch_item(item))

    async def _watch_item(self, item: _Item) -> None:
        assert item.watch is not None
        try:
            await item.watch()
        except asyncio.CancelledError:
            raise
        except Exception:
            return
        if item.state == _QUEUED and not item.future.done():
            item.state = _DEAD
            self._queued_rows -= item.rows
            self.metrics.rejected("disconnected")
            item.future.cancel()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())
