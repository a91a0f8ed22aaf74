"""What `leanfit run` exports is what `leanfit serve` serves: a real server, a client nobody here wrote."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest

import leanfit


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> leanfit.RunResult:
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "amount": rng.normal(50, 10, n).round(2),
            "visits": rng.integers(0, 20, n),
            "member": rng.choice(["true", "false"], n),
            "grade": rng.choice(["A", "B", "C"], n),
            "since": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        }
    )
    frame["label"] = np.where((frame["amount"] > 50) ^ (frame["grade"] == "C"), "up", "down")
    frame.loc[::17, "amount"] = np.nan
    out = tmp_path_factory.mktemp("mixed")
    frame.to_csv(out / "mixed.csv", index=False)
    return leanfit.run(
        {
            "name": "mixed",
            "data": {"source": str(out / "mixed.csv"), "target": "label"},
            "search": {"families": ["hgb"], "trials": 2},
        },
        out=out / "runs",
    )


def test_every_column_kind_is_in_the_schema(mixed_run: leanfit.RunResult) -> None:
    kinds = {c.name: c.kind for c in leanfit.load(mixed_run.run_dir).manifest.inputs}
    assert kinds == {
        "amount": "numeric",
        "visits": "integer",
        "member": "boolean",
        "grade": "categorical",
        "since": "datetime",
    }


def test_leanfit_serve_answers_tritonclient_and_predict(mixed_run: leanfit.RunResult) -> None:
    tritonclient_http = pytest.importorskip("tritonclient.http")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "leanfit.cli", "serve", str(mixed_run.run_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not become ready")
        rows = [
            {"amount": 61.5, "visits": 3, "member": True, "grade": "A", "since": "2022-03-01"},
            {"amount": None, "visits": 0, "member": False, "grade": "Z", "since": "2021-06-15"},
        ]
        expected = leanfit.load(mixed_run.run_dir).predict_proba(rows)
        reply = httpx.post(f"{base}/predict", json={"rows": rows}, timeout=10)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["classes"] == ["down", "up"]
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-5)
        assert body["predictions"] == list(leanfit.load(mixed_run.run_dir).predict(rows))

        client = tritonclient_http.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_model_ready("mixed")
        feeds = leanfit.load(mixed_run.run_dir).feeds(rows)
        inputs = []
        for spec in leanfit.load(mixed_run.run_dir).manifest.inputs:
            tensor = tritonclient_http.InferInput(spec.name, list(feeds[spec.name].shape), spec.datatype)
            tensor.set_data_from_numpy(feeds[spec.name])  # binary, tritonclient's default
            inputs.append(tensor)
        result = client.infer("mixed", inputs)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
        assert result.as_numpy("label").tolist() == list(np.argmax(expected, axis=1))
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=40)
