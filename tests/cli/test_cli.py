"""The ``leanfit`` command end to end, as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def leanfit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leanfit.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("cli")
    (work / "recipe.yaml").write_text(
        "name: bc\ndata: {source: 'sklearn:breast_cancer'}\nsearch: {families: [linear, knn], trials: 3}\n",
        encoding="utf-8",
    )
    proc = leanfit("run", "recipe.yaml", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "best" in proc.stdout and "roc_auc" in proc.stdout
    return work


def test_run_writes_the_run_folder(cli_run: Path) -> None:
    run = cli_run / "runs" / "bc"
    for rel in (
        "recipe.yaml",
        "study.db",
        "leaderboard.csv",
        "data_report.json",
        "metrics.json",
        "model/model.onnx",
    ):
        assert (run / rel).is_file(), rel


def test_run_again_resumes_without_new_trials(cli_run: Path) -> None:
    proc = leanfit("run", "recipe.yaml", cwd=cli_run)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(cli_run / "runs" / "bc" / "leaderboard.csv")) == 3
    proc = leanfit("run", "recipe.yaml", "--set", "search.trials=4", cwd=cli_run)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(cli_run / "runs" / "bc" / "leaderboard.csv")) == 4


def test_predict_and_info(cli_run: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(7)
    frame.to_csv(cli_run / "new.csv", index=False)
    proc = leanfit("predict", "runs/bc", "new.csv", "-o", "preds.csv", cwd=cli_run)
    assert proc.returncode == 0, proc.stderr
    preds = pd.read_csv(cli_run / "preds.csv")
    assert list(preds.columns) == ["prediction", "proba_0", "proba_1"]
    assert len(preds) == 7 and set(preds["prediction"]) <= {0, 1}
    info = leanfit("info", "runs/bc", cwd=cli_run)
    assert info.returncode == 0 and "model.onnx" in info.stdout and "roc_auc" in info.stdout
    manifest = json.loads(leanfit("info", "runs/bc", "--json", cwd=cli_run).stdout)
    assert manifest["name"] == "bc"


def test_init_writes_a_recipe_that_runs(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": range(120),
            "size": [float(i % 17) for i in range(120)],
            "colour": ["red", "blue", "green"] * 40,
            "y": ["yes" if i % 17 > 8 else "no" for i in range(120)],
        }
    )
    frame.to_csv(tmp_path / "d.csv", index=False)
    proc = leanfit("init", "d.csv", "--target", "y", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "recipe.yaml").read_text()
    assert "task: classification" in text and "colour" in text and "id" in text
    again = leanfit("init", "d.csv", "--target", "y", cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


BAD_CASES = {
    "missing recipe": ([], "recipe file not found: nope.yaml"),
    "missing data file": ("data: {source: missing.csv, target: y}", "file not found: missing.csv"),
    "unknown target": ("data: {source: good.csv, target: lable}", "did you mean 'label'"),
    "unknown family": (
        "data: {source: good.csv, target: label}\nsearch: {families: [mpl]}",
        "Did you mean 'mlp'?",
    ),
    "unknown sampler": (
        "data: {source: good.csv, target: label}\nsearch: {sampler: tpe2}",
        "unknown sampler 'tpe2'",
    ),
    "bad row": ("data: {source: badrow.csv, target: label}", "badrow.csv:4: expected 3 fields, found 4"),
    "one class": ("data: {source: oneclass.csv, target: label}", "has a single class"),
    "empty file": ("data: {source: empty.csv, target: label}", "empty.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gets_one_clear_message_and_exit_2(case: str, tmp_path: Path) -> None:
    recipe, expected = BAD_CASES[case]
    (tmp_path / "good.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    (tmp_path / "badrow.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,7,0\n")
    (tmp_path / "oneclass.csv").write_text("a,b,label\n" + "".join(f"{i},{i},x\n" for i in range(20)))
    (tmp_path / "empty.csv").write_text("")
    if isinstance(recipe, str):
        (tmp_path / "r.yaml").write_text(recipe)
        args = ["run", "r.yaml"]
    else:
        args = ["run", "nope.yaml"]
    proc = leanfit(*args, "--set", "search.trials=1", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected.lower() in proc.stderr.lower()
    assert "Traceback" not in proc.stderr + proc.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = leanfit("--debug", "run", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_predict_on_a_tampered_artifact_is_refused(cli_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "bc"
    shutil.copytree(cli_run / "runs" / "bc", copy)
    graph = copy / "model" / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    (tmp_path / "new.csv").write_text("x\n1\n")
    proc = leanfit("predict", str(copy), "new.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert "model.onnx: SHA-256 mismatch" in proc.stderr


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_study(tmp_path: Path) -> None:
    import signal
    import time

    import optuna

    (tmp_path / "r.yaml").write_text(
        "name: ic\ndata: {source: 'sklearn:digits', cv: 0}\nsearch: {families: [mlp], trials: 40, pruner: none}\n",
        encoding="utf-8",
    )
    log = (tmp_path / "run.log").open("w")  # a file, not a pipe: a full pipe would block the run
    proc = subprocess.Popen(
        [sys.executable, "-m", "leanfit.cli", "run", "r.yaml"],
        cwd=tmp_path,
        stdout=log,
        stderr=log,
        text=True,
    )
    try:
        storage = f"sqlite:///{tmp_path / 'runs' / 'ic' / 'study.db'}"
        deadline = time.monotonic() + 240
        done = 0
        while time.monotonic() < deadline and done < 2:
            time.sleep(1)
            try:
                trials = optuna.load_study(study_name="ic", storage=storage).trials
            except Exception:  # the study is not created yet
                continue
            done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        assert done >= 2, "the run did not finish two trials in time"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    err = (tmp_path / "run.log").read_text()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    study = optuna.load_study(study_name="ic", storage=storage)
    finished = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) >= 2
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    interrupted = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.user_attrs.get("error") for t in interrupted] == ["interrupted (Ctrl-C)"]
    # The interrupted trial does not use up the budget: asking for one more than finished runs one more.
    resumed = leanfit("run", "r.yaml", "--set", f"search.trials={len(finished) + 1}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    board = pd.read_csv(tmp_path / "runs" / "ic" / "leaderboard.csv")
    complete = set(board.loc[board["state"] == "COMPLETE", "trial"])
    assert set(finished) < complete and len(complete) == len(finished) + 1


def test_an_unusable_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    proc = leanfit("run", "--out", "taken", "--set", "search.trials=1", cwd=tmp_path)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "taken" in proc.stderr and "Traceback" not in proc.stderr
