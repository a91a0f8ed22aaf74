"""The serving path must not pull in the training stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import leanfit.serve

HEAVY = ("torch", "optuna", "sklearn")


def test_serving_imports_neither_torch_nor_optuna_nor_sklearn(runs: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "import leanfit.serve as s\n"
        "from leanfit.serve import create_app, monitor, serve, ServeConfig\n"
        "import leanfit.serve.app, leanfit.serve.server, leanfit.serve.drift, leanfit.serve.batcher\n"
        "app = create_app([sys.argv[1]], config=ServeConfig())\n"
        "app.state.leanfit.models['mixed'].drift() if False else None\n"
        "report = monitor(sys.argv[1], sys.argv[2])\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    csv = Path(runs["mixed"]).parent / "new_rows.csv"
    csv.write_text("age,rooms,member,grade\n41,2,true,B\n35,3,false,A\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", code, str(runs["mixed"]), str(csv)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_public_names() -> None:
    assert set(leanfit.serve.__all__) == {
        "DriftReport",
        "FeatureDrift",
        "ServeConfig",
        "ServeConfigError",
        "ServeError",
        "create_app",
        "monitor",
        "serve",
    }
    for name in leanfit.serve.__all__:
        assert getattr(leanfit.serve, name) is not None
