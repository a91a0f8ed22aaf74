"""V2 request parsing and response encoding, without HTTP."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from leanfit.schema import ColumnSpec
from leanfit.serve.binary import decode_bytes, encode_bytes, encode_tensor, split_body
from leanfit.serve.errors import BadRequest
from leanfit.serve.feeds import MatrixFeeds, feeds_key, join_feeds
from leanfit.serve.jsonio import loads
from leanfit.serve.protocol import InferRequest, ModelSchema, encode_infer_response, parse_infer
from leanfit.serve.rows import encode_predict_response, parse_rows

from ._artifacts import MIXED_COLUMNS, NUMERIC_COLUMNS

MIXED = ModelSchema("mixed", "1", list(MIXED_COLUMNS), ["label", "probabilities"])
NUMERIC = ModelSchema("numeric", "1", list(NUMERIC_COLUMNS), ["label", "probabilities"])
FLOATS = ModelSchema(
    "floats", "1", [ColumnSpec("a", "numeric"), ColumnSpec("b", "numeric", nullable=True)], ["y"]
)
STRICT = ModelSchema("strict", "1", list(MIXED_COLUMNS), ["label"], strict_categories=frozenset({"grade"}))


def body(inputs: list[dict], **extra: object) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def mixed_inputs(rows: int = 2) -> list[dict]:
    return [
        {"name": "age", "shape": [rows, 1], "datatype": "FP32", "data": [41.5] * rows},
        {"name": "rooms", "shape": [rows, 1], "datatype": "INT64", "data": [2] * rows},
        {"name": "member", "shape": [rows, 1], "datatype": "BOOL", "data": [True] * rows},
        {"name": "grade", "shape": [rows, 1], "datatype": "BYTES", "data": ["B"] * rows},
    ]


def test_columns_parse_to_graph_dtypes() -> None:
    req = parse_infer(body(mixed_inputs(3), id="abc"), MIXED)
    assert req.rows == 3 and req.id == "abc"
    assert {k: v.dtype.name for k, v in req.feeds.items()} == {
        "age": "float32",
        "rooms": "int64",
        "member": "bool",
        "grade": "object",
    }
    assert all(v.shape == (3, 1) for v in req.feeds.values())


def test_nested_flat_and_rank1_data_are_the_same() -> None:
    flat = parse_infer(body(mixed_inputs(2)), MIXED).feeds
    nested = mixed_inputs(2)
    nested[0]["data"] = [[41.5], [41.5]]
    nested[1]["shape"] = [2]
    nested[1]["data"] = [[2, 2]]
    again = parse_infer(body(nested), MIXED).feeds
    for name in flat:
        np.testing.assert_array_equal(flat[name], again[name])


def test_matrix_form_splits_and_casts_per_column() -> None:
    req = parse_infer(
        body(
            [
                {
                    "name": "input",
                    "shape": [2, 4],
                    "datatype": "FP64",
                    "data": [[0.5, 1, 3, 1], [1.5, None, 0, 0]],
                }
            ]
        ),
        NUMERIC,
    )
    assert req.feeds["n"].dtype == np.int64 and req.feeds["n"].ravel().tolist() == [3, 0]
    assert req.feeds["flag"].dtype == np.bool_ and req.feeds["flag"].ravel().tolist() == [True, False]
    assert np.isnan(req.feeds["x1"][1, 0])  # x1 is nullable


def test_matrix_form_of_an_all_float_model_stays_one_block() -> None:
    req = parse_infer(
        body([{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]), FLOATS
    )
    assert isinstance(req.feeds, MatrixFeeds)
    assert req.feeds["b"].ravel().tolist() == [2.0, 4.0]
    joined = join_feeds([req.feeds, req.feeds])
    assert isinstance(joined, MatrixFeeds) and joined["a"].ravel().tolist() == [1.0, 3.0, 1.0, 3.0]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda i: i[0].update(name="agee"),
            "unknown input 'agee'; model 'mixed' expects ['age', 'rooms', 'member', 'grade']. Did you mean 'age'?",
        ),
        (lambda i: i.pop(), "missing input(s) ['grade']"),
        (lambda i: i.append(dict(i[0])), "input 'age' appears twice"),
        (
            lambda i: i[1].update(datatype="FP32"),
            "input 'rooms': datatype FP32 does not fit column kind 'integer'; send INT64 or INT32",
        ),
        (lambda i: i[0].update(datatype="FP8"), "input 'age': unknown datatype 'FP8'"),
        (
            lambda i: [t.update(shape=[3, 1]) for t in i],
            "input 'age': shape [3, 1] holds 3 value(s) but 'data' has 2",
        ),
        (
            lambda i: i[0].update(shape=[2, 2], data=[1, 2, 3, 4]),
            "input 'age': shape [2, 2] is not accepted; send [N, 1] or [N]",
        ),
        (lambda i: i[0].update(shape=[-2, 1]), "'shape' must be an array of non-negative integers"),
        (lambda i: i[0].update(shape=[10**12, 1]), "row(s) but the other inputs have 1000000000000"),
        (
            lambda i: i[0].update(data=[1, "x"]),
            "input 'age': FP32 element 1 must be a number or null; got 'x'",
        ),
        (
            lambda i: i[1].update(data=[1, 2.5]),
            "input 'rooms': INT64 element 1 must be a whole number; got 2.5",
        ),
        (lambda i: i[1].update(data=[1, 2**70]), "input 'rooms': INT64 element 1"),  # parsed as int or float
        (lambda i: i[2].update(data=[1, 0]), "input 'member': BOOL element 0 must be true or false; got 1"),
        (lambda i: i[3].update(data=["A", 3]), "input 'grade': BYTES element 1 must be a string; got 3"),
        (lambda i: i[0].update(data=[1e39, 1]), "input 'age': value inf at row 0 is not finite"),
        (lambda i: i[0].update(data="12"), "input 'age': 'data' must be an array"),
        (lambda i: i[0].pop("data"), "input 'age' has no 'data'"),
        (
            lambda i: i[0].update(parameters={"shared_memory_region": "r"}),
            "shared-memory extension is not supported",
        ),
    ],
)
def test_bad_inputs_name_the_input_and_the_value(mutate, message: str) -> None:
    inputs = mixed_inputs(2)
    mutate(inputs)
    with pytest.raises(BadRequest) as err:
        parse_infer(body(inputs), MIXED)
    assert message in str(err.value)


def test_non_finite_rules() -> None:
    # nullable column: null (JSON) and NaN (binary) are missing values
    ok = parse_infer(body([{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, None]}]), FLOATS)
    assert np.isnan(ok.feeds["b"][0, 0])
    with pytest.raises(
        BadRequest, match=r"input 'x' column 0 \('a'\): missing value \(null or NaN\) at row 0"
    ):
        parse_infer(body([{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [None, 1]}]), FLOATS)
    raw = np.array([[1.0, np.inf]], dtype=np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
            ]
        }
    ).encode()
    with pytest.raises(BadRequest, match="value inf at row 0 is not finite"):
        parse_infer(header + raw, FLOATS, header_length=str(len(header)))


def test_nan_and_infinity_literals_parse_and_the_columns_decide() -> None:
    # Triton's client writes NaN for a NaN float in JSON mode: a missing value where allowed
    doc = b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, NaN]}]}'
    assert np.isnan(parse_infer(doc, FLOATS).feeds["b"][0, 0])
    with pytest.raises(BadRequest, match=r"column 0 \('a'\): missing value"):
        parse_infer(doc.replace(b"[1, NaN]", b"[NaN, 1]"), FLOATS)
    with pytest.raises(BadRequest, match=r"column 1 \('b'\): value -inf at row 0 is not finite"):
        parse_infer(doc.replace(b"NaN", b"-Infinity"), FLOATS)
    with pytest.raises(BadRequest, match="not valid JSON"):
        loads(b'{"a": nan}')


def test_unknown_categories_pass_unless_the_manifest_is_strict() -> None:
    inputs = mixed_inputs(1)
    inputs[3]["data"] = ["Z"]
    assert parse_infer(body(inputs), MIXED).feeds["grade"].ravel().tolist() == ["Z"]
    with pytest.raises(BadRequest, match=r"input 'grade': unknown category 'Z' at row 0; .* \(A, B, C\)"):
        parse_infer(body(inputs), STRICT)


def test_parameters_outputs_and_timeouts() -> None:
    req = parse_infer(
        body(
            mixed_inputs(1),
            parameters={"binary_data_output": True, "timeout": 2_000_000, "something_new": [1, 2]},
            outputs=[{"name": "label", "parameters": {"binary_data": False}}],
        ),
        MIXED,
        timeout_header="500",
    )
    assert req.outputs == [("label", False)] and req.binary_output is True
    assert req.timeout == pytest.approx(0.5)  # the smaller of 2 s (Triton's microseconds) and the header
    with pytest.raises(BadRequest, match="unknown output 'labels'.*Did you mean 'label'"):
        parse_infer(body(mixed_inputs(1), outputs=[{"name": "labels"}]), MIXED)
    with pytest.raises(BadRequest, match="parameters.timeout_ms must be a positive number"):
        parse_infer(body(mixed_inputs(1), parameters={"timeout_ms": -1}), MIXED)


def test_binary_inputs_round_trip() -> None:
    tensors = {
        "age": np.array([[30.0], [np.nan]], dtype=np.float32),
        "rooms": np.array([[1], [4]], dtype=np.int64),
        "member": np.array([[True], [False]]),
        "grade": np.array([["A"], ["é"]], dtype=object),
    }
    blobs = [encode_tensor(a) for a in tensors.values()]
    header = json.dumps(
        {
            "inputs": [
                {"name": n, "shape": [2, 1], "datatype": dt, "parameters": {"binary_data_size": len(b)}}
                for (n, dt), b in zip(
                    [("age", "FP32"), ("rooms", "INT64"), ("member", "BOOL"), ("grade", "BYTES")],
                    blobs,
                    strict=True,
                )
            ]
        }
    ).encode()
    req = parse_infer(header + b"".join(blobs), MIXED, header_length=str(len(header)))
    assert req.feeds["grade"].ravel().tolist() == ["A", "é"]
    assert req.feeds["rooms"].ravel().tolist() == [1, 4]
    assert req.feeds["member"].ravel().tolist() == [True, False]
    with pytest.raises(BadRequest, match="belong to no input"):
        parse_infer(header + b"".join(blobs) + b"xx", MIXED, header_length=str(len(header)))
    with pytest.raises(BadRequest, match="runs past the end"):
        parse_infer(header + b"".join(blobs)[:-3], MIXED, header_length=str(len(header)))


def test_binary_codec_edges() -> None:
    assert decode_bytes(encode_bytes(["", "x", "ü"]), 3, "c") == ["", "x", "ü"]
    with pytest.raises(BadRequest, match="not valid UTF-8"):
        decode_bytes(struct.pack("<I", 1) + b"\xff", 1, "c")
    with pytest.raises(BadRequest, match="claims 100 bytes"):
        decode_bytes(struct.pack("<I", 100) + b"ab", 1, "c")
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length is 50"):
        split_body(b"{}", "50")
    with pytest.raises(BadRequest, match="must be a non-negative integer"):
        split_body(b"{}", "-1")


def test_rows_are_lenient_in_values_strict_in_columns() -> None:
    req = parse_rows(
        b'{"rows": [{"age": "41", "rooms": 2, "member": "yes", "grade": "B"},'
        b' {"age": null, "rooms": 3.0, "member": false, "grade": null}]}',
        MIXED,
    )
    assert req.rows == 2 and req.feeds["rooms"].ravel().tolist() == [2, 3]
    assert req.feeds["grade"].ravel().tolist() == ["B", ""]
    with pytest.raises(BadRequest, match=r"rows\[0\]: unknown column 'agee'.*Did you mean 'age'"):
        parse_rows(b'{"rows": [{"agee": 1, "rooms": 2, "member": true, "grade": "B"}]}', MIXED)
    with pytest.raises(BadRequest, match=r"rows\[0\] is missing column\(s\) \['grade'\]"):
        parse_rows(b'{"rows": [{"age": 1, "rooms": 2, "member": true}]}', MIXED)
    with pytest.raises(BadRequest, match="column 'rooms' expected a number"):
        parse_rows(b'{"rows": [{"age": 1, "rooms": "many", "member": true, "grade": "B"}]}', MIXED)
    with pytest.raises(BadRequest, match="column 'rooms' is an integer column"):
        parse_rows(b'{"rows": [{"age": 1, "rooms": null, "member": true, "grade": "B"}]}', MIXED)
    with pytest.raises(BadRequest, match='send {"rows"'):
        parse_rows(b'{"rows": []}', MIXED)


def test_response_encoding_json_and_binary() -> None:
    outputs = {
        "label": np.array([2, 0]),
        "probabilities": np.array([[0.1, 0.2, 0.7], [0.9, 0.05, 0.05]], np.float32),
    }
    payload, headers = encode_infer_response(MIXED, InferRequest(feeds={}, rows=2, id="7"), outputs)
    doc = json.loads(payload)
    assert headers == {"content-type": "application/json"}
    assert doc["id"] == "7" and doc["outputs"][0] == {
        "name": "label",
        "datatype": "INT64",
        "shape": [2],
        "data": [2, 0],
    }
    assert doc["outputs"][1]["shape"] == [2, 3] and len(doc["outputs"][1]["data"]) == 6
    payload, headers = encode_infer_response(
        MIXED, InferRequest(feeds={}, rows=2, outputs=[("probabilities", True)]), outputs
    )
    size = int(headers["inference-header-content-length"])
    head = json.loads(payload[:size])
    assert head["outputs"][0]["parameters"]["binary_data_size"] == 24
    np.testing.assert_array_equal(
        np.frombuffer(payload[size:], np.float32).reshape(2, 3), outputs["probabilities"]
    )
    rows = json.loads(
        encode_predict_response(MIXED, outputs, task="classification", classes=["low", "mid", "high"])
    )
    assert rows["predictions"] == ["high", "low"] and rows["classes"] == ["low", "mid", "high"]


def test_cache_key_ignores_nothing_that_matters() -> None:
    a = {"x": np.array([[1.0]], np.float32)}
    assert feeds_key("m:1:g", a) == feeds_key("m:1:g", {"x": np.array([[1.0]], np.float32)})
    assert feeds_key("m:1:g", a) != feeds_key("m:1:g", {"x": np.array([[1.0]], np.float64)})
    assert feeds_key("m:1:g", a) != feeds_key("m:1:g", {"x": np.array([1.0], np.float32)})
    assert feeds_key("m:1:g", a) != feeds_key("m:1:h", a)
    assert feeds_key("m:1:g", {"c": np.array([["ab"]], object)}) != feeds_key(
        "m:1:g", {"c": np.array([["a"]], object)}
    )


def test_the_standard_library_json_path_behaves_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    from leanfit.serve import jsonio

    monkeypatch.setattr(jsonio, "_orjson", None)
    assert loads(b'{"a": [1, null]}') == {"a": [1, None]}
    assert np.isnan(loads(b'{"a": NaN}')["a"])
    with pytest.raises(BadRequest, match="not valid JSON"):
        loads(b'{"a": ')
    with pytest.raises(BadRequest, match="not finite"):  # 1e999 parses to inf, then fails the check
        parse_infer(
            b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1e999, 1]}]}', FLOATS
        )
    with pytest.raises(BadRequest, match="nested too deeply"):
        loads(b"[" * 100_000 + b"]" * 100_000)
    payload, _ = encode_infer_response(
        FLOATS, InferRequest(feeds={}, rows=2), {"y": np.array([1.5, np.nan], dtype=np.float32)}
    )
    assert json.loads(payload)["outputs"][0]["data"] == [1.5, None]
    req = parse_infer(body(mixed_inputs(2), id="x"), MIXED)
    assert req.rows == 2 and req.id == "x"
