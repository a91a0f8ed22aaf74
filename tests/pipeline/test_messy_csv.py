"""The spine on a messy real-world-like CSV with only `leanfit init` + `leanfit run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from leanfit.data import read_source
from leanfit.pipeline import prepare
from leanfit.recipe import load_recipe


def make_messy_csv(path: Path, n: int = 1500, seed: int = 0) -> None:
    """Churn-like data: NA spellings, an ID, a constant, a date, non-ASCII names, duplicates, rare levels."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.lognormal(10, 0.5, n)
    plan = rng.choice(["basic", "plus", "pro", "énterprise"], n, p=[0.5, 0.3, 0.15, 0.05])
    city = rng.choice([f"city_{i}" for i in range(40)], n)
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D")
    tenure_days = (pd.Timestamp("2024-06-01") - signup).days.to_numpy()
    logit = -0.03 * (age - 45) + 0.8 * (plan == "basic") - 0.0008 * tenure_days + 0.4 * np.log(income / 20000)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{100000 + i}" for i in range(n)],
            "âge": age,
            "revenu €": income.round(2),
            "plan": plan,
            "city": city,
            "signup_date": signup.strftime("%Y-%m-%d"),
            "country": "FR",
            "churned": np.where(churn, "yes", "no"),
        }
    ).astype({"âge": object, "revenu €": object, "plan": object})
    spellings = ["", "NA", "N/A", "NaN", "null"]
    for col in ("âge", "revenu €", "plan"):
        holes = rng.random(n) < 0.08
        frame.loc[holes, col] = rng.choice(spellings, holes.sum())
    frame = pd.concat([frame, frame.iloc[:30]], ignore_index=True)  # duplicate rows
    last = frame.index[-40:]
    frame.loc[last, "city"] = "city_unseen"  # a level that may only show up at test time
    frame.to_csv(path, index=False)


def hand_built_auc(recipe_path: Path) -> float:
    """Careful scikit-learn pipelines on the same splits (impute, one-hot; gradient boosting and
    a scaled logistic regression); the better test ROC AUC of the two is the bar."""
    recipe = load_recipe(recipe_path)
    prep = prepare(recipe)
    raw, _, _ = read_source(recipe.data.source, target=recipe.data.target)
    raw = raw.drop(columns=["customer_id", "country"])
    y = (raw.pop("churned") == "yes").to_numpy()
    raw["signup_date"] = (pd.to_datetime(raw["signup_date"]) - pd.Timestamp("1970-01-01")).dt.days
    for col in ("âge", "revenu €"):
        raw[col] = pd.to_numeric(raw[col], errors="coerce")
    cats = ["plan", "city"]
    raw[cats] = raw[cats].astype(str).replace({"nan": "missing", "<NA>": "missing", "None": "missing"})
    nums = ["âge", "revenu €", "signup_date"]
    scores = []
    for estimator in (
        HistGradientBoostingClassifier(random_state=0, learning_rate=0.05, max_iter=200),
        LogisticRegression(max_iter=2000),
    ):
        model = make_pipeline(
            ColumnTransformer(
                [
                    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), nums),
                    ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats),
                ]
            ),
            estimator,
        )
        model.fit(raw.iloc[prep.dev], y[prep.dev])
        scores.append(float(roc_auc_score(y[prep.test], model.predict_proba(raw.iloc[prep.test])[:, 1])))
    return max(scores)


@pytest.mark.slow
def test_init_and_run_on_a_messy_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_messy_csv(tmp_path / "churn.csv")
    cli = [sys.executable, "-m", "leanfit.cli"]
    init = subprocess.run(
        [*cli, "init", "churn.csv", "--target", "churned"], cwd=tmp_path, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    text = (tmp_path / "recipe.yaml").read_text(encoding="utf-8")
    assert "signup_date: datetime" in text and "âge: numeric" in text
    run = subprocess.run(
        [*cli, "run", "recipe.yaml", "--set", "search.trials=16", "--set", "search.timeout=240"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    assert "customer_id" in run.stderr and "ID" in run.stderr
    assert "country" in run.stderr and "constant" in run.stderr
    metrics = json.loads((tmp_path / "runs" / "churn" / "metrics.json").read_text())
    reference = hand_built_auc(tmp_path / "recipe.yaml")
    assert metrics["test"]["roc_auc"] >= reference - 0.01, (metrics["test"]["roc_auc"], reference)
