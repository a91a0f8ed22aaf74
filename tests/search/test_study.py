from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from leanfit.search import SAMPLERS, Search, leaderboard


def _quadratic(trial: optuna.Trial) -> float:
    family = trial.suggest_categorical("family", ["a", "b"])
    x = trial.suggest_float(f"{family}__x", -2.0, 2.0)
    n = trial.suggest_int(f"{family}__n", 1, 4)
    return -((x - 0.5) ** 2) - 0.1 * n


def _stepped(trial: optuna.Trial) -> float:
    quality = trial.suggest_float("q", 0.0, 1.0)
    for step in range(6):
        trial.report(quality * (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return quality * 6


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_conditional_space_on_sqlite(tmp_path: Path, sampler: str) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = Search(sampler=sampler, storage=storage, seed=0).run(_quadratic, n_trials=6)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 6
    assert study.best_value <= 0.0


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruners_prune_bad_trials(pruner: str) -> None:
    study = Search(sampler="random", pruner=pruner, seed=0).run(_stepped, n_trials=30)
    states = {t.state for t in study.trials}
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states


def test_no_pruner_prunes_nothing() -> None:
    study = Search(sampler="random", pruner="none", seed=0).run(_stepped, n_trials=12)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_single_process_runs_are_reproducible() -> None:
    a = Search(sampler="tpe", seed=7).run(_quadratic, n_trials=12)
    b = Search(sampler="tpe", seed=7).run(_quadratic, n_trials=12)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_resume_does_not_repeat_finished_trials(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    calls: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        calls.append(trial.number)
        return _quadratic(trial)

    Search(sampler="tpe", storage=storage, study_name="s").run(objective, n_trials=5)
    study = Search(sampler="tpe", storage=storage, study_name="s").run(objective, n_trials=8)
    assert calls == list(range(8))
    assert len(study.trials) == 8
    Search(sampler="tpe", storage=storage, study_name="s").run(objective, n_trials=8)
    assert len(calls) == 8


def test_a_crashing_trial_is_recorded_and_the_study_goes_on() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise RuntimeError("boom in fit")
        return x

    study = Search(sampler="random").run(objective, n_trials=4)
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 1
    board = leaderboard(study)
    failed = board[board["state"] == "FAIL"].iloc[0]
    assert failed["error"] == "RuntimeError: boom in fit"
    assert board.iloc[0]["state"] == "COMPLETE"
    assert (board["state"] == "COMPLETE").sum() == 3


def test_direction_mismatch_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    Search(sampler="random", storage=storage, study_name="s").run(_quadratic, n_trials=1)
    with pytest.raises(Exception, match="was made to maximize"):
        Search(sampler="random", storage=storage, study_name="s", direction="minimize").open()


def test_enqueued_trials_run_first_and_once(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    grid = [{"family": "a", "a__x": 0.5, "a__n": 1}, {"family": "b", "b__x": -1.0, "b__n": 2}]
    study = Search(sampler="random", storage=storage, study_name="g", enqueue=grid).run(
        _quadratic, n_trials=2
    )
    assert [t.params for t in study.trials] == grid
    study = Search(sampler="random", storage=storage, study_name="g", enqueue=grid).run(
        _quadratic, n_trials=3
    )
    assert len(study.trials) == 3 and study.trials[2].params not in grid


def _slow_objective(trial: optuna.Trial) -> float:
    import time

    x = trial.suggest_float("x", 0, 1)
    time.sleep(0.2)
    return x


def _factory() -> object:
    return _slow_objective


def test_parallel_processes_share_the_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = Search(sampler="random", storage=storage, study_name="p").run(
        _slow_objective, timeout=12, n_jobs=2, objective_factory=functools.partial(_factory)
    )  # a time budget: with a trial count the main process may finish before the worker imports
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(finished) >= 8
    owners = {t.system_attrs.get("leanfit:owner") for t in finished}
    assert len(owners) == 2  # two processes ran trials


def test_a_killed_process_leaves_a_resumable_study(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    script = textwrap.dedent(
        f"""
        import os, signal, optuna
        from leanfit.search import Search
        def objective(trial):
            x = trial.suggest_float("x", 0, 1)
            if trial.number == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return x
        Search(sampler="random", storage="sqlite:///{db}", study_name="k").run(objective, n_trials=10)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9
    search = Search(sampler="random", storage=f"sqlite:///{db}", study_name="k")
    study = search.open()
    states = [t.state for t in study.trials]
    assert states[:3] == [TrialState.COMPLETE] * 3
    assert states[3] == TrialState.FAIL  # the orphan of the killed process
    assert study.trials[3].system_attrs["leanfit:interrupted"] is True
    calls: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        calls.append(trial.number)
        return trial.suggest_float("x", 0, 1)

    study = search.run(objective, n_trials=10)
    assert calls == [4, 5, 6, 7, 8, 9, 10]  # the interrupted trial does not use up the budget
    assert os.path.getsize(db) > 0
