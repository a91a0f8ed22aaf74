"""Whatever a client sends, the server answers with a status below 500 and keeps answering."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leanfit.serve import ServeConfig, create_app

from .client import AppClient
from .conftest import ServerProcess

GOOD = {
    "inputs": [
        {"name": "age", "shape": [1, 1], "datatype": "FP32", "data": [41.0]},
        {"name": "rooms", "shape": [1, 1], "datatype": "INT64", "data": [2]},
        {"name": "member", "shape": [1, 1], "datatype": "BOOL", "data": [True]},
        {"name": "grade", "shape": [1, 1], "datatype": "BYTES", "data": ["B"]},
    ]
}


def variant(**changes: object) -> bytes:
    doc = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        index, key = path.split("__")
        doc["inputs"][int(index)][key] = value
    return json.dumps(doc).encode()


def deep(levels: int) -> bytes:
    return (
        b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP32", "data": '
        + b"[" * levels
        + b"1"
        + b"]" * levels
        + b"}]}"
    )


CORPUS: list[tuple[str, bytes, dict[str, str]]] = [
    ("empty", b"", {}),
    ("truncated", b'{"inputs": [', {}),
    ("not utf-8", b"\xff\xfe\x00{", {}),
    ("null", b"null", {}),
    ("a list", b"[1, 2]", {}),
    ("a string", b'"inputs"', {}),
    ("inputs null", b'{"inputs": null}', {}),
    ("inputs object", b'{"inputs": {"name": "age"}}', {}),
    ("inputs of numbers", b'{"inputs": [1, 2]}', {}),
    ("name not a string", b'{"inputs": [{"name": 5}]}', {}),
    ("id not a string", json.dumps({**GOOD, "id": {"x": 1}}).encode(), {}),
    ("parameters a list", json.dumps({**GOOD, "parameters": [1]}).encode(), {}),
    ("outputs a string", json.dumps({**GOOD, "outputs": "label"}).encode(), {}),
    ("outputs nameless", json.dumps({**GOOD, "outputs": [{"x": 1}]}).encode(), {}),
    (
        "binary_data not bool",
        json.dumps({**GOOD, "outputs": [{"name": "label", "parameters": {"binary_data": [[[]]]}}]}).encode(),
        {},
    ),
    ("shape a string", variant(**{"0__shape": "1,1"}), {}),
    ("shape floats", variant(**{"0__shape": [1.5, 1]}), {}),
    ("shape negative", variant(**{"0__shape": [-1, 1]}), {}),
    ("shape huge", variant(**{"0__shape": [2**63, 1]}), {}),
    ("shape enormous", variant(**{"0__shape": [10**40, 10**40]}), {}),
    ("shape rank 1000", variant(**{"0__shape": [1] * 1000}), {}),
    ("shape bools", variant(**{"0__shape": [True, True]}), {}),
    ("datatype wrong", variant(**{"1__datatype": "FP32"}), {}),
    ("datatype unknown", variant(**{"1__datatype": "COMPLEX128"}), {}),
    ("datatype not a string", variant(**{"1__datatype": ["INT64"]}), {}),
    ("data an object", variant(**{"0__data": {"a": 1}}), {}),
    ("data of objects", variant(**{"0__data": [{"a": [1, [2, [3]]]}]}), {}),
    ("data too long", variant(**{"0__data": [1.0] * 100_000}), {}),
    ("data strings for FP32", variant(**{"0__data": ["41"]}), {}),
    ("int overflow", variant(**{"1__data": [2**64]}), {}),
    ("huge int literal", variant(**{"1__data": [10**300]}), {}),
    ("bool as int", variant(**{"2__data": [1]}), {}),
    ("bytes as number", variant(**{"3__data": [7]}), {}),
    ("deep data", deep(10_000), {}),
    ("deep body", b"[" * 200_000 + b"]" * 200_000, {}),
    ("NaN where not nullable", variant(**{"1__data": [float("nan")]}), {}),
    ("Infinity", variant(**{"0__data": [float("inf")]}), {}),
    (
        "huge float literal",
        b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP32", "data": [1e999]}]}',
        {},
    ),
    ("unknown category", variant(**{"3__data": ["Z" * 10_000]}), {}),
    ("huge name", variant(**{"0__name": "a" * 1_000_000}), {}),
    ("header length not a number", variant(), {"Inference-Header-Content-Length": "abc"}),
    ("header length negative", variant(), {"Inference-Header-Content-Length": "-5"}),
    ("header length past the body", variant(), {"Inference-Header-Content-Length": "99999999999"}),
    ("binary size mismatch", variant(**{"0__parameters": {"binary_data_size": 3}}), {}),
    ("binary size negative", variant(**{"0__parameters": {"binary_data_size": -3}}), {}),
    ("binary size string", variant(**{"0__parameters": {"binary_data_size": "4"}}), {}),
    (
        "binary tail without sizes",
        variant() + b"\x00" * 16,
        {"Inference-Header-Content-Length": str(len(variant()))},
    ),
    ("timeout not a number", json.dumps({**GOOD, "parameters": {"timeout_ms": "soon"}}).encode(), {}),
    ("timeout header bad", variant(), {"X-Request-Timeout-Ms": "-1"}),
    ("gzip lies", variant(), {"Content-Encoding": "gzip"}),
    ("unknown encoding", variant(), {"Content-Encoding": "zstd"}),
]


@pytest.mark.parametrize(("label", "body", "headers"), CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_request_corpus_never_500(
    server: ServerProcess, label: str, body: bytes, headers: dict[str, str]
) -> None:
    r = httpx.post(server.url + "/v2/models/mixed/infer", content=body, headers=headers, timeout=30)
    assert r.status_code < 500, (label, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert isinstance(r.json()["error"], str) and r.json()["error"]


def test_rows_corpus_never_500(server: ServerProcess) -> None:
    bodies = [
        b'{"rows": null}',
        b'{"rows": [1]}',
        b'{"rows": [{}]}',
        b'{"rows": [{"x": [1], "city": "rome"}]}',
        b'{"rows": [{"x": {"a": 1}, "city": "rome"}]}',
        b'{"rows": [{"x": 1e999, "city": "rome"}]}',
        b'{"rows": [{"x": "1e400", "city": "rome"}]}',
        b'{"rows": [{"x": "nan", "city": 5}]}',
        b'{"rows": [{"x": true, "city": ["a"]}]}',
        json.dumps({"rows": [{"x": 1.0, "city": "rome"}] * 50_000}).encode(),
    ]
    for body in bodies:
        r = httpx.post(server.url + "/models/reg/predict", content=body, timeout=60)
        assert r.status_code < 500, (body[:80], r.text[:300])


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _send_until_answered(url: str, head: bytes, chunk: bytes, total: int) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        pending = memoryview(chunk)
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
                answer += data
                if not data or _complete(answer):
                    break
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            if sent < total:
                try:
                    n = sock.send(pending)
                    sent += n
                    pending = pending[n:] if n < len(pending) else memoryview(chunk)
                except (BlockingIOError, InterruptedError):
                    time.sleep(0.001)
                except (BrokenPipeError, ConnectionResetError):
                    sent = total
            else:
                time.sleep(0.01)
        return answer


def test_a_100_mb_body_is_refused_without_reading_it(server: ServerProcess) -> None:
    size = 100 * 1024 * 1024
    head = f"POST /v2/models/mixed/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()
    answer = _send_until_answered(server.url, head, b"x" * 65536, size)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"the request body (104857600 bytes) is over the limit of 67108864 bytes"' in answer


@pytest.mark.slow
def test_a_100_mb_chunked_body_is_cut_at_the_limit(server: ServerProcess) -> None:
    head = b"POST /v2/models/mixed/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"  # 1 MiB chunks, no Content-Length
    answer = _send_until_answered(server.url, head, piece, 100 * len(piece))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_the_server_still_answers_after_the_corpus(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200
    r = httpx.post(server.url + "/v2/models/mixed/infer", json=GOOD)
    assert r.status_code == 200 and r.json()["outputs"][0]["name"] == "label"


# -- property-based fuzz (in process, bounded) ----------------------------------------------
@pytest.fixture(scope="module")
def fuzz_client(runs: dict[str, Path]) -> Iterator[AppClient]:
    app = create_app(
        [runs["mixed"], runs["numeric"], runs["reg"]], config=ServeConfig(cache_size=50, access_log=False)
    )
    with AppClient(app) as c:
        yield c


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)
names = st.sampled_from(["age", "rooms", "member", "grade", "input", "x", "city", "x0", ""]) | st.text(
    max_size=8
)
datatypes = st.sampled_from(["FP32", "FP64", "INT64", "INT32", "BOOL", "BYTES", "FP16", "UINT8"]) | st.text(
    max_size=6
)
shapes = st.lists(st.integers(min_value=-3, max_value=2**65), max_size=3) | json_values
tensors = st.fixed_dictionaries(
    {"name": names, "datatype": datatypes, "shape": shapes},
    optional={
        "data": st.lists(json_values, max_size=8) | json_values,
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-2, 64)})
        | json_values,
    },
)
requests = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=5) | json_values},
    optional={
        "id": st.text(max_size=10) | json_values,
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_output", "timeout", "timeout_ms", "other"]), json_values, max_size=3
        ),
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["label", "probabilities", "prediction", "nope"]) | json_values},
                optional={"parameters": st.dictionaries(st.just("binary_data"), json_values)},
            ),
            max_size=3,
        ),
    },
)
paths = st.sampled_from(
    [
        "/v2/models/mixed/infer",
        "/v2/models/numeric/infer",
        "/v2/models/reg/versions/1/infer",
        "/v2/models/nope/infer",
    ]
)


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        assert response.json()["error"]


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    path=paths,
    request=requests,
    tail=st.binary(max_size=64),
    header=st.none() | st.integers(-5, 4000).map(str),
)
def test_fuzz_v2_requests_never_500(
    fuzz_client: AppClient, path: str, request: dict, tail: bytes, header: str | None
) -> None:
    body = json.dumps(request).encode()
    headers = {} if header is None else {"Inference-Header-Content-Length": header}
    _check(fuzz_client.post(path, content=body + (tail if header is not None else b""), headers=headers))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(
        ["/predict", "/models/reg/predict", "/models/mixed/predict", "/v2/models/mixed/infer"]
    ),
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_fuzz_arbitrary_bodies_never_500(fuzz_client: AppClient, path: str, body: bytes) -> None:
    _check(fuzz_client.post(path, content=body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from(["x", "city", "age", "zzz"]), json_values, max_size=4), max_size=4
    )
)
def test_fuzz_rows_never_500(fuzz_client: AppClient, rows: list) -> None:
    _check(fuzz_client.post("/models/reg/predict", content=json.dumps({"rows": rows}).encode()))


def test_the_fuzzed_app_still_answers(fuzz_client: AppClient) -> None:
    assert fuzz_client.get("/v2/health/ready").status_code == 200
    assert fuzz_client.post("/v2/models/mixed/infer", json=GOOD).status_code == 200
