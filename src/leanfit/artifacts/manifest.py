"""``manifest.json``: what an artifact is, and the SHA-256 of every file in it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ArtifactError
from ..schema import ColumnSpec

__all__ = ["FORMAT", "MANIFEST", "Manifest", "file_sha256", "read_manifest", "verify", "write_manifest"]

FORMAT = "leanfit.artifact/1"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x"); _ = open(p, "wb").write(b"abc")
        >>> file_sha256(p)[:12]
        'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """The parsed ``manifest.json`` of an artifact.

    Unknown keys are kept in ``extra`` and written back, so later stages (compression,
    benchmarks) can add sections without this class knowing them.
    """

    name: str
    task: str
    inputs: list[ColumnSpec]
    outputs: list[dict[str, Any]]
    classes: list[Any] = field(default_factory=list)
    target: str | None = None
    version: str = "1"
    family: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    graph: str = "model.onnx"
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = (
        "name",
        "task",
        "inputs",
        "outputs",
        "classes",
        "target",
        "version",
        "family",
        "params",
        "metrics",
        "reference",
        "versions",
        "recipe",
        "files",
        "graph",
    )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        for key in self._KNOWN:
            value = getattr(self, key)
            out[key] = [c.to_dict() for c in value] if key == "inputs" else value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = MANIFEST) -> Manifest:
        fmt = data.get("format")
        if fmt != FORMAT:
            raise ArtifactError(f"{source}: unknown artifact format {fmt!r}; this leanfit reads {FORMAT!r}")
        try:
            kwargs = {k: data[k] for k in cls._KNOWN if k in data}
            kwargs["inputs"] = [ColumnSpec.from_dict(c) for c in data["inputs"]]
            extra = {k: v for k, v in data.items() if k not in cls._KNOWN and k != "format"}
            return cls(**kwargs, extra=extra)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{source}: malformed manifest ({exc}); re-export the model") from exc

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.inputs]


def write_manifest(directory: str | Path, manifest: Manifest) -> Path:
    """Checksum every file under ``directory`` (but the manifest) and write ``manifest.json``."""
    directory = Path(directory)
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(directory).as_posix()
        files[rel] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    manifest.files = files
    target = directory / MANIFEST
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, default=_json_default), encoding="utf-8")
    tmp.replace(target)
    return target


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")


def read_manifest(directory: str | Path) -> Manifest:
    """Read ``directory/manifest.json`` without checking checksums (see :func:`verify`)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: no manifest. Point at a run folder (runs/<name>) or its model/ folder.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); the artifact is damaged") from exc
    return Manifest.from_dict(data, source=str(path))


def verify(directory: str | Path, manifest: Manifest | None = None) -> Manifest:
    """Check that every file listed in the manifest exists and matches its SHA-256.

    Raises:
        ArtifactError: naming the first file that is missing or differs.
    """
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    if not manifest.files:
        raise ArtifactError(f"{directory / MANIFEST}: lists no files; re-export the model")
    if manifest.graph not in manifest.files:
        raise ArtifactError(f"{directory / MANIFEST}: the graph {manifest.graph!r} has no checksum")
    for rel, info in manifest.files.items():
        path = directory / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ArtifactError(f"{directory / MANIFEST}: file path {rel!r} leaves the artifact folder")
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        actual = file_sha256(path)
        if actual != info.get("sha256"):
            raise ArtifactError(
                f"{path}: SHA-256 mismatch (manifest {str(info.get('sha256'))[:12]}…, file {actual[:12]}…); "
                "the file changed after export. Re-export or restore it."
            )
    return manifest
