"""Dynamic batching and the direct runner, on a real event loop with real ONNX Runtime calls."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import leanfit
from leanfit.serve import ServeConfig, create_app
from leanfit.serve.batcher import Batcher, DirectRunner
from leanfit.serve.errors import BadRequest, ClientDisconnected, DeadlineExceeded, Unavailable
from leanfit.serve.metrics import Metrics

from .client import AppClient

Feeds = Mapping[str, np.ndarray]


class Recorder:
    """Wraps a model call; records the rows of every call and can hold calls until released."""

    def __init__(self, call: Callable[[Feeds], dict[str, np.ndarray]], delay: float = 0.0) -> None:
        self.call = call
        self.delay = delay
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, feeds: Feeds) -> dict[str, np.ndarray]:
        self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        self.batches.append(len(next(iter(feeds.values()))))
        return self.call(feeds)


def mixed_feeds(i: int, rows: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    return {
        "age": rng.normal(40, 10, (rows, 1)).astype(np.float32),
        "rooms": rng.integers(1, 7, (rows, 1)).astype(np.int64),
        "member": rng.random((rows, 1)) < 0.5,
        "grade": rng.choice(["A", "B", "C", "Z"], (rows, 1)).astype(object),
    }


def batcher(call: Any, **kwargs: Any) -> Batcher:
    settings = {"max_batch_size": 16, "max_delay_ms": 2.0, "max_queue_rows": 1000, "policy": "adaptive"}
    settings.update(kwargs)
    return Batcher("m", call, metrics=Metrics().for_model("m"), **settings)


@pytest.fixture(scope="module")
def mixed(runs: dict[str, Path]) -> leanfit.Predictor:
    return leanfit.load(runs["mixed"])


def test_concurrent_rows_form_bounded_batches_and_each_caller_gets_its_own(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run, delay=0.005)
    b = batcher(rec, max_batch_size=16)

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(*[b.submit(mixed_feeds(i), 1) for i in range(40)])

    try:
        results = asyncio.run(main())
    finally:
        b.close()
    assert sum(rec.batches) == 40 and max(rec.batches) <= 16 and max(rec.batches) > 1
    for i, out in enumerate(results):
        direct = mixed.run(mixed_feeds(i))
        np.testing.assert_allclose(out["probabilities"], direct["probabilities"], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(out["label"], direct["label"])


def test_a_lone_request_does_not_wait_with_the_adaptive_policy(mixed: leanfit.Predictor) -> None:
    b = batcher(mixed.run, max_delay_ms=2000)

    async def main() -> float:
        await b.submit(mixed_feeds(0), 1)  # warm the thread and the session
        start = time.perf_counter()
        await b.submit(mixed_feeds(1), 1)
        return time.perf_counter() - start

    try:
        assert asyncio.run(main()) < 0.5  # far below max_delay: alone, it went at once
    finally:
        b.close()


def test_a_lone_request_returns_within_max_delay_plus_a_margin(mixed: leanfit.Predictor) -> None:
    b = batcher(mixed.run, max_delay_ms=60, policy="deadline")

    async def main() -> float:
        start = time.perf_counter()
        await b.submit(mixed_feeds(0), 1)
        return time.perf_counter() - start

    try:
        elapsed = asyncio.run(main())
    finally:
        b.close()
    assert 0.055 <= elapsed < 0.06 + 0.4


def test_the_deadline_counts_from_the_first_arrival(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run)
    b = batcher(rec, max_batch_size=100, max_delay_ms=200, policy="deadline")

    async def late() -> float:
        await asyncio.sleep(0.12)
        await b.submit(mixed_feeds(1), 1)
        return time.perf_counter()

    async def main() -> tuple[float, float, float]:
        start = time.perf_counter()
        first = asyncio.ensure_future(b.submit(mixed_feeds(0), 1))
        second_done = await late()
        await first
        return start, time.perf_counter(), second_done

    try:
        start, _, second_done = asyncio.run(main())
    finally:
        b.close()
    assert rec.batches == [2]  # one batch for both
    assert 0.19 <= second_done - start < 0.2 + 0.3  # sent at first arrival + 200 ms, not 120 + 200


def test_a_request_larger_than_max_batch_size_runs_alone(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run, delay=0.01)
    b = batcher(rec, max_batch_size=4)

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(
            b.submit(mixed_feeds(0), 1), b.submit(mixed_feeds(1, 10), 10), b.submit(mixed_feeds(2), 1)
        )

    try:
        out = asyncio.run(main())
    finally:
        b.close()
    assert 10 in rec.batches and max(rec.batches) == 10 and sum(rec.batches) == 12
    assert out[1]["label"].shape == (10,) and out[0]["label"].shape == (1,)


def test_a_poisoned_request_fails_alone(runs: dict[str, Path]) -> None:
    poison = leanfit.load(runs["poison"])
    rec = Recorder(poison.run, delay=0.005)
    b = batcher(rec, max_batch_size=32)

    async def one(i: int) -> Any:
        try:
            return await b.submit({"idx": np.array([[i]], dtype=np.int64)}, 1)
        except BadRequest as exc:
            return exc

    async def main() -> list[Any]:
        return await asyncio.gather(*[one(i if i != 4 else 100) for i in range(10)])

    try:
        results = asyncio.run(main())
    finally:
        b.close()
    assert isinstance(results[4], BadRequest) and "model 'm' could not run" in str(results[4])
    for i, r in enumerate(results):
        if i != 4:
            assert r["prediction"].tolist() == [1.5 * i]


def test_cancelled_callers_are_skipped_and_do_not_wedge(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run)
    b = batcher(rec, max_batch_size=100, max_delay_ms=100, policy="deadline")

    async def main() -> list[Any]:
        tasks = [asyncio.ensure_future(b.submit(mixed_feeds(i), 1)) for i in range(10)]
        await asyncio.sleep(0.01)
        for t in tasks[:5]:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert b.queued_rows == 0
        results.append(await b.submit(mixed_feeds(99), 1))  # still serving
        return results

    try:
        results = asyncio.run(main())
    finally:
        b.close()
    assert all(isinstance(r, asyncio.CancelledError) for r in results[:5])
    assert all(isinstance(r, dict) for r in results[5:])
    assert rec.batches == [5, 1]


def test_disconnected_callers_are_skipped(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run)
    b = batcher(rec, max_batch_size=100, max_delay_ms=400, policy="deadline")

    async def gone() -> None:
        await asyncio.sleep(0.01)  # the client closes its connection

    async def stays() -> None:
        await asyncio.sleep(3600)

    async def main() -> list[Any]:
        calls = [b.submit(mixed_feeds(i), 1, watch=gone if i % 2 else stays) for i in range(6)]
        return await asyncio.gather(*calls, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        b.close()
    assert [isinstance(r, ClientDisconnected) for r in results] == [False, True] * 3
    assert rec.batches == [3]


def test_a_full_queue_answers_503_with_retry_after(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run)
    rec.gate.clear()  # the model is stuck: rows pile up
    b = batcher(rec, max_batch_size=2, max_queue_rows=4)

    async def main() -> Unavailable:
        tasks = [asyncio.ensure_future(b.submit(mixed_feeds(i), 1)) for i in range(2)]
        await asyncio.sleep(0.05)  # 2 rows are running (stuck)
        tasks += [asyncio.ensure_future(b.submit(mixed_feeds(i), 1)) for i in range(2, 6)]
        await asyncio.sleep(0.05)  # 4 are queued
        with pytest.raises(Unavailable) as err:
            await b.submit(mixed_feeds(9), 1)
        rec.gate.set()
        await asyncio.gather(*tasks)
        return err.value

    try:
        exc = asyncio.run(main())
    finally:
        b.close()
    assert exc.status == 503 and int(exc.headers["retry-after"]) >= 1
    assert "max_queue_rows=4" in exc.message


def test_a_deadline_is_504_and_the_queue_recovers(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run, delay=0.3)
    b = batcher(rec)

    async def main() -> None:
        with pytest.raises(DeadlineExceeded, match="deadline of 50 ms passed"):
            await b.submit(mixed_feeds(0), 1, timeout=0.05)
        out = await b.submit(mixed_feeds(1), 1, timeout=5)
        assert out["label"].shape == (1,)

    try:
        asyncio.run(main())
    finally:
        b.close()


def test_direct_runner(runs: dict[str, Path], mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run, delay=0.002)
    runner = DirectRunner("m", rec, metrics=Metrics().for_model("m"), max_queue_rows=3)
    poison = DirectRunner(
        "p", leanfit.load(runs["poison"]).run, metrics=Metrics().for_model("p"), max_queue_rows=10
    )

    async def main() -> None:
        outs = await asyncio.gather(*[runner.submit(mixed_feeds(i), 1) for i in range(3)])
        assert rec.batches == [1, 1, 1] and all(o["label"].shape == (1,) for o in outs)
        rec.delay = 0.3
        slow = asyncio.ensure_future(runner.submit(mixed_feeds(0), 3))
        await asyncio.sleep(0.01)
        with pytest.raises(Unavailable):
            await runner.submit(mixed_feeds(1), 1)
        await slow
        with pytest.raises(DeadlineExceeded):
            await runner.submit(mixed_feeds(2), 1, timeout=0.05)
        with pytest.raises(BadRequest, match="model 'p' could not run"):
            await poison.submit({"idx": np.array([[50]], dtype=np.int64)}, 1)

    try:
        asyncio.run(main())
    finally:
        runner.close()
        poison.close()


def test_batching_through_http(runs: dict[str, Path]) -> None:
    app = create_app([runs["reg"]], config=ServeConfig(max_batch_size=8, cache_size=0))
    predictor = leanfit.load(runs["reg"])
    with AppClient(app) as c:

        async def main() -> list[Any]:
            calls = [
                c.client.post(
                    "/predict", json={"rows": [{"x": float(i), "city": ["paris", "rome", "oslo"][i % 3]}]}
                )
                for i in range(30)
            ]
            return await asyncio.gather(*calls)

        responses = c.run(main())
        metrics = c.get("/metrics").text
    for i, r in enumerate(responses):
        assert r.status_code == 200
        expected = predictor.predict([{"x": float(i), "city": ["paris", "rome", "oslo"][i % 3]}])
        np.testing.assert_allclose(r.json()["predictions"], expected, rtol=1e-6)
    counts = {
        float(line.split('le="')[1].split('"')[0]): float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("leanfit_batch_size_rows_bucket")
    }
    assert counts[8.0] == counts[float("inf")]  # no batch above max_batch_size
    assert counts[1.0] < counts[8.0]  # and some were real batches


def test_overload_and_deadline_over_http(runs: dict[str, Path]) -> None:
    app = create_app(
        [runs["reg"]],
        config=ServeConfig(max_batch_size=2, max_queue_rows=2, cache_size=0, request_timeout_ms=5000),
    )
    with AppClient(app) as c:
        entry = app.state.leanfit.models["reg"]
        gate = threading.Event()
        original = entry._call

        def stuck(feeds: Feeds) -> dict[str, np.ndarray]:
            gate.wait(10)
            return original(feeds)

        entry.runner.call = stuck

        async def main() -> list[Any]:
            body = {"rows": [{"x": 1.0, "city": "rome"}]}
            first = [asyncio.ensure_future(c.client.post("/predict", json=body)) for _ in range(2)]
            await asyncio.sleep(0.1)  # both run (stuck)
            first += [asyncio.ensure_future(c.client.post("/predict", json=body)) for _ in range(2)]
            await asyncio.sleep(0.1)  # both wait: the queue is full
            late = await c.client.post("/predict", json=body)
            timed = await c.client.post("/predict", json={**body, "parameters": {"timeout_ms": 50}})
            gate.set()
            return [late, timed, *(await asyncio.gather(*first))]

        late, timed, *first = c.run(main())
    assert late.status_code == 503 and late.headers["retry-after"] and "overloaded" in late.json()["error"]
    assert timed.status_code == 503  # refused before its deadline could matter
    assert all(r.status_code == 200 for r in first)


def test_deadline_header_over_http(runs: dict[str, Path]) -> None:
    app = create_app([runs["reg"]], config=ServeConfig(cache_size=0))
    with AppClient(app) as c:
        entry = app.state.leanfit.models["reg"]
        original = entry._call

        def slow(feeds: Feeds) -> dict[str, np.ndarray]:
            time.sleep(0.3)
            return original(feeds)

        entry.runner.call = slow
        r = c.post(
            "/predict", json={"rows": [{"x": 1.0, "city": "rome"}]}, headers={"X-Request-Timeout-Ms": "50"}
        )
        assert r.status_code == 504 and r.json() == {
            "error": "deadline of 50 ms passed before model 'reg' answered"
        }
        entry.runner.call = original
        assert c.post("/predict", json={"rows": [{"x": 1.0, "city": "rome"}]}).status_code == 200


def test_closing_fails_queued_and_running_callers_with_503(mixed: leanfit.Predictor) -> None:
    rec = Recorder(mixed.run)
    rec.gate.clear()
    b = batcher(rec, max_batch_size=1)

    async def main() -> list[Any]:
        tasks = [asyncio.ensure_future(b.submit(mixed_feeds(i), 1)) for i in range(3)]
        await asyncio.sleep(0.05)  # one running (stuck), two queued
        b.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        rec.gate.set()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, Unavailable) and "shutting down" in str(r) for r in results)
