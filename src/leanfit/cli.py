"""The ``leanfit`` command line: subcommands on top of the public API.

The CLI owns the console (rich tables and progress bars); the library only logs.
Errors leanfit raises on purpose print one message and exit with code 2; ``--debug``
shows the traceback too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .exceptions import LeanfitError

app = typer.Typer(
    name="leanfit",
    help="From a dataset to the best model that fits a deployment budget, exported to ONNX and served.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out_console = Console()
_STATE = {"debug": False}


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors."),
) -> None:
    _STATE["debug"] = debug
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=console, show_path=False, show_time=False, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("leanfit").setLevel(level)
    import optuna

    # Optuna logs each failed trial with its traceback; the CLI prints one line per failure
    # instead (from the progress events), and the leaderboard keeps the error.
    optuna.logging.disable_default_handler()
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _fail(exc: BaseException) -> None:
    if _STATE["debug"]:
        console.print_exception()
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


class _SearchProgress:
    """Draws pipeline progress events: a bar with trials done, best so far and elapsed time."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        stage = event.get("stage")
        if "warning" in event:
            console.print(f"[yellow]warning:[/] {event['warning']}", highlight=False)
        elif "message" in event:
            console.print(f"[dim]{stage}:[/] {event['message']}", highlight=False)
        if stage == "search" and event.get("state") == "FAIL":
            console.print(
                f"[yellow]trial {event.get('trial')} failed:[/] {escape(str(event.get('error')))}",
                soft_wrap=True,
            )
        if stage == "search":
            best = event.get("best")
            shown = "-" if best is None else f"{best:.4f}"
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("search", total=event.get("total"), best=shown)
            self.progress.update(self.task, completed=event.get("done", 0), best=shown)
        elif stage in ("refit", "done") and self.task is not None:
            self.progress.stop()
            self.task = None

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


def _metrics_table(metrics: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("train", justify="right")
    table.add_column("gap", justify="right")
    for key, value in metrics.get("test", {}).items():
        train = metrics.get("train", {}).get(key)
        gap = metrics.get("train_test_gap", {}).get(key)
        table.add_row(key, _fmt(value), _fmt(train), _fmt(gap))
    return table


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@app.command()
def run(
    recipe: Path | None = typer.Argument(None, help="Recipe YAML; none runs the bundled digits demo."),
    out: Path = typer.Option(Path("runs"), "--out", help="Parent folder of run folders."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a recipe field: --set search.trials=20"
    ),
) -> None:
    """Search, refit, evaluate and export a model. Re-running resumes the study."""
    from .pipeline import run as run_pipeline

    progress = _SearchProgress()
    try:
        result = run_pipeline(recipe, out=out, overrides=set_ or [], progress=progress)
    except KeyboardInterrupt:
        progress.close()
        console.print(
            "[yellow]interrupted.[/] Finished trials are saved; run the same command again to resume."
        )
        raise typer.Exit(code=130) from None
    except (LeanfitError, OSError) as exc:
        progress.close()
        _fail(exc)
        return
    progress.close()
    m = result.metrics
    out_console.print(
        _metrics_table(m, f"{result.recipe.name}: best {result.family} (trial {m['best_trial']})")
    )
    out_console.print(
        f"validation {m['metric']} {m['validation'][m['metric']]:.4f} · trials {m['n_trials']} · "
        f"{m['seconds']:.0f}s · model: {result.model_dir}"
    )


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<name>) or its model/ folder."),
    data: Path = typer.Argument(..., help="CSV or Parquet file with the feature columns."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write predictions here (CSV); default stdout."
    ),
    proba: bool = typer.Option(True, help="Add one probability column per class."),
) -> None:
    """Predict with a run's ONNX artifact (checksums verified)."""
    import pandas as pd

    from .artifacts import load
    from .data import read_source

    try:
        predictor = load(run_dir)
        frame, _, _ = read_source(str(data), target=None)
        result = pd.DataFrame({"prediction": predictor.predict(frame)})
        if proba and predictor.task == "classification":
            probabilities = predictor.predict_proba(frame)
            for i, label in enumerate(predictor.classes):
                result[f"proba_{label}"] = probabilities[:, i]
    except (LeanfitError, OSError) as exc:
        _fail(exc)
        return
    if output:
        result.to_csv(output, index=False)
        console.print(f"wrote {len(result)} predictions to {output}")
    else:
        result.to_csv(sys.stdout, index=False)


@app.command()
def info(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<name>) or its model/ folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """What was run, the best model, its metrics and files."""
    from .artifacts import read_manifest, resolve_model_dir

    try:
        model_dir = resolve_model_dir(run_dir)
        manifest = read_manifest(model_dir)
    except (LeanfitError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        out_console.print_json(json.dumps(manifest.to_dict(), default=str))
        return
    out_console.print(f"[bold]{manifest.name}[/] · {manifest.task} · family [bold]{manifest.family}[/]")
    out_console.print(
        f"target {manifest.target!r}; {len(manifest.inputs)} inputs; classes {manifest.classes or '-'}"
    )
    out_console.print(f"params {json.dumps(manifest.params, default=str)}")
    out_console.print(_metrics_table(manifest.metrics, "metrics"))
    files = Table(title="files")
    files.add_column("file")
    files.add_column("bytes", justify="right")
    files.add_column("sha256")
    for rel, meta in manifest.files.items():
        files.add_row(rel, str(meta.get("bytes")), str(meta.get("sha256"))[:16] + "…")
    out_console.print(files)
    run_folder = model_dir.parent
    for extra in ("leaderboard.csv", "data_report.json", "metrics.json", "study.db", "recipe.yaml"):
        if (run_folder / extra).exists():
            out_console.print(f"  {run_folder / extra}")


@app.command()
def init(
    data: str = typer.Argument(..., help="CSV/Parquet path or a source such as sklearn:wine."),
    target: str | None = typer.Option(None, "--target", "-t", help="The column to predict."),
    output: Path = typer.Option(Path("recipe.yaml"), "-o", "--output", help="Where to write the recipe."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a starter recipe with the inferred task, columns and types."""
    from .starter import starter_recipe

    if output.exists() and not force:
        _fail(LeanfitError(f"{output} exists; pass --force to overwrite it or -o to write elsewhere"))
    try:
        text = starter_recipe(data, target=target)
    except (LeanfitError, OSError) as exc:
        _fail(exc)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}. Next: leanfit run {output}")


@app.command()
def serve(
    runs: list[Path] = typer.Argument(
        ..., help="Run folders (or model/ folders) to serve; each under its own name."
    ),
    name: list[str] | None = typer.Option(
        None, "--name", help="Model name, once per run (default: the run's folder name)."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to bind; 0.0.0.0 exposes the server to the network."),
    port: int = typer.Option(8000, help="TCP port."),
    max_batch_size: int = typer.Option(
        64, help="Rows per model call when batching; 0 or 1 turns batching off."
    ),
    max_delay_ms: float = typer.Option(
        2.0, help="How long the first request of a batch may wait for company."
    ),
    max_queue_rows: int = typer.Option(4096, help="Rows waiting before new requests get 503 + Retry-After."),
    cache_size: int = typer.Option(10000, help="Response cache entries (0 turns the cache off)."),
    token_env: str | None = typer.Option(
        None, help="Environment variable holding a bearer token to require."
    ),
    threads: int | None = typer.Option(
        None, help="ONNX Runtime intra-op threads per model (default: cores - 1, at least 1)."
    ),
    drain_timeout: float = typer.Option(30.0, help="Seconds to drain in-flight requests after SIGTERM."),
) -> None:
    """Serve run folders over the Open Inference Protocol (KServe V2) with batching, cache and metrics."""
    from .serve import serve as serve_models

    code = serve_models(
        [str(r) for r in runs],
        names=name or None,
        host=host,
        port=port,
        max_batch_size=max_batch_size,
        max_delay_ms=max_delay_ms,
        max_queue_rows=max_queue_rows,
        cache_size=cache_size,
        token_env=token_env,
        intra_op_threads=threads,
        drain_timeout=drain_timeout,
    )
    raise typer.Exit(code=code)


@app.command()
def monitor(
    run_dir: Path = typer.Argument(
        ..., help="A run folder or its model/ folder (holds the training reference)."
    ),
    data: Path = typer.Argument(..., help="CSV or Parquet file of recent inputs."),
    as_json: bool = typer.Option(False, "--json", help="Print the drift report as JSON."),
) -> None:
    """Offline drift report of a file against the model's training reference."""
    from .serve import monitor as drift_report

    try:
        report = drift_report(str(run_dir), str(data))
    except (LeanfitError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        out_console.print_json(json.dumps(report.to_dict(), default=str))
        return
    rows = report.table()
    table = Table(title=f"drift of {data} against {run_dir}")
    if rows:
        for key in rows[0]:
            table.add_column(str(key))
        for row in rows:
            table.add_row(*[_fmt(v) for v in row.values()])
    out_console.print(table)
    summary = report.to_dict()
    out_console.print(
        f"drifted features: {summary.get('drifted_features')} of {summary.get('n_features')} "
        f"(share {summary.get('share_drifted', 0):.2f}); dataset drift: {summary.get('dataset_drift')}"
    )


@app.command()
def compress(
    run_dir: Path = typer.Argument(..., help="A run folder made by `leanfit run`."),
    set_: list[str] | None = typer.Option(
        None, "--set", help="Override a recipe field: --set compress.tolerance=0.02"
    ),
) -> None:
    """Quantize, prune and distill a run's model; keep a candidate only if it measurably wins."""
    from .compress import compress_run

    try:
        result = compress_run(run_dir, overrides=set_ or [])
    except (LeanfitError, OSError) as exc:
        _fail(exc)
        return
    out_console.print(result.summary())


@app.command()
def bench(
    model_dir: Path = typer.Argument(..., help="An artifact folder (runs/<name>/model) or a run folder."),
    batch_size: list[int] | None = typer.Option(
        None, "--batch-size", help="Batch sizes (default 1, 32, 1024)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as JSON."),
    record: bool = typer.Option(True, help="Store the results in the artifact's manifest."),
) -> None:
    """Latency p50/p95/p99, throughput, size and memory of an artifact on this machine."""
    from .evaluate.bench import bench_artifact

    try:
        report = bench_artifact(model_dir, batch_sizes=batch_size or None, record=record)
    except (LeanfitError, OSError) as exc:
        _fail(exc)
        return
    if as_json:
        out_console.print_json(json.dumps(report.to_dict(), default=str))
    else:
        out_console.print(report.table())


def main() -> None:
    """Console entry point."""
    # Library warnings (solver convergence, upstream deprecations) are noise on a console;
    # leanfit's own findings come through its logger.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*(converge|ConvergenceWarning|max_iter).*")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    try:
        app()
    except (LeanfitError, OSError) as exc:  # raised outside a command's own handling
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: one line, the traceback only with --debug
        if _STATE["debug"]:
            raise
        console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. "
            "Re-run with --debug for the traceback, and please report it.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
