"""leanfit's default search against plain Optuna TPE written by hand, same space, same budget.

For each dataset and seed, both get the same wall-clock budget and the same data splits:

* leanfit: ``leanfit.run`` with the default search (multivariate TPE, median pruner,
  each family's defaults enqueued first, 5-fold CV up to 5,000 rows).
* anchor: ``optuna.create_study(sampler=TPESampler(seed))`` and a hand-written objective over the
  same families and spaces, scored on the single validation split, no pruning.

Both refit their best configuration on train+valid and report the test score.
Prints medians over seeds and appends them to ``benchmarks/RESULTS.md``.

    python benchmarks/search_vs_optuna.py                      # digits 60 s + synthetic 50k 120 s, 3 seeds
    python benchmarks/search_vs_optuna.py --quick              # 20 s / 40 s budgets, 1 seed
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import optuna

import leanfit
from leanfit.data import build_preprocessor, prepare, to_feature_matrix
from leanfit.evaluate import primary_metric, score
from leanfit.models import fit_family, get_family, suggest
from leanfit.recipe import load_recipe

FAMILIES = ["linear", "hgb", "knn", "mlp"]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_leanfit(source: str, seed: int, budget: float, workdir: Path) -> tuple[float, float]:
    result = leanfit.run(
        {
            "name": f"bench-{seed}",
            "seed": seed,
            "data": {"source": source},
            "search": {"families": FAMILIES, "trials": None, "timeout": budget},
        },
        out=workdir,
    )
    metric = result.metrics["metric"]
    return result.metrics["validation"][metric], result.metrics["test"][metric]


def run_plain_optuna(source: str, seed: int, budget: float) -> tuple[float, float]:
    recipe = load_recipe({"seed": seed, "data": {"source": source}, "search": {"families": FAMILIES}})
    prep = prepare(recipe)
    data = prep.data
    metric = primary_metric(data.task, len(data.classes))
    n_classes = len(data.classes)
    designs: dict[bool, tuple[np.ndarray, np.ndarray]] = {}

    def design(scale: bool) -> tuple[np.ndarray, np.ndarray]:
        if scale not in designs:
            pre = build_preprocessor(data.columns, scale=scale).fit(data.X.iloc[prep.train])
            designs[scale] = (
                to_feature_matrix(pre, data.X.iloc[prep.train]),
                to_feature_matrix(pre, data.X.iloc[prep.valid]),
            )
        return designs[scale]

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("family", FAMILIES)
        family = get_family(name)
        params = suggest(trial, family.space(data.task), prefix=name)
        X_tr, X_va = design(family.scale)
        est = fit_family(
            family,
            params,
            data,
            X_tr,
            data.y[prep.train],
            seed=seed,
            X_valid=X_va,
            y_valid=data.y[prep.valid],
        )
        return score(
            metric, data.y[prep.valid], family.predict_output(est, X_va), task=data.task, n_classes=n_classes
        )

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=budget, catch=(Exception,))
    best = study.best_trial
    name = best.params["family"]
    family = get_family(name)
    params = {k.removeprefix(f"{name}__"): v for k, v in best.params.items() if k.startswith(f"{name}__")}
    pre = build_preprocessor(data.columns, scale=family.scale).fit(data.X.iloc[prep.dev])
    X_dev, X_te = (
        to_feature_matrix(pre, data.X.iloc[prep.dev]),
        to_feature_matrix(pre, data.X.iloc[prep.test]),
    )
    est = fit_family(family, params, data, X_dev, data.y[prep.dev], seed=seed)
    test = score(
        metric, data.y[prep.test], family.predict_output(est, X_te), task=data.task, n_classes=n_classes
    )
    return float(best.value), float(test)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short budgets, one seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    seeds = list(range(1 if args.quick else args.seeds))
    cases = [
        ("sklearn:digits", 20.0 if args.quick else 60.0),
        (
            "synthetic:classification?rows=50000&features=20&informative=10&classes=2&seed=0",
            40.0 if args.quick else 120.0,
        ),
    ]
    rows = []
    for source, budget in cases:
        per: dict[str, list[tuple[float, float]]] = {"leanfit": [], "optuna": []}
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                per["leanfit"].append(run_leanfit(source, seed, budget, Path(tmp)))
                t1 = time.perf_counter()
            per["optuna"].append(run_plain_optuna(source, seed, budget))
            t2 = time.perf_counter()
            print(
                f"{source[:30]:30s} seed {seed}: leanfit {per['leanfit'][-1]} ({t1 - t0:.0f}s)  "
                f"optuna {per['optuna'][-1]} ({t2 - t1:.0f}s)",
                flush=True,
            )
        med = {
            k: (statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals))
            for k, vals in per.items()
        }
        rows.append((source.split("?")[0] + (" 50k" if "rows=50000" in source else ""), budget, med))

    header = "| dataset | budget s | leanfit valid | leanfit test | optuna valid | optuna test | test diff |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for name, budget, med in rows:
        lv, lt = med["leanfit"]
        ov, ot = med["optuna"]
        lines.append(
            f"| {name} | {budget:.0f} | {lv:.4f} | {lt:.4f} | {ov:.4f} | {ot:.4f} | {lt - ot:+.4f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.no_record:
        return
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in ("leanfit", "optuna", "scikit-learn", "torch"))
    section = (
        f"\n## search_vs_optuna — {dt.date.today().isoformat()}\n\n"
        f"Command: `python benchmarks/search_vs_optuna.py{' --quick' if args.quick else ''}`  \n"
        f"Machine: {_cpu()}, {__import__('os').cpu_count()} cores; {versions}.  \n"
        f"Medians over {len(seeds)} seed(s); metric = the recipe's primary metric (accuracy for digits, ROC AUC for the binary set); "
        "valid = each search's own model-selection score (leanfit: 5-fold CV on small data; optuna: the holdout), "
        "test = the refit best model on the untouched test split.\n\n" + table + "\n"
    )
    results = Path(__file__).with_name("RESULTS.md")
    if not results.exists():
        results.write_text("# Benchmark results\n", encoding="utf-8")
    with results.open("a", encoding="utf-8") as fh:
        fh.write(section)


if __name__ == "__main__":
    main()
