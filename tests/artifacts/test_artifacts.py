from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import leanfit
from leanfit.artifacts import read_manifest, resolve_model_dir, verify, write_manifest
from leanfit.exceptions import ArtifactError


@pytest.fixture()
def model_copy(bc_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bc_model_dir, tmp_path / "model"))


def test_load_accepts_run_or_model_folder(bc_model_dir: Path) -> None:
    assert resolve_model_dir(bc_model_dir.parent) == bc_model_dir
    assert resolve_model_dir(bc_model_dir) == bc_model_dir
    with pytest.raises(ArtifactError, match="holds a manifest.json"):
        resolve_model_dir(bc_model_dir.parent.parent)


def test_one_changed_byte_is_refused_naming_the_file(model_copy: Path) -> None:
    graph = model_copy / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[100] ^= 0x01
    graph.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.onnx: SHA-256 mismatch"):
        leanfit.load(model_copy)


def test_missing_file_and_bad_manifest(model_copy: Path) -> None:
    (model_copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="listed in the manifest but missing"):
        verify(model_copy)
    (model_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_manifest(model_copy)


def test_unknown_format_and_escaping_paths(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["files"]["../evil"] = {"sha256": "0" * 64}
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="leaves the artifact folder"):
        verify(model_copy)
    manifest["format"] = "something/9"
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unknown artifact format 'something/9'"):
        read_manifest(model_copy)


def test_manifest_round_trip_keeps_extra_sections(model_copy: Path) -> None:
    manifest = read_manifest(model_copy)
    manifest.extra["benchmark"] = {"p50_us": 12.5}
    write_manifest(model_copy, manifest)
    again = verify(model_copy)
    assert again.extra["benchmark"] == {"p50_us": 12.5}
    assert again.inputs == manifest.inputs


def test_predictor_input_forms(bc_model_dir: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(4)
    predictor = leanfit.load(bc_model_dir)
    by_frame = predictor.predict_proba(frame)
    by_rows = predictor.predict_proba(frame.to_dict(orient="records"))
    by_array = predictor.predict_proba(frame.to_numpy())
    np.testing.assert_allclose(by_frame, by_rows)
    np.testing.assert_allclose(by_frame, by_array)
    with pytest.raises(leanfit.DataError, match="missing column"):
        predictor.predict(frame.drop(columns=frame.columns[0]))
    assert "Predictor(name='bc'" in repr(predictor)
