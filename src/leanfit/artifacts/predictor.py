"""Load a verified artifact and run it with ONNX Runtime."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ArtifactError
from ..schema import to_feeds
from .manifest import MANIFEST, Manifest, read_manifest, verify

__all__ = ["Predictor", "load", "resolve_model_dir"]


def resolve_model_dir(path: str | os.PathLike[str]) -> Path:
    """Accept a run folder (``runs/x``) or an artifact folder (``runs/x/model``).

    Example:
        >>> resolve_model_dir("runs/does-not-exist")   # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        leanfit.exceptions.ArtifactError: runs/does-not-exist: no such folder
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such folder")
    if (path / MANIFEST).is_file():
        return path
    if (path / "model" / MANIFEST).is_file():
        return path / "model"
    raise ArtifactError(
        f"{path}: neither it nor {path / 'model'} holds a {MANIFEST}. "
        "Point at a run folder made by `leanfit run` or at its model/ folder."
    )


class Predictor:
    """An artifact opened for inference: checksums verified, graph loaded in ONNX Runtime.

    Use :func:`load` to make one.

    Attributes:
        manifest: the artifact's :class:`Manifest`.
        path: the artifact folder.
        session: the ``onnxruntime.InferenceSession``.
    """

    def __init__(self, path: Path, manifest: Manifest, session: Any) -> None:
        self.path = path
        self.manifest = manifest
        self.session = session
        self._output_names = [o.name for o in session.get_outputs()]

    def __repr__(self) -> str:
        return f"Predictor(name={self.manifest.name!r}, task={self.manifest.task!r}, family={self.manifest.family!r})"

    @property
    def task(self) -> str:
        return self.manifest.task

    @property
    def classes(self) -> list[Any]:
        return list(self.manifest.classes)

    def feeds(self, data: Any) -> dict[str, np.ndarray]:
        """Turn a DataFrame, row dicts, a column mapping or a 2-D array into the graph's feeds."""
        return to_feeds(data, self.manifest.inputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on ready-made feeds; returns every output by name."""
        outputs = self.session.run(self._output_names, dict(feeds))
        return dict(zip(self._output_names, outputs, strict=True))

    def predict(self, data: Any) -> np.ndarray:
        """Predict labels (decoded to the original classes) or regression values.

        Example:
            >>> predictor.predict([{"age": 41, "grade": "B"}])   # doctest: +SKIP
            array(['yes'], dtype=object)
        """
        out = self.run(self.feeds(data))
        if self.task == "classification":
            codes = out["label"].astype(np.int64).ravel()
            classes = np.asarray(self.manifest.classes, dtype=object)
            decoded = classes[codes]
            try:
                return decoded.astype(np.asarray(self.manifest.classes).dtype)
            except (TypeError, ValueError):
                return decoded
        return out["prediction"].astype(np.float64).ravel()

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities, columns in the order of :attr:`classes`."""
        if self.task != "classification":
            raise ArtifactError(
                f"{self.manifest.name}: predict_proba needs a classifier; this model does regression"
            )
        return self.run(self.feeds(data))["probabilities"].astype(np.float64)


def load(
    path: str | os.PathLike[str],
    *,
    verify_checksums: bool = True,
    intra_op_threads: int | None = None,
    providers: list[str] | None = None,
) -> Predictor:
    """Open an artifact for inference.

    Args:
        path: a run folder (``runs/<name>``) or its ``model/`` folder.
        verify_checksums: check every file's SHA-256 first (default). A changed byte
            raises :class:`~leanfit.ArtifactError` naming the file.
        intra_op_threads: ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
        providers: execution providers (default: CPU).

    Example:
        >>> predictor = leanfit.load("runs/digits")     # doctest: +SKIP
        >>> predictor.predict_proba(frame).shape         # doctest: +SKIP
        (10, 10)
    """
    import onnxruntime as ort

    directory = resolve_model_dir(path)
    manifest = verify(directory) if verify_checksums else read_manifest(directory)
    options = ort.SessionOptions()
    if intra_op_threads:
        options.intra_op_num_threads = int(intra_op_threads)
    options.log_severity_level = 3
    graph = directory / manifest.graph
    try:
        session = ort.InferenceSession(
            str(graph), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ArtifactError(f"{graph}: ONNX Runtime cannot load the graph ({exc})") from exc
    return Predictor(directory, manifest, session)
