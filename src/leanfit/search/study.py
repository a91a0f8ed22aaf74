"""A persistent, resumable Optuna study: :class:`Search`.

Finished trials are never redone: ``n_trials`` is the size of the whole study,
and a re-run only adds what is missing. A trial left ``RUNNING`` by a process
that died (Ctrl-C, kill) is marked failed when the study is opened again.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import optuna
import pandas as pd
from optuna.trial import TrialState

from .._logging import get_logger
from ..exceptions import BackendError
from .samplers import make_pruner, make_sampler

__all__ = ["FINISHED", "Search", "finished_count", "leaderboard"]

logger = get_logger(__name__)

#: States that count towards a study's trial budget (interrupted trials do not count).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_INTERRUPTED = "leanfit:interrupted"
_HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Search:
    """A study on Optuna with leanfit's defaults: named samplers and pruners, SQLite, resume.

    Args:
        sampler: ``grid``, ``random``, ``tpe``, ``gp`` or ``cmaes``.
        pruner: ``none``, ``median`` or ``hyperband``.
        direction: ``maximize`` or ``minimize``.
        storage: an Optuna storage URL (``sqlite:///runs/x/study.db``); None keeps it in memory.
        study_name: the study's name in the storage.
        seed: the sampler's seed (a single-process run is then reproducible).
        enqueue: fixed parameter sets to try first (the grid sampler's grid).

    Example:
        >>> search = Search(sampler="random", seed=1)
        >>> study = search.run(lambda t: -(t.suggest_float("x", -1, 1) ** 2), n_trials=5)
        >>> len(study.trials)
        5
    """

    def __init__(
        self,
        *,
        sampler: str = "tpe",
        pruner: str = "median",
        direction: str = "maximize",
        storage: str | None = None,
        study_name: str = "leanfit",
        seed: int | None = 0,
        enqueue: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.sampler = sampler
        self.pruner = pruner
        self.direction = direction
        self.storage = storage
        self.study_name = study_name
        self.seed = seed
        self.enqueue = list(enqueue)

    def _storage(self) -> optuna.storages.BaseStorage | None:
        if self.storage is None:
            return None
        if self.storage.startswith("sqlite:///"):
            Path(self.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(
            self.storage,
            heartbeat_interval=10,
            grace_period=60,
            engine_kwargs={"connect_args": {"timeout": 60}} if self.storage.startswith("sqlite") else {},
        )

    def open(self) -> optuna.Study:
        """Create the study, or load it if the storage already has one of this name."""
        with warnings.catch_warnings():
            # heartbeats, grouped TPE and stale-trial checks are marked experimental; we opt in knowingly.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._open()

    def _open(self) -> optuna.Study:
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self._storage(),
            sampler=make_sampler(self.sampler, seed=self.seed),
            pruner=make_pruner(self.pruner),
            direction=cast(Literal["minimize", "maximize"], self.direction),
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.direction:
            raise BackendError(
                f"study {self.study_name!r} in {self.storage} was made to {study.direction.name.lower()}, "
                f"but this search wants to {self.direction}; use another run name or storage"
            )
        self._fail_orphans(study)
        for params in self.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
        return study

    @staticmethod
    def _fail_orphans(study: optuna.Study) -> None:
        """Mark RUNNING trials of dead processes on this host as failed (Ctrl-C or kill)."""
        storage = study._storage
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = trial.system_attrs.get("leanfit:owner")
            if not owner:
                continue
            host, _, pid = str(owner).rpartition(":")
            if host == _HOST and pid.isdigit() and not _pid_alive(int(pid)):
                storage.set_trial_system_attr(
                    trial._trial_id, "leanfit:error", "interrupted: its process died"
                )
                storage.set_trial_system_attr(trial._trial_id, _INTERRUPTED, True)
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                logger.warning("trial %d was interrupted by a dead process; marked failed", trial.number)
        optuna.storages.fail_stale_trials(study)

    def run(
        self,
        objective: Callable[[optuna.Trial], float],
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_jobs: int = 1,
        callbacks: Iterable[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
        objective_factory: Callable[[], Callable[[optuna.Trial], float]] | None = None,
    ) -> optuna.Study:
        """Run trials until the study holds ``n_trials`` finished ones or ``timeout`` seconds pass.

        With ``n_jobs > 1`` each extra worker is a separate process that rebuilds its
        objective from ``objective_factory`` (a picklable callable) and shares the storage.
        A trial that raises is recorded as failed with its error; the study goes on.
        """
        study = self.open()
        remaining = self._remaining(study, n_trials)
        if remaining == 0:
            logger.info("study %r already has %s finished trials; nothing to do", self.study_name, n_trials)
            return study
        wrapped = _guarded(objective)
        cbs = list(callbacks)
        if n_trials is not None:
            cbs.append(_StopAt(n_trials))
        procs: list[Any] = []
        if n_jobs > 1:
            if self.storage is None or objective_factory is None:
                raise BackendError(
                    "n_jobs > 1 needs a storage URL and an objective_factory to run in processes"
                )
            ctx = mp.get_context("spawn")
            for worker in range(1, n_jobs):
                proc = ctx.Process(
                    target=_worker,
                    args=(self._worker_args(worker), objective_factory, n_trials, timeout),
                    daemon=True,
                )
                proc.start()
                procs.append(proc)
        try:
            study.optimize(wrapped, n_trials=remaining, timeout=timeout, callbacks=cbs, catch=(Exception,))
        finally:
            for proc in procs:
                proc.join(timeout=(timeout or 0) + 60 if timeout else None)
                if proc.is_alive():
                    proc.terminate()
        return study

    def _worker_args(self, worker: int) -> dict[str, Any]:
        return {
            "sampler": self.sampler,
            "pruner": self.pruner,
            "direction": self.direction,
            "storage": self.storage,
            "study_name": self.study_name,
            "seed": None if self.seed is None else self.seed + worker,
        }

    @staticmethod
    def _remaining(study: optuna.Study, n_trials: int | None) -> int | None:
        if n_trials is None:
            return None
        return max(n_trials - finished_count(study), 0)


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards the budget: complete, pruned or failed, but not interrupted."""
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.system_attrs.get(_INTERRUPTED)
    )


class _StopAt:
    """Stop a study (in any process sharing it) once it holds ``n`` finished trials."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if finished_count(study) >= self.n:
            study.stop()


def _guarded(objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
    """Record the owner process and any error message on the trial."""

    def run(trial: optuna.Trial) -> float:
        trial.storage.set_trial_system_attr(trial._trial_id, "leanfit:owner", f"{_HOST}:{os.getpid()}")
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("error", "interrupted (Ctrl-C)")
            trial.storage.set_trial_system_attr(trial._trial_id, _INTERRUPTED, True)
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise

    return run


def _worker(
    args: dict[str, Any],
    objective_factory: Callable[[], Callable[[optuna.Trial], float]],
    n_trials: int | None,
    timeout: float | None,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = Search(**args)
    study = search.open()
    callbacks = [_StopAt(n_trials)] if n_trials else []
    study.optimize(
        _guarded(objective_factory()),
        n_trials=Search._remaining(study, n_trials),
        timeout=timeout,
        callbacks=callbacks,
        catch=(Exception,),
    )


def leaderboard(study: optuna.Study) -> pd.DataFrame:
    """Every trial as a row: number, state, family, parameters, validation score, fit seconds, error.

    Sorted best first (failed and pruned trials last).

    Example:
        >>> study = Search(sampler="random").run(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        >>> list(leaderboard(study).columns)[:4]
        ['trial', 'state', 'family', 'value']
    """
    rows = []
    for t in study.get_trials(deepcopy=False):
        params = {k: v for k, v in t.params.items() if k != "family"}
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "family": t.params.get("family", t.user_attrs.get("family")),
                "value": t.value,
                "fit_seconds": t.user_attrs.get("fit_seconds"),
                "duration_seconds": None if duration is None else round(duration, 3),
                "params": json.dumps(params, sort_keys=True, default=str),
                "error": t.user_attrs.get("error") or t.system_attrs.get("leanfit:error"),
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=["trial", "state", "family", "value", "fit_seconds", "duration_seconds", "params", "error"],
    )
    if frame.empty:
        return frame
    ascending = study.direction == optuna.study.StudyDirection.MINIMIZE
    frame["_ok"] = frame["state"] != "COMPLETE"
    frame = frame.sort_values(
        ["_ok", "value", "trial"], ascending=[True, ascending, True], na_position="last"
    )
    return frame.drop(columns="_ok").reset_index(drop=True)
