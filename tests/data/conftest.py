"""Shared tiny, seeded data for the data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

MESSY_ROWS = 60
MESSY_DUPLICATES = 3


def write_messy_csv(path: Path, *, seed: int = 0) -> Path:
    """A CSV with every kind of column and every common data problem.

    Columns: ``id`` (a row ID), ``age`` (integers with gaps spelt five ways), ``income``
    (floats), ``city`` (categorical with gaps), ``member`` (yes/no), ``signup`` (dates),
    ``visits`` (whole numbers), ``const`` (one value), ``leak`` (a copy of the target),
    ``label`` (the target). The last rows repeat earlier rows under new IDs.
    """
    rng = np.random.default_rng(seed)
    na_spellings = ["", "NA", "N/A", "NaN", "null"]
    header = "id,age,income,city,member,signup,visits,const,leak,label"
    rows = []
    for i in range(MESSY_ROWS):
        age = na_spellings[i // 6 % 5] if i % 6 == 0 else str(int(rng.integers(18, 80)))
        income = f"{rng.normal(50_000, 12_000):.2f}"
        city = "" if i % 10 == 3 else str(rng.choice(["Paris", "Lyon", "Nice"]))
        member = str(rng.choice(["yes", "no"]))
        signup = f"2023-{i % 12 + 1:02d}-{i % 28 + 1:02d}"
        visits = str(int(rng.integers(0, 40)))
        label = str(rng.choice(["good", "bad"]))
        rows.append([age, income, city, member, signup, visits, "same", label, label])
    rows += rows[:MESSY_DUPLICATES]
    lines = [header] + [",".join([str(i + 1), *row]) for i, row in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def messy_csv(tmp_path: Path) -> Path:
    return write_messy_csv(tmp_path / "messy.csv")
