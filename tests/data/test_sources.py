"""Every data source: what it reads, and the exact errors it raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanfit.data import read_source
from leanfit.exceptions import DataError


def _write_parquet_folder(tmp_path: Path) -> str:
    folder = tmp_path / "parts"
    folder.mkdir()
    pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]}).to_parquet(folder / "part-0.parquet")
    pd.DataFrame({"x": [3.0], "y": ["a"]}).to_parquet(folder / "part-1.parquet")
    return str(folder)


def _write_csv(tmp_path: Path) -> str:
    path = tmp_path / "small.csv"
    path.write_text("x,y\n1.5,a\n2.5,b\n", encoding="utf-8")
    return str(path)


def _write_parquet(tmp_path: Path) -> str:
    path = tmp_path / "small.parquet"
    pd.DataFrame({"x": [1.5, 2.5], "y": ["a", "b"]}).to_parquet(path)
    return str(path)


SOURCES = {
    "csv": _write_csv,
    "parquet": _write_parquet,
    "parquet-folder": _write_parquet_folder,
    "sklearn": lambda _: "sklearn:iris",
    "synthetic": lambda _: "synthetic:classification?rows=20&features=3",
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_source_honours_the_contract(kind: str, tmp_path: Path) -> None:
    source = SOURCES[kind](tmp_path)
    frame, target, meta = read_source(source, target=None if kind in ("sklearn", "synthetic") else "y")
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    assert target in frame.columns
    assert all(isinstance(c, str) for c in frame.columns)
    assert isinstance(meta["name"], str) and meta["format"] in ("csv", "parquet", "sklearn", "synthetic")


def test_csv_keeps_bom_free_non_ascii_names_quoted_commas_and_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes('\ufeffnäme,"city, country",code,n\n"Zoë","Paris, FR",007,NA\n'.encode())
    frame, target, meta = read_source(str(path))
    assert list(frame.columns) == ["näme", "city, country", "code", "n"]
    assert frame.iloc[0].tolist()[:3] == ["Zoë", "Paris, FR", "007"]  # "007" stays text
    assert pd.isna(frame["n"].iloc[0])
    assert target is None and meta == {"name": "bom", "path": str(path), "format": "csv"}


def test_csv_reads_only_the_configured_na_spellings(tmp_path: Path) -> None:
    path = tmp_path / "na.csv"
    path.write_text("region,v\nNA,1\nEU,\n", encoding="utf-8")
    frame, _, _ = read_source(str(path), na_values=("",))
    assert frame["region"].tolist() == ["NA", "EU"]  # North America, not missing
    assert frame["v"].iloc[0] == "1" and pd.isna(frame["v"].iloc[1])


@pytest.mark.parametrize(("name", "text"), [("t.tsv", "a\tb\n1\t2\n"), ("t.txt", "a;b\n1;2\n3;4\n")])
def test_tsv_and_sniffed_txt(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    frame, _, _ = read_source(str(path))
    assert list(frame.columns) == ["a", "b"] and frame["b"].iloc[0] == "2"


def test_parquet_file_and_folder(tmp_path: Path) -> None:
    frame, _, meta = read_source(_write_parquet(tmp_path))
    assert frame["x"].dtype == np.float64 and meta["format"] == "parquet"
    frame, _, _ = read_source(_write_parquet_folder(tmp_path))
    assert sorted(frame["x"].tolist()) == [1.0, 2.0, 3.0]


def test_parquet_text_columns_get_na_spellings_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "na.parquet"
    pd.DataFrame({"c": ["a", "NA", None], "k": pd.Categorical(["u", "v", "u"])}).to_parquet(path)
    frame, _, _ = read_source(str(path))
    assert frame["c"].isna().tolist() == [False, True, True]
    assert frame["k"].tolist() == ["u", "v", "u"]


@pytest.mark.parametrize(
    ("name", "shape"),
    [("iris", (150, 5)), ("wine", (178, 14)), ("breast_cancer", (569, 31)), ("diabetes", (442, 11))],
)
def test_bundled_datasets(name: str, shape: tuple[int, int]) -> None:
    frame, target, meta = read_source(f"sklearn:{name}")
    assert frame.shape == shape and target == "target" and meta["name"] == name
    assert "image_shape" not in meta


def test_bundled_digits_are_images() -> None:
    frame, target, meta = read_source("sklearn:digits")
    assert frame.shape == (1797, 65) and target == "target"
    assert list(frame.columns[:2]) == ["pixel_0_0", "pixel_0_1"]
    assert meta["image_shape"] == (8, 8)


def test_synthetic_classification_is_seeded() -> None:
    source = "synthetic:classification?rows=50&features=4&classes=3&seed=7&informative=3"
    frame, target, meta = read_source(source)
    assert list(frame.columns) == ["f0", "f1", "f2", "f3", "target"] and target == "target"
    assert sorted(frame["target"].unique().tolist()) == [0, 1, 2] and len(frame) == 50
    pd.testing.assert_frame_equal(frame, read_source(source)[0])
    assert not frame.equals(read_source(source.replace("seed=7", "seed=8"))[0])


def test_synthetic_regression() -> None:
    frame, target, meta = read_source("synthetic:regression?rows=30&features=2&noise=0.5&seed=1")
    assert frame.shape == (30, 3) and target == "target" and frame["target"].dtype == np.float64
    assert meta["params"]["noise"] == 0.5


def test_explicit_target_wins_over_the_known_one() -> None:
    assert read_source("sklearn:iris", target="petal width (cm)")[1] == "petal width (cm)"


# ----------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as info:
        read_source("data/nope.csv")
    assert str(info.value) == (
        "file not found: data/nope.csv. Check the path; it is relative to the directory you run leanfit from"
    )


def test_missing_file_suggests_a_sibling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.csv").write_text("a\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Did you mean 'train.csv'\?$"):
        read_source("trian.csv")


def test_row_with_too_many_fields_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    lines = ["a,b,c,d,e"] + ["1,2,3,4,5"] * 15 + ["1,2,3,4,5,6"]
    (tmp_path / "data" / "x.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_source("data/x.csv")
    assert str(info.value) == (
        "data/x.csv:17: expected 5 fields, found 6. Fix the row or quote the field that contains a comma."
    )


def test_bad_row_line_counts_quoted_newlines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("q.csv").write_text('a,b\n1,"two\nlines"\n2\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_source("q.csv")
    assert str(info.value) == (
        "q.csv:4: expected 2 fields, found 1. "
        "Fix the row or add the missing fields (an empty field is read as missing)."
    )


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    Path("empty.csv").write_bytes(content)
    with pytest.raises(DataError) as info:
        read_source("empty.csv")
    assert str(info.value) == (
        "empty.csv:1: the file is empty. "
        "Point data.source at a file with a header row and at least one data row."
    )


def test_unreadable_encoding_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("latin.csv").write_bytes("name,v\nok,1\nJosé,2\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_source("latin.csv")
    assert str(info.value).startswith("latin.csv:3: the file is not valid UTF-8 (byte 0xe9 at column 4).")
    assert "Re-save it as UTF-8" in str(info.value)


def test_utf16_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"u16.csv:1: the file is UTF-16 encoded; leanfit reads UTF-8"):
        read_source(str(path))


def test_duplicate_header_names(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup.csv:1: the header names column 'a' twice"):
        read_source(str(path))


def test_unknown_bundled_name_suggests_one() -> None:
    with pytest.raises(DataError) as info:
        read_source("sklearn:iriss")
    assert str(info.value) == (
        "unknown bundled dataset 'iriss'; expected one of breast_cancer, diabetes, digits, iris, wine. "
        "Did you mean 'sklearn:iris'?"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "synthetic:clasification",
            r"unknown synthetic dataset 'clasification'.*Did you mean 'synthetic:classification'",
        ),
        ("synthetic:regression?rows=10&nosie=1", r"has no parameter 'nosie'.*Did you mean 'noise'"),
        ("synthetic:regression?rows=ten", r"rows must be a number; got 'ten'"),
        ("synthetic:classification?features=2&classes=8", r"needs 2 <= classes <= 2\*\*informative"),
        ("s3://bucket/x.csv", r"remote sources are not supported yet"),
    ],
)
def test_bad_source_strings(source: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_source(source)


def test_unknown_suffix_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(DataError, match=r"cannot read files ending in '.xlsx'"):
        read_source(str(tmp_path / "x.xlsx"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"the folder holds no .parquet files"):
        read_source(str(tmp_path / "empty"))


def test_corrupt_parquet(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"bad.parquet: not a readable Parquet file"):
        read_source(str(tmp_path / "bad.parquet"))


def test_semicolon_separated_csv_is_read(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("x;grade;y\n1.5;A;0\n2.5;B;1\n3.5;A;0\n", encoding="utf-8")
    frame, _, _ = read_source(str(path))
    assert list(frame.columns) == ["x", "grade", "y"]
    assert frame["grade"].tolist() == ["A", "B", "A"]
