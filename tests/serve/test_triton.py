"""Conformance: Triton's own HTTP client (tritonclient[http]) against a real leanfit server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import leanfit

from .conftest import ServerProcess

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture(scope="module")
def triton(server: ServerProcess):
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def mixed_inputs(binary: bool, rows: int = 3) -> tuple[list, dict[str, np.ndarray]]:
    arrays = {
        "age": np.array([[41.0], [np.nan], [23.5]], dtype=np.float32)[:rows],
        "rooms": np.array([[2], [5], [1]], dtype=np.int64)[:rows],
        "member": np.array([[True], [False], [False]])[:rows],
        "grade": np.array([[b"B"], [b"C"], [b"Z"]], dtype=object)[:rows],
    }
    inputs = []
    for name, datatype in (("age", "FP32"), ("rooms", "INT64"), ("member", "BOOL"), ("grade", "BYTES")):
        tensor = httpclient.InferInput(name, list(arrays[name].shape), datatype)
        tensor.set_data_from_numpy(arrays[name], binary_data=binary)
        inputs.append(tensor)
    return inputs, arrays


def test_health_and_metadata(triton) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("mixed") and triton.is_model_ready("mixed", "1")
    assert not triton.is_model_ready("nope")
    meta = triton.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]
    model = triton.get_model_metadata("mixed")
    assert [(i["name"], i["datatype"], i["shape"]) for i in model["inputs"]] == [
        ("age", "FP32", [-1, 1]),
        ("rooms", "INT64", [-1, 1]),
        ("member", "BOOL", [-1, 1]),
        ("grade", "BYTES", [-1, 1]),
    ]
    assert triton.get_model_metadata("mixed", "1")["versions"] == ["1"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_round_trip_fp32_int64_bool_bytes(triton, runs: dict[str, Path], binary: bool) -> None:
    inputs, arrays = mixed_inputs(binary)
    outputs = [
        httpclient.InferRequestedOutput("label", binary_data=binary),
        httpclient.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = triton.infer("mixed", inputs, outputs=outputs, request_id=f"rt-{binary}")
    assert result.get_response()["id"] == f"rt-{binary}"
    expected = leanfit.load(runs["mixed"]).run(
        {k: (v.astype(str).astype(object) if k == "grade" else v) for k, v in arrays.items()}
    )
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])


def test_infer_with_the_client_defaults(triton) -> None:
    inputs, _ = mixed_inputs(binary=True)  # set_data_from_numpy's default, no outputs: binary_data_output
    result = triton.infer("mixed", inputs)
    assert result.as_numpy("probabilities").shape == (3, 3)
    assert result.as_numpy("label").dtype == np.int64


def test_matrix_input_and_versions(triton) -> None:
    x = np.array([[0.5, 1.0, 3.0, 1.0], [-1.0, 2.0, 7.0, 0.0]], dtype=np.float32)
    tensor = httpclient.InferInput("input", [2, 4], "FP32")
    tensor.set_data_from_numpy(x)
    result = triton.infer("numeric", [tensor], model_version="1")
    np.testing.assert_allclose(result.as_numpy("probabilities").sum(axis=1), 1.0, rtol=1e-5)


def test_regression_and_async(triton) -> None:
    x = httpclient.InferInput("x", [2, 1], "FP32")
    x.set_data_from_numpy(np.array([[1.0], [-2.0]], dtype=np.float32))
    city = httpclient.InferInput("city", [2, 1], "BYTES")
    city.set_data_from_numpy(np.array([["rome"], ["oslo"]], dtype=object), binary_data=False)
    result = triton.async_infer("reg", [x, city]).get_result()
    assert result.as_numpy("prediction").shape == (2,)


def test_a_misnamed_input_is_a_400(triton) -> None:
    inputs, _ = mixed_inputs(binary=False)
    wrong = httpclient.InferInput("agee", [3, 1], "FP32")
    wrong.set_data_from_numpy(np.zeros((3, 1), dtype=np.float32), binary_data=False)
    with pytest.raises(InferenceServerException) as err:
        triton.infer("mixed", [wrong, *inputs[1:]])
    assert err.value.status() == "400"
    assert "unknown input 'agee'" in err.value.message() and "Did you mean 'age'" in err.value.message()


def test_an_unknown_model_is_a_404(triton) -> None:
    inputs, _ = mixed_inputs(binary=True)
    with pytest.raises(InferenceServerException) as err:
        triton.infer("nope", inputs)
    assert err.value.status() == "404"
    with pytest.raises(InferenceServerException) as err:
        triton.get_model_metadata("nope")
    assert err.value.status() == "404"


def test_repository_extension(triton) -> None:
    index = triton.get_model_repository_index()
    assert {m["name"] for m in index} == {"mixed", "numeric", "reg"}
