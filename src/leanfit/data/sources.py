"""Data sources: a ``source`` string in, a raw DataFrame out.

Four kinds of source are understood:

==============================================  ==================================================
source                                          what is read
==============================================  ==================================================
``data/train.csv`` (also ``.tsv``, ``.txt``)    a delimited text file, UTF-8 (a BOM is fine)
``data/train.parquet`` or ``data/parquet/``     one Parquet file, or a folder of them
``sklearn:iris``                                a dataset bundled with scikit-learn (no network)
``synthetic:classification?rows=500&seed=1``    a seeded ``make_classification``/``make_regression``
==============================================  ==================================================

CSV cells are read as text: only the spellings in ``na_values`` become missing, and
column typing is left to :mod:`leanfit.data.infer`, so ``"007"`` or ``"NA"`` never change
meaning behind the user's back.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd
import pyarrow as pa

from .._logging import get_logger
from ..exceptions import DataError
from ..schema import DEFAULT_NA_VALUES
from .infer import is_missing

__all__ = ["BUNDLED", "SYNTHETIC", "read_source"]

logger = get_logger(__name__)

#: Datasets bundled with scikit-learn that ``sklearn:<name>`` reads.
BUNDLED: tuple[str, ...] = ("breast_cancer", "diabetes", "digits", "iris", "wine")
#: Generators that ``synthetic:<name>?...`` runs, with their parameters and defaults.
SYNTHETIC: dict[str, dict[str, float]] = {
    "classification": {"rows": 1000, "features": 20, "classes": 2, "seed": 0, "informative": -1},
    "regression": {"rows": 1000, "features": 20, "noise": 0.1, "seed": 0, "informative": -1},
}
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_HEAD_BYTES = 1 << 20  # the header and the delimiter are read from the first MiB
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}

SourceResult = tuple[pd.DataFrame, "str | None", dict[str, Any]]


def read_source(
    source: str, *, na_values: Sequence[str] = DEFAULT_NA_VALUES, target: str | None = None
) -> tuple[pd.DataFrame, str | None, dict[str, Any]]:
    """Read a data source into a raw DataFrame.

    Args:
        source: a file or folder path, ``sklearn:<name>`` or ``synthetic:<kind>?k=v&...``.
        na_values: cell spellings read as missing in text columns.
        target: the target column the caller asked for, if any. Bundled and synthetic
            sources know theirs (``"target"``) and return it when this is ``None``.

    Returns:
        ``(frame, target, meta)``: the raw frame (text columns as strings, missing as NaN),
        the target column name (or ``None`` when unknown), and facts about the source:
        ``name``, ``format`` and, for images, ``image_shape``.

    Raises:
        DataError: the source is missing, empty, malformed or unknown; the message names
            the file (and line) and says how to fix it.

    Example:
        >>> frame, target, meta = read_source("sklearn:iris")
        >>> frame.shape, target, meta["name"]
        ((150, 5), 'target', 'iris')
        >>> frame, target, _ = read_source("synthetic:regression?rows=10&features=3")
        >>> list(frame.columns), target
        (['f0', 'f1', 'f2', 'target'], 'target')
    """
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"data.source must be a path, 'sklearn:<name>' or 'synthetic:<kind>'; got {source!r}")
    source = source.strip()
    if source.startswith("sklearn:"):
        frame, known, meta = _read_bundled(source[len("sklearn:") :])
    elif source.startswith("synthetic:"):
        frame, known, meta = _read_synthetic(source[len("synthetic:") :])
    elif "://" in source:
        raise DataError(
            f"remote sources are not supported yet; got {source!r}. Download the file and point "
            "data.source at the local copy."
        )
    else:
        frame, known, meta = _read_path(source, na_values)
    logger.info("read %s: %d rows, %d columns", source, len(frame), frame.shape[1])
    return frame, target if target is not None else known, meta


# --------------------------------------------------------------------------- files


def _read_path(source: str, na_values: Sequence[str]) -> SourceResult:
    path = Path(source)
    if not path.exists():
        msg = (
            f"file not found: {source}. Check the path; it is relative to the directory you run leanfit from"
        )
        parent = path.parent if str(path.parent) else Path(".")
        if parent.is_dir():
            names = [p.name for p in parent.iterdir()]
            close = difflib.get_close_matches(path.name, names, n=1)
            if close:
                msg += f". Did you mean {str(parent / close[0])!r}?"
        raise DataError(msg)
    meta: dict[str, Any] = {"name": path.name.split(".")[0] or path.name, "path": source}
    if path.is_dir():
        frame = _read_parquet(path, source, folder=True)
        meta["format"] = "parquet"
    else:
        suffix = path.suffix.lower()
        if suffix in _PARQUET_SUFFIXES:
            frame = _read_parquet(path, source, folder=False)
            meta["format"] = "parquet"
        elif suffix in _TEXT_SUFFIXES:
            frame = _read_text(path, source, na_values)
            meta["format"] = "csv"
        else:
            raise DataError(
                f"{source}: cannot read files ending in {suffix or '(no suffix)'!r}; leanfit reads "
                f"{', '.join(_TEXT_SUFFIXES + _PARQUET_SUFFIXES)} files and folders of Parquet files. "
                "Convert the file or rename it if it is one of these."
            )
    return _clean_strings(frame, na_values), None, meta


def _read_text(path: Path, source: str, na_values: Sequence[str]) -> pd.DataFrame:
    import pyarrow.csv as pcsv

    with path.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    if not head.lstrip(b"\xef\xbb\xbf").strip() and path.stat().st_size <= _HEAD_BYTES:
        raise DataError(
            f"{source}:1: the file is empty. Point data.source at a file with a header row "
            "and at least one data row."
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{source}:1: the file is UTF-16 encoded; leanfit reads UTF-8. Re-save it as UTF-8 "
            "(in Excel: Save As > CSV UTF-8)."
        )
    head_text = head.decode("utf-8-sig", errors="replace")
    delimiter = _delimiter(path, head_text)
    header = next(csv.reader(io.StringIO(head_text), delimiter=delimiter))
    if "\ufffd" in "".join(header):
        _check_utf8(path.read_bytes(), source)
    names = _header_names(header, source)
    bad: list[Any] = []

    def on_invalid(row: Any) -> str:
        bad.append(row)
        return "error"

    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=list(na_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raw = path.read_bytes()  # the error path only: find the line to point at
        _check_utf8(raw, source)
        if bad:
            text = raw.decode("utf-8-sig")
            raise _field_count_error(text, delimiter, source, len(names)) from exc
        raise DataError(f"{source}: cannot parse the file as delimited text ({exc}). Fix the file.") from exc
    return table.to_pandas()


def _check_utf8(raw: bytes, source: str) -> None:
    try:
        raw.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = line[exc.start : exc.start + 1].hex()
            raise DataError(
                f"{source}:{number}: the file is not valid UTF-8 (byte 0x{byte} at column {exc.start + 1}). "
                "Re-save it as UTF-8 (in Excel: Save As > CSV UTF-8; with iconv: "
                "iconv -f latin1 -t utf-8)."
            ) from None


def _delimiter(path: Path, text: str) -> str:
    """The field separator: tab for .tsv; for .csv a comma unless the header has none and another
    separator (";" from European spreadsheets, tab, "|"); otherwise sniffed."""
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    if suffix == ".csv":
        if counts[","] or not any(counts.values()):
            return ","
        return max(counts, key=lambda sep: counts[sep])
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _header_names(header: list[str], source: str) -> list[str]:
    names = []
    for i, name in enumerate(header):
        name = name.strip()
        if not name:
            name = f"unnamed_{i}"
            logger.warning("%s:1: column %d has no name; calling it %r", source, i + 1, name)
        names.append(name)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{source}:1: the header names column {name!r} twice. Rename one of them; "
                "column names must be unique."
            )
        seen.add(name)
    return names


def _field_count_error(text: str, delimiter: str, source: str, expected: int) -> DataError:
    """Find the first record with the wrong number of fields and describe it."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1
    for record in reader:
        if record and len(record) != expected:
            found = len(record)
            if found > expected:
                what = _DELIMITER_NAMES.get(delimiter, repr(delimiter))
                fix = f"Fix the row or quote the field that contains a {what}."
            else:
                fix = "Fix the row or add the missing fields (an empty field is read as missing)."
            return DataError(f"{source}:{start}: expected {expected} fields, found {found}. {fix}")
        start = reader.line_num + 1
    return DataError(f"{source}: a row has the wrong number of fields (expected {expected}). Fix the row.")


def _read_parquet(path: Path, source: str, *, folder: bool) -> pd.DataFrame:
    import pyarrow.dataset as pds

    try:
        if folder:
            files = [p for p in path.rglob("*") if p.suffix.lower() in _PARQUET_SUFFIXES]
            if not files:
                raise DataError(
                    f"{source}: the folder holds no .parquet files. Point data.source at a CSV or "
                    "Parquet file, or at a folder of Parquet files."
                )
            table = pds.dataset(path, format="parquet", partitioning="hive").to_table()
        else:
            table = pds.dataset(path, format="parquet").to_table()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{source}: not a readable Parquet file or folder ({exc}). Re-write it with pandas "
            "DataFrame.to_parquet or pyarrow."
        ) from exc
    if table.num_columns == 0:
        raise DataError(
            f"{source}: the Parquet data has no columns. Point data.source at a table with columns."
        )
    return table.to_pandas()


def _clean_strings(frame: pd.DataFrame, na_values: Sequence[str]) -> pd.DataFrame:
    """Turn NA spellings in text columns into missing values; dictionary columns into text."""
    out = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.astype(object).where(column.notna(), None)
        if pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype):
            missing = is_missing(column, na_values)
            if missing.any():
                column = column.mask(missing)
        out[str(name)] = column
    return pd.DataFrame(out, index=frame.index)


# --------------------------------------------------------------------------- bundled


def _read_bundled(name: str) -> SourceResult:
    from sklearn import datasets

    loaders: dict[str, Callable[..., Any]] = {
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
        "digits": datasets.load_digits,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
    }
    if name not in loaders:
        close = difflib.get_close_matches(name, BUNDLED, n=1)
        hint = f" Did you mean 'sklearn:{close[0]}'?" if close else ""
        raise DataError(f"unknown bundled dataset {name!r}; expected one of {', '.join(BUNDLED)}.{hint}")
    bunch = loaders[name](as_frame=True)
    frame = bunch.frame.copy()
    meta: dict[str, Any] = {"name": name, "format": "sklearn"}
    if name == "digits":
        meta["image_shape"] = (8, 8)
    if "target_names" in bunch:
        meta["target_names"] = [str(v) for v in bunch.target_names]
    return frame, "target", meta


# --------------------------------------------------------------------------- synthetic


def _read_synthetic(spec: str) -> SourceResult:
    from sklearn.datasets import make_classification, make_regression

    kind, _, query = spec.partition("?")
    if kind not in SYNTHETIC:
        close = difflib.get_close_matches(kind, list(SYNTHETIC), n=1)
        hint = f" Did you mean 'synthetic:{close[0]}'?" if close else ""
        raise DataError(f"unknown synthetic dataset {kind!r}; expected one of {', '.join(SYNTHETIC)}.{hint}")
    params = dict(SYNTHETIC[kind])
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in params:
            close = difflib.get_close_matches(key, list(params), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"synthetic:{kind} has no parameter {key!r}; expected some of {', '.join(params)}.{hint}"
            )
        try:
            params[key] = float(value) if key == "noise" else int(value)
        except ValueError:
            raise DataError(f"synthetic:{kind}: {key} must be a number; got {value!r}") from None
    rows, features, seed = int(params["rows"]), int(params["features"]), int(params["seed"])
    if rows < 2 or features < 1:
        raise DataError(
            f"synthetic:{kind} needs rows >= 2 and features >= 1; got rows={rows}, features={features}"
        )
    informative = int(params["informative"])
    if kind == "classification":
        classes = int(params["classes"])
        if informative < 0:
            informative = min(features, max(2, features // 2))
        if not 1 <= informative <= features or classes < 2 or classes > 2**informative:
            raise DataError(
                f"synthetic:classification needs 2 <= classes <= 2**informative and 1 <= informative <= "
                f"features; got classes={classes}, informative={informative}, features={features}. "
                "Raise informative (and features) or lower classes."
            )
        clusters = 2 if classes * 2 <= 2**informative else 1
        X, y = make_classification(
            n_samples=rows,
            n_features=features,
            n_informative=informative,
            n_redundant=0,
            n_classes=classes,
            n_clusters_per_class=clusters,
            random_state=seed,
        )
    else:
        if informative < 0:
            informative = min(features, 10)
        X, y = make_regression(
            n_samples=rows,
            n_features=features,
            n_informative=min(informative, features),
            noise=float(params["noise"]),
            random_state=seed,
        )
    frame = pd.DataFrame(np.asarray(X), columns=[f"f{i}" for i in range(features)])
    frame["target"] = y
    return frame, "target", {"name": f"synthetic-{kind}", "format": "synthetic", "params": params}
