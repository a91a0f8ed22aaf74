"""Start-up refusals, exit codes, names, token from the environment, and SIGTERM draining."""

from __future__ import annotations

import concurrent.futures
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ServerProcess, free_port
from .test_badrequests import GOOD


def run_serve(
    args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    code = f"import sys\nfrom leanfit.serve import serve\nsys.exit(serve({args}))"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_a_tampered_artifact_is_refused_at_start(tampered: Path) -> None:
    result = run_serve(f"[{str(tampered)!r}], port={free_port()}")
    assert result.returncode == 2
    assert "refusing to serve:" in result.stderr and "model.onnx: SHA-256 mismatch" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("['/nonexistent/run']", "refusing to serve: /nonexistent/run: no such folder"),
        ("[RUN], names=['a', 'b']", "got 2 --name value(s) for 1 path(s)"),
        ("[RUN, RUN]", "two models are named ['mixed']"),
        ("[RUN], names=['bad name']", "model name 'bad name' cannot be used in a URL"),
        ("[RUN], token_env='LEANFIT_TEST_UNSET_TOKEN'", "LEANFIT_TEST_UNSET_TOKEN is empty or unset"),
        (
            "[RUN], max_batch_size=-1",
            "ServeConfig.max_batch_size must be 0 (off) or a positive number of rows; got -1",
        ),
    ],
)
def test_bad_starts_exit_2_with_one_clear_line(runs: dict[str, Path], args: str, message: str) -> None:
    result = run_serve(args.replace("RUN", repr(str(runs["mixed"]))))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_a_busy_port_exits_1(runs: dict[str, Path]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        result = run_serve(f"[{str(runs['reg'])!r}], port={sock.getsockname()[1]}")
    assert result.returncode == 1 and "the server did not start" in result.stderr


def test_names_and_a_token_from_the_environment(runs: dict[str, Path]) -> None:
    proc = ServerProcess(
        [runs["mixed"], runs["reg"]],
        names=["credit", "prices"],
        token_env="LEANFIT_TEST_TOKEN",
        env={"LEANFIT_TEST_TOKEN": "t0k3n"},
    )
    try:
        proc.wait_ready()
        auth = {"Authorization": "Bearer t0k3n"}
        assert httpx.get(proc.url + "/v2/models/credit").status_code == 401
        assert httpx.get(proc.url + "/v2/models/credit", headers=auth).json()["name"] == "credit"
        r = httpx.post(
            proc.url + "/models/prices/predict", json={"rows": [{"x": 1, "city": "rome"}]}, headers=auth
        )
        assert r.status_code == 200
        assert httpx.get(proc.url + "/v2/models/mixed", headers=auth).status_code == 404
    finally:
        assert proc.stop() == 0


def test_sigterm_drains_in_flight_requests_and_exits_in_time(runs: dict[str, Path]) -> None:
    # requests wait 1.5 s in the batcher (deadline policy), so SIGTERM lands while they are in flight
    proc = ServerProcess(
        [runs["mixed"]], batch_policy="deadline", max_delay_ms=1500, max_batch_size=1000, drain_timeout=10
    )
    try:
        proc.wait_ready()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(httpx.post, proc.url + "/v2/models/mixed/infer", json=GOOD, timeout=30)
                for _ in range(8)
            ]
            time.sleep(0.5)
            sent = time.monotonic()
            proc.proc.terminate()
            time.sleep(0.2)
            ready = httpx.get(proc.url + "/v2/health/ready", timeout=5)
            refused = httpx.post(proc.url + "/v2/models/mixed/infer", json=GOOD, timeout=5)
            results = [f.result() for f in futures]
        code = proc.proc.wait(15)
        elapsed = time.monotonic() - sent
    finally:
        proc.stop()
    assert ready.status_code == 503 and ready.json() == {"error": "the server is shutting down"}
    assert refused.status_code == 503 and refused.headers["connection"] == "close"
    assert [r.status_code for r in results] == [200] * 8
    assert code == 0 and elapsed < 10
    assert "draining: readiness is now 503" in proc.output()
