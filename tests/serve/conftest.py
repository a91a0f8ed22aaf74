"""Shared fixtures: real artifacts (built once per session) and real servers on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._artifacts import build_mixed, build_numeric, build_poison, build_regression


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders ``runs/<name>/model`` for the mixed, numeric, regression, poison and strict models."""
    root = tmp_path_factory.mktemp("runs")
    out = {
        "mixed": build_mixed(root / "mixed" / "model"),
        "numeric": build_numeric(root / "numeric" / "model"),
        "reg": build_regression(root / "reg" / "model"),
        "poison": build_poison(root / "poison" / "model"),
        "strict": build_mixed(
            root / "strict" / "model", name="strict", extra={"serving": {"unknown_categories": "reject"}}
        ),
    }
    return {name: path.parent for name, path in out.items()}


@pytest.fixture()
def tampered(runs: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the mixed run with one byte of its graph changed."""
    target = tmp_path / "tampered"
    shutil.copytree(runs["mixed"], target)
    graph = target / "model" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``leanfit.serve.serve(...)`` in a subprocess on 127.0.0.1, stopped with SIGTERM."""

    def __init__(self, paths: list[Path], *, env: dict[str, str] | None = None, **kwargs: object) -> None:
        self.port = free_port()
        self.final_output = ""
        self.url = f"http://127.0.0.1:{self.port}"
        call = f"serve({[str(p) for p in paths]!r}, port={self.port}, **{kwargs!r})"
        code = f"import sys\nfrom leanfit.serve import serve\nsys.exit({call})"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def wait_ready(self, timeout: float = 30.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.output()}")

    def output(self) -> str:
        if self.log.closed:
            return self.final_output
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.final_output = self.output()
            self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(runs: dict[str, Path]) -> Iterator[ServerProcess]:
    """One real server with the mixed, numeric and regression models (default settings)."""
    proc = ServerProcess([runs["mixed"], runs["numeric"], runs["reg"]], drain_timeout=5.0).wait_ready()
    yield proc
    proc.stop()
