"""The app in-process (httpx over ASGI): routes, errors, auth, limits, cache, metrics, repository."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

import leanfit
from leanfit.serve import ServeConfig, create_app

from .client import AppClient


def mixed_request(
    age: float | None = 41.0, rooms: int = 2, member: bool = True, grade: str = "B", **extra: object
) -> dict:
    return {
        "inputs": [
            {"name": "age", "shape": [1, 1], "datatype": "FP32", "data": [age]},
            {"name": "rooms", "shape": [1, 1], "datatype": "INT64", "data": [rooms]},
            {"name": "member", "shape": [1, 1], "datatype": "BOOL", "data": [member]},
            {"name": "grade", "shape": [1, 1], "datatype": "BYTES", "data": [grade]},
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def client(runs: dict[str, Path]) -> Iterator[AppClient]:
    app = create_app(
        [runs["mixed"], runs["numeric"], runs["reg"], runs["poison"], runs["strict"]],
        config=ServeConfig(cache_size=100),
    )
    with AppClient(app) as c:
        yield c


def test_health_and_server_metadata(client: AppClient) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "leanfit" and meta["extensions"] == ["binary_tensor_data", "model_repository"]


def test_model_metadata_and_versions(client: AppClient) -> None:
    meta = client.get("/v2/models/mixed").json()
    assert meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [
        {"name": "age", "datatype": "FP32", "shape": [-1, 1]},
        {"name": "rooms", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1, 1]},
        {"name": "grade", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    assert meta["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ]
    assert meta["parameters"]["classes"] == ["low", "mid", "high"]
    numeric = client.get("/v2/models/numeric/versions/1").json()
    assert numeric["parameters"]["matrix_input"] == {
        "datatype": "FP32",
        "shape": [-1, 4],
        "columns": ["x0", "x1", "n", "flag"],
    }
    assert client.get("/v2/models/mixed/versions/1/ready").json() == {"name": "mixed", "ready": True}
    missing = client.get("/v2/models/mixed/versions/2")
    assert missing.status_code == 404
    assert missing.json() == {"error": "model 'mixed' has no version '2'; it serves version '1'"}
    unknown = client.get("/v2/models/nope/ready")
    assert unknown.status_code == 404 and "unknown model 'nope'" in unknown.json()["error"]


def test_errors_are_json_for_unknown_routes_and_methods(client: AppClient) -> None:
    r = client.get("/v3/anything")
    assert r.status_code == 404 and r.json() == {"error": "no route '/v3/anything'; see /openapi.json"}
    r = client.get("/v2/models/mixed/infer")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "not allowed" in r.json()["error"]


def test_infer_matches_direct_predictions_and_echoes_the_id(client: AppClient, runs: dict[str, Path]) -> None:
    predictor = leanfit.load(runs["mixed"])
    rows = [(41.0, 2, True, "B"), (None, 5, False, "C"), (23.5, 1, False, "Z")]
    for age, rooms, member, grade in rows:
        body = json.dumps(
            mixed_request(age, rooms, member, grade, id=f"req-{rooms}", parameters={"unknown": {"x": 1}})
        )
        r = client.post("/v2/models/mixed/infer", content=body.encode())  # no Content-Type at all
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_name"] == "mixed" and doc["model_version"] == "1" and doc["id"] == f"req-{rooms}"
        expected = predictor.predict_proba([{"age": age, "rooms": rooms, "member": member, "grade": grade}])
        got = {o["name"]: o for o in doc["outputs"]}
        assert got["probabilities"]["shape"] == [1, 3]
        np.testing.assert_allclose(got["probabilities"]["data"], expected.ravel(), rtol=1e-6)
        assert got["label"]["data"] == [int(np.argmax(expected))]


def test_binary_request_and_binary_response(client: AppClient) -> None:
    x = np.array([[0.5, 1.0, 3.0, 1.0], [-1.0, 2.0, 7.0, 0.0]], dtype=np.float32)
    raw = x.tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}],
        }
    ).encode()
    r = client.post(
        "/v2/models/numeric/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert r.status_code == 200, r.text
    size = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:size])
    probs = np.frombuffer(r.content[size:], dtype=np.float32).reshape(2, 2)
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert head["outputs"][1]["data"] == np.argmax(probs, axis=1).tolist()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_routes(client: AppClient, runs: dict[str, Path]) -> None:
    r = client.post("/predict", json={"rows": [{"x": 1.0, "city": "rome"}]})
    assert r.status_code == 400 and "several models are served" in r.json()["error"]
    r = client.post(
        "/models/reg/predict", json={"rows": [{"x": 1.0, "city": "rome"}, {"x": "-2", "city": "oslo"}]}
    )
    assert r.status_code == 200, r.text
    expected = leanfit.load(runs["reg"]).predict([{"x": 1.0, "city": "rome"}, {"x": -2.0, "city": "oslo"}])
    np.testing.assert_allclose(r.json()["predictions"], expected, rtol=1e-6)
    r = client.post(
        "/models/mixed/predict", json={"rows": [{"age": 41, "rooms": 2, "member": "yes", "grade": "B"}]}
    )
    assert r.status_code == 200 and r.json()["predictions"][0] in ["low", "mid", "high"]
    r = client.post(
        "/models/mixed/predict", json={"rows": [{"age": 41, "rooms": 2, "member": "maybe", "grade": "B"}]}
    )
    assert r.status_code == 400 and "column 'member' expected true/false" in r.json()["error"]


def test_single_model_predict(runs: dict[str, Path]) -> None:
    with AppClient(create_app([runs["reg"]])) as c:
        r = c.post("/predict", json={"rows": [{"x": 0.0, "city": "paris"}]})
        assert r.status_code == 200 and len(r.json()["predictions"]) == 1


def test_values_the_schema_forbids(client: AppClient) -> None:
    r = client.post("/v2/models/mixed/infer", json=mixed_request(age=None))
    assert r.status_code == 200  # age is nullable: null is a missing value
    r = client.post(
        "/v2/models/numeric/infer",
        json={"inputs": [{"name": "in", "shape": [1, 4], "datatype": "FP32", "data": [None, 1, 2, 1]}]},
    )
    assert r.status_code == 400
    assert r.json()["error"].startswith("input 'in' column 0 ('x0'): missing value (null or NaN) at row 0")
    nan = json.dumps(mixed_request(age=float("nan")))  # the NaN literal, as Triton's client writes it
    assert "NaN" in nan and client.post("/v2/models/mixed/infer", content=nan).status_code == 200
    inf = json.dumps(mixed_request(age=float("inf")))
    r = client.post("/v2/models/mixed/infer", content=inf)
    assert r.status_code == 400 and r.json()["error"].startswith(
        "input 'age': value inf at row 0 is not finite"
    )
    r = client.post("/v2/models/strict/infer", json=mixed_request(grade="Z"))
    assert r.status_code == 400 and "input 'grade': unknown category 'Z'" in r.json()["error"]
    assert client.post("/v2/models/mixed/infer", json=mixed_request(grade="Z")).status_code == 200


def test_a_model_failing_on_the_data_is_a_400_naming_it(client: AppClient) -> None:
    r = client.post(
        "/v2/models/poison/infer",
        json={"inputs": [{"name": "idx", "shape": [1], "datatype": "INT64", "data": [100]}]},
    )
    assert r.status_code == 400
    assert r.json()["error"].startswith("model 'poison' could not run on this request's data:")
    ok = client.post(
        "/v2/models/poison/infer",
        json={"inputs": [{"name": "idx", "shape": [1], "datatype": "INT64", "data": [3]}]},
    )
    assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [4.5]


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
    return total


def test_cache_hits_ignore_the_id_and_are_counted(client: AppClient) -> None:
    before = client.get("/metrics").text
    first = client.post("/v2/models/mixed/infer", json=mixed_request(age=77.0, id="a"))
    second = client.post("/v2/models/mixed/infer", json=mixed_request(age=77.0, id="b"))
    assert second.json()["id"] == "b" and second.json()["outputs"] == first.json()["outputs"]
    rows = client.post(
        "/models/mixed/predict", json={"rows": [{"age": 77.0, "rooms": 2, "member": True, "grade": "B"}]}
    )
    assert rows.status_code == 200  # the same feeds from the other route: another hit
    after = client.get("/metrics").text
    assert (
        metric(after, "leanfit_cache_hits_total", model="mixed")
        - metric(before, "leanfit_cache_hits_total", model="mixed")
        == 2
    )
    assert (
        metric(after, "leanfit_cache_misses_total", model="mixed")
        - metric(before, "leanfit_cache_misses_total", model="mixed")
        == 1
    )


def test_cache_is_bounded_and_cleared_when_the_model_changes(runs: dict[str, Path]) -> None:
    with AppClient(create_app([runs["reg"]], config=ServeConfig(cache_size=2))) as c:
        for x in (1.0, 2.0, 3.0, 1.0):
            assert c.post("/predict", json={"rows": [{"x": x, "city": "rome"}]}).status_code == 200
        text = c.get("/metrics").text
        assert metric(text, "leanfit_cache_evictions_total", model="reg") == 2
        assert metric(text, "leanfit_cache_entries", model="reg") == 2
        assert (
            metric(text, "leanfit_cache_hits_total", model="reg") == 0
        )  # 1.0 was evicted before it came back
        assert c.post("/v2/repository/models/reg/load").status_code == 200
        assert metric(c.get("/metrics").text, "leanfit_cache_entries", model="reg") == 0


def test_metrics_count_requests_by_route_and_status(client: AppClient) -> None:
    client.get("/v2/models/nope")
    client.post("/v2/models/mixed/infer", content=b"{")
    text = client.get("/metrics").text
    assert metric(text, "leanfit_requests_total", route="/v2/models/{model}", status="404") >= 1
    assert metric(text, "leanfit_requests_total", route="/v2/models/{model}/infer", status="400") >= 1
    assert metric(text, "leanfit_requests_total", route="/v2/models/{model}/infer", status="200") >= 1
    for name in (
        "leanfit_request_duration_seconds_bucket",
        "leanfit_queue_wait_seconds_bucket",
        "leanfit_batch_size_rows_bucket",
        "leanfit_rows_total",
        "leanfit_drift_score",
        "leanfit_inflight_requests",
    ):
        assert name in text, name


def test_drift_endpoint(client: AppClient) -> None:
    for age in (30.0, 40.0, 50.0):
        client.post("/v2/models/mixed/infer", json=mixed_request(age=age))
    report = client.get("/v2/models/mixed/drift").json()
    assert report["model"] == "mixed" and report["window_size"] == 1000 and report["n_rows"] >= 3
    assert {f["feature"] for f in report["features"]} == {"age", "rooms", "member", "grade"}
    assert {f["method"] for f in report["features"]} == {"ks", "chisquare"}


def test_openapi_document(client: AppClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/v2/models/{model}/infer",
        "/v2/models/{model}/versions/{version}/infer",
        "/predict",
        "/v2/health/ready",
    ):
        assert path in doc["paths"]


def test_access_log_is_one_json_line(client: AppClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="leanfit.serve.access"):
        client.post("/v2/models/mixed/infer", json=mixed_request(id="logme"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "leanfit.serve.access"]
    assert (
        lines and lines[-1]["status"] == 200 and lines[-1]["id"] == "logme" and lines[-1]["model"] == "mixed"
    )
    assert lines[-1]["route"] == "/v2/models/{model}/infer" and lines[-1]["rows"] == 1


def test_bearer_token(runs: dict[str, Path]) -> None:
    with AppClient(create_app([runs["reg"]], config=ServeConfig(token="s3cret"))) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 200
        for path in ("/v2", "/v2/models/reg", "/metrics", "/openapi.json"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            assert r.json() == {"error": "missing bearer token; send 'Authorization: Bearer <token>'"}
        assert c.get("/v2", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = c.post(
            "/predict", json={"rows": [{"x": 1, "city": "rome"}]}, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200


def test_body_limit_content_encoding(runs: dict[str, Path]) -> None:
    with AppClient(create_app([runs["reg"]], config=ServeConfig(max_body_bytes=1000))) as c:
        big = json.dumps({"rows": [{"x": 1.0, "city": "rome"}] * 100}).encode()
        r = c.post("/predict", content=big)
        assert r.status_code == 413 and r.json()["error"].startswith("the request body (")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b" " * 300

        r = c.post("/predict", content=chunks())
        assert r.status_code == 413 and "over the limit of 1000 bytes" in r.json()["error"]
        small = json.dumps({"rows": [{"x": 1.0, "city": "rome"}]}).encode()
        r = c.post("/predict", content=gzip.compress(small), headers={"Content-Encoding": "gzip"})
        assert r.status_code == 200
        r = c.post("/predict", content=gzip.compress(big), headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413 and "inflated" in r.json()["error"]
        r = c.post("/predict", content=b"not gzip", headers={"Content-Encoding": "gzip"})
        assert r.status_code == 400 and "not valid gzip" in r.json()["error"]
        r = c.post("/predict", content=small, headers={"Content-Encoding": "br"})
        assert r.status_code == 415


def test_repository_unload_load_and_a_refused_reload(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "reg"
    shutil.copytree(runs["reg"], copy)
    with AppClient(create_app([copy])) as c:
        assert c.post("/v2/repository/index").json() == [
            {"name": "reg", "version": "1", "state": "READY", "reason": ""}
        ]
        assert c.post("/v2/repository/models/reg/unload").status_code == 200
        assert c.get("/v2/models/reg/ready").status_code == 503
        r = c.post("/predict", json={"rows": [{"x": 1, "city": "rome"}]})
        assert r.status_code == 503 and "unloaded" in r.json()["error"]
        assert c.post("/v2/repository/models/reg/load").status_code == 200
        assert c.get("/v2/models/reg/ready").status_code == 200
        graph = copy / "model" / "model.onnx"
        graph.write_bytes(graph.read_bytes()[:-1] + b"\x00")
        r = c.post("/v2/repository/models/reg/load")
        assert (
            r.status_code == 400
            and "SHA-256 mismatch" in r.json()["error"]
            and "still serving" in r.json()["error"]
        )
        assert c.post("/predict", json={"rows": [{"x": 1, "city": "rome"}]}).status_code == 200


def test_config_and_model_list_are_checked_up_front(runs: dict[str, Path]) -> None:
    from leanfit.serve import ServeConfigError

    with pytest.raises(ServeConfigError, match=r"ServeConfig.max_delay_ms must be a non-negative number"):
        ServeConfig(max_delay_ms=-1)
    with pytest.raises(ServeConfigError, match=r"has no field\(s\) \['max_batch'\]"):
        ServeConfig().replace(max_batch=3)
    assert ServeConfig().replace(max_batch_size=1).batching is False
    with pytest.raises(ServeConfigError, match="needs at least one model"):
        create_app([])
    with pytest.raises(ServeConfigError, match="got int"):
        create_app([42])
    with pytest.raises(ServeConfigError, match=r"two models are named \['reg'\]"):
        create_app([runs["reg"], ("reg", runs["reg"])])
    app = create_app({"prices": leanfit.load(runs["reg"]), "credit": runs["mixed"]})
    assert sorted(app.state.leanfit.models) == ["credit", "prices"]
    app.state.leanfit.close()
