"""Compression benchmark: leanfit's chosen candidate against the usual anchors, side by side.

Scenarios (one run of this script does all three):

* ``digits/mlp``   sklearn digits, MLP teacher 64-512-512-10
* ``synth/mlp``    synthetic 50,000 x 40 (3 classes), MLP teacher 40-256-256-3
* ``synth/hgb``    the same data, HistGradientBoosting teacher

For each scenario a real run folder is written (teacher fitted with fixed parameters on the
development rows, exported and checksummed like ``leanfit run`` does), then
``compress_run`` is called twice, with the target batch size 1 and 1024 (threads 1,
objective latency, tolerance 0.005 accuracy). Anchors, all on the preprocessed feature
matrix:

* ``torch-fp32``        the teacher's module, eager, ``torch.no_grad`` (MLP teachers)
* ``torch-ao-dynamic``  ``torch.ao.quantization.quantize_dynamic`` of it (nn.Linear, qint8)
* ``ort-fp32``          the teacher's ONNX model graph in ONNX Runtime
* ``ort-dynamic``       ``quantize_dynamic`` with defaults (after ``quant_pre_process``, which it needs)
* ``ort-static``        ``quantize_static`` with defaults (QDQ, MinMax, 512 training rows)

leanfit's chosen candidate is timed two ways: ``model`` (its model graph on the same
feature matrix: like for like with the anchors) and ``artifact`` (the whole artifact on raw
columns, preprocessing included: what a server runs). Every timing comes from one
interleaved harness: warm-up, then rounds in which every variant runs a burst of calls, in
rotated order; p50 over all calls.

Usage::

    python benchmarks/compression.py                 # full run, appends to benchmarks/RESULTS.md
    python benchmarks/compression.py --quick --no-append
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from leanfit.compress.graphs import session

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "RESULTS.md"
BATCHES = (1, 32, 1024)
THREADS = ("1", "all")


# ---------------------------------------------------------------------------------------------
# run folders
# ---------------------------------------------------------------------------------------------
def build_run(out: Path, name: str, source: str, family_name: str, params: dict[str, Any]) -> SimpleNamespace:
    """Fit a fixed teacher on the development rows and write a run folder like ``leanfit run``."""
    import yaml

    from leanfit.data import build_preprocessor, prepare, to_feature_matrix
    from leanfit.evaluate import compute_metrics
    from leanfit.models import fit_family, get_family
    from leanfit.pipeline import Refit, export_graph, write_model
    from leanfit.recipe import load_recipe

    recipe = load_recipe(
        {
            "name": name,
            "seed": 0,
            "data": {"source": source},
            "search": {"families": [family_name], "metric": "accuracy", "trials": 1},
            # One thread: on a shared 2-core machine two OpenMP threads train 10x slower, not faster.
            "train": {"threads": 1},
            "compress": {"tolerance": 0.005, "target": {"batch_size": 1, "threads": 1}},
        }
    )
    prepared = prepare(recipe)
    data, family = prepared.data, get_family(family_name)
    dev = data.X.iloc[prepared.dev]
    pre = build_preprocessor(data.columns, scale=family.scale).fit(dev)
    X_dev = to_feature_matrix(pre, dev)
    start = time.perf_counter()
    estimator = fit_family(family, params, data, X_dev, data.y[prepared.dev], seed=0, device="cpu", threads=1)
    fit_s = time.perf_counter() - start
    X_test = to_feature_matrix(pre, data.X.iloc[prepared.test])
    test = compute_metrics(
        data.y[prepared.test],
        family.predict_output(estimator, X_test),
        task=data.task,
        n_classes=len(data.classes),
    )
    net = family.to_onnx(estimator, X_dev.shape[1])
    graph = export_graph(pre, estimator, family_name, data, X_dev.shape[1])
    run_dir = out / name
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"task": data.task, "metric": "accuracy", "family": family_name, "test": test, "best_trial": 0}
    refit = Refit(family_name, params, 0, pre, estimator, graph, metrics, dev)
    write_model(run_dir / "model", recipe, data, refit)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    return SimpleNamespace(
        run_dir=run_dir,
        recipe=recipe,
        prepared=prepared,
        refit=refit,
        net=net,
        X_train=to_feature_matrix(pre, data.X.iloc[prepared.train]),
        X_test=X_test,
        y_test=data.y[prepared.test],
        raw_test=data.X.iloc[prepared.test],
        columns=data.columns,
        fit_s=fit_s,
    )


# ---------------------------------------------------------------------------------------------
# variants: name -> (run(X or feeds of a batch), outputs on the test set, size bytes)
# ---------------------------------------------------------------------------------------------


def quantized_anchors(net: Any, X_train: np.ndarray) -> dict[str, bytes]:
    from onnxruntime.quantization import CalibrationDataReader, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rows = X_train[np.random.default_rng(0).permutation(len(X_train))[:512]]
            self.it = iter([{"features": rows[i : i + 64]} for i in range(0, len(rows) - 63, 64)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    out = {"ort-fp32": net.SerializeToString()}
    with tempfile.TemporaryDirectory() as tmp:
        import onnx

        src, pre = Path(tmp) / "net.onnx", Path(tmp) / "pre.onnx"
        onnx.save_model(net, str(src))
        quant_pre_process(str(src), str(pre))
        names = [n.op_type for n in onnx.load_model(str(pre)).graph.node]
        if any(op in ("MatMul", "Gemm", "Conv") for op in names):
            with contextlib_quiet():
                quantize_dynamic(str(pre), str(Path(tmp) / "dyn.onnx"))
                quantize_static(str(pre), str(Path(tmp) / "qdq.onnx"), Reader())
            out["ort-dynamic"] = (Path(tmp) / "dyn.onnx").read_bytes()
            out["ort-static"] = (Path(tmp) / "qdq.onnx").read_bytes()
    return out


class contextlib_quiet:
    """Hold back the quantization tools' stdout prints."""

    def __enter__(self) -> None:
        import contextlib

        self._cm = contextlib.redirect_stdout(io.StringIO())
        self._cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


def torch_anchors(estimator: Any) -> dict[str, Any]:
    import torch
    from torch import nn

    module = estimator.module_.eval()
    out = {"torch-fp32": module}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["torch-ao-dynamic"] = torch.ao.quantization.quantize_dynamic(
            module, {nn.Linear}, dtype=torch.qint8
        )
    return out


def torch_size(module: Any) -> int:
    import torch

    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def extract_model_graph(artifact: Path) -> bytes:
    """The model part of a merged artifact graph: from ``features`` to the outputs."""
    import onnx

    model = onnx.load_model(str(artifact))
    outputs = [o.name for o in model.graph.output]
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "net.onnx"
        onnx.utils.extract_model(str(artifact), str(dst), ["features"], outputs, check_model=False)
        return dst.read_bytes()


# ---------------------------------------------------------------------------------------------
# timing harness
# ---------------------------------------------------------------------------------------------
def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, round_ms: float) -> dict[str, float]:
    """p50 microseconds per call of each function: warm-up, then interleaved rotated rounds."""
    names = list(fns)
    burst = {}
    for name in names:
        start = time.perf_counter()
        for _ in range(3):
            fns[name]()
        per = (time.perf_counter() - start) / 3
        burst[name] = int(min(max(3, round_ms / 1e3 / max(per, 1e-7)), 2000))
    calls: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = fns[name]
            for _ in range(burst[name]):
                t0 = time.perf_counter_ns()
                fn()
                calls[name].append((time.perf_counter_ns() - t0) / 1e3)
    return {n: float(np.median(v)) for n, v in calls.items()}


def time_variants(
    s: SimpleNamespace, variants: dict[str, Any], rounds: int, round_ms: float
) -> dict[tuple[int, str], dict[str, float]]:
    import torch

    from leanfit.schema import to_feeds

    cores = os.cpu_count() or 1
    results: dict[tuple[int, str], dict[str, float]] = {}
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        index = rng.choice(len(s.X_test), size=batch, replace=len(s.X_test) < batch)
        X = torch.from_numpy(s.X_test[index])
        feats = {"features": s.X_test[index]}
        raw = to_feeds(s.raw_test.iloc[index].reset_index(drop=True), s.columns)
        for label in THREADS:
            n = 1 if label == "1" else cores
            fns: dict[str, Callable[[], Any]] = {}
            for name, v in variants.items():
                if v["kind"] == "torch":

                    def run_torch(m: Any = v["obj"], n: int = n, X: Any = X) -> Any:
                        torch.set_num_threads(n)
                        with torch.no_grad():
                            return torch.softmax(m(X), dim=1).argmax(1)

                    fns[name] = run_torch
                else:
                    sess = session(v["obj"], n)
                    feeds = raw if v["kind"] == "artifact" else feats
                    fns[name] = lambda sess=sess, feeds=feeds: sess.run(None, feeds)
            results[batch, label] = interleaved(fns, rounds, round_ms)
    torch.set_num_threads(cores)
    return results


def accuracy(s: SimpleNamespace, v: dict[str, Any]) -> float:
    import torch

    from leanfit.schema import to_feeds

    if v["kind"] == "torch":
        with torch.no_grad():
            pred = v["obj"](torch.from_numpy(s.X_test)).argmax(1).numpy()
    elif v["kind"] == "artifact":
        pred = session(v["obj"], 1).run(["label"], to_feeds(s.raw_test, s.columns))[0]
    else:
        pred = session(v["obj"], 1).run(["label"], {"features": s.X_test})[0]
    return float(np.mean(np.asarray(pred).ravel() == s.y_test))


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------
def scenario(
    out: Path, name: str, source: str, family: str, params: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    from leanfit.compress import compress_run

    print(f"== {name}: fitting the teacher", flush=True)
    s = build_run(out, name.replace("/", "-"), source, family, params)
    variants: dict[str, dict[str, Any]] = {}
    if family in ("mlp", "cnn"):
        for key, module in torch_anchors(s.refit.estimator).items():
            variants[key] = {"kind": "torch", "obj": module, "size": torch_size(module)}
    for key, data in quantized_anchors(s.net, s.X_train).items():
        variants[key] = {"kind": "ort", "obj": data, "size": len(data)}
    chosen: dict[int, dict[str, Any]] = {}
    for batch in (1, 1024):
        print(f"== {name}: compress_run, target batch {batch}", flush=True)
        start = time.perf_counter()
        result = compress_run(
            s.run_dir,
            recipe=s.recipe,
            prepared=s.prepared,
            refit=s.refit,
            overrides=[f"compress.target.batch_size={batch}"],
        )
        seconds = time.perf_counter() - start
        folder = s.run_dir / "model"
        artifact = (folder / "model.onnx").read_bytes()
        model_graph = extract_model_graph(folder / "model.onnx")
        chosen[batch] = {
            "name": result.chosen,
            "reason": result.chosen_row["reason"],
            "seconds": round(seconds, 1),
        }
        variants[f"leanfit@b{batch}:model"] = {"kind": "ort", "obj": model_graph, "size": len(model_graph)}
        variants[f"leanfit@b{batch}:artifact"] = {"kind": "artifact", "obj": artifact, "size": len(artifact)}
        chosen[batch]["table"] = [
            {k: r[k] for k in ("candidate", "status", "drop", "size_bytes", "reason")} for r in result.rows
        ]
    print(f"== {name}: timing {len(variants)} variants", flush=True)
    timings = time_variants(s, variants, args.rounds, args.round_ms)
    rows = []
    for key, v in variants.items():
        rows.append(
            {
                "variant": key,
                "accuracy": accuracy(s, v),
                "size_bytes": v["size"],
                **{f"b{b}_t{t}": timings[b, t][key] for b in BATCHES for t in THREADS},
            }
        )
    return {
        "name": name,
        "teacher": f"{family} {params}",
        "fit_s": round(s.fit_s, 1),
        "rows": rows,
        "chosen": chosen,
    }


def render(res: dict[str, Any]) -> str:
    rows = res["rows"]
    base = next((r for r in rows if r["variant"] == "torch-fp32"), None) or next(
        r for r in rows if r["variant"] == "ort-fp32"
    )
    cols = [f"b{b}_t{t}" for b in BATCHES for t in THREADS]
    lines = [
        f"### {res['name']} (teacher: {res['teacher']}; ratios vs {base['variant']})",
        "",
        "| variant | test acc | size KiB | "
        + " | ".join(f"p50 µs b{c[1:].replace('_t', ' t')}" for c in cols)
        + " |",
        "|---|---:|---:|" + "---:|" * len(cols),
    ]
    for r in rows:
        cells = [f"{r[c]:,.1f} ({r[c] / base[c]:.2f}×)" for c in cols]
        lines.append(
            f"| {r['variant']} | {r['accuracy']:.4f} | {r['size_bytes'] / 1024:,.1f} ({r['size_bytes'] / base['size_bytes']:.2f}×) | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    for batch, c in res["chosen"].items():
        lines.append(
            f"- target batch {batch}: chosen **{c['name']}** ({c['reason']}); compress_run took {c['seconds']} s"
        )
    return "\n".join(lines)


def checks(res: dict[str, Any]) -> list[str]:
    """The issue's targets, evaluated on the measured numbers."""
    rows = {r["variant"]: r for r in res["rows"]}
    teacher = rows.get("torch-fp32") or rows["ort-fp32"]
    anchors = [r for k, r in rows.items() if not k.startswith("leanfit")]
    out = []
    for batch in (1, 1024):
        mine = rows[f"leanfit@b{batch}:model"]
        col = f"b{batch}_t1"
        best = min(anchors, key=lambda r: r[col])
        speed = best[col] / mine[col]
        acc_gap = (teacher["accuracy"] - mine["accuracy"]) * 100
        smaller = rows["ort-fp32"]["size_bytes"] / mine["size_bytes"]
        out.append(
            f"- {res['name']} target batch {batch} (1 thread): {res['chosen'][batch]['name']} is {speed:.2f}× the speed of the "
            f"best anchor ({best['variant']}) [target ≥1.5×: {'met' if speed >= 1.5 else 'missed'}], "
            f"{abs(acc_gap):.2f} points {'below' if acc_gap > 0 else 'above'} the fp32 teacher's test accuracy "
            f"[target within 0.5 below: {'met' if acc_gap <= 0.5 else 'missed'}], "
            f"{smaller:.1f}× smaller than the fp32 ONNX model [target ≥5×: {'met' if smaller >= 5 else 'missed'}]"
        )
    return out


def machine() -> str:
    from leanfit.evaluate.bench import hardware_fingerprint

    hw = hardware_fingerprint()
    return f"{hw['cpu_model']}, {hw['cores_logical']} logical cores ({hw['cores_physical']} physical), ISA {' '.join(hw['isa'])}"


def versions() -> str:
    names = ("leanfit", "torch", "onnxruntime", "onnx", "scikit-learn", "numpy", "onnxconverter-common")
    found = []
    for n in names:
        try:
            found.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            continue
    return f"python {platform.python_version()}, " + ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="digits only, fewer rounds")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--round-ms", type=float, default=20.0)
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the synthetic data")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 5)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    started = time.perf_counter()
    load_before = os.getloadavg()
    synth = f"synthetic:classification?rows={args.rows}&features=40&classes=3&informative=16&seed=0"
    plan = [
        ("digits/mlp", "sklearn:digits", "mlp", {"hidden": 512, "depth": 2, "dropout": 0.1, "max_epochs": 60})
    ]
    if not args.quick:
        plan += [
            (
                "synth/mlp",
                synth,
                "mlp",
                {"hidden": 256, "depth": 2, "dropout": 0.1, "max_epochs": 30, "batch_size": 256},
            ),
            ("synth/hgb", synth, "hgb", {}),
        ]
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        results = [scenario(out, *item, args) for item in plan]
    total = time.perf_counter() - started
    body = "\n\n".join(render(r) for r in results)
    verdicts = [line for r in results for line in checks(r)]
    text = "\n".join(
        [
            f"## Compression ({datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')})",
            "",
            f"Command: `python benchmarks/compression.py{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}` "
            f"({total / 60:.1f} min)",
            f"Machine: {machine()}; load average {load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end "
            "(other jobs share these cores: the all-threads columns are the most affected)",
            f"Versions: {versions()}",
            f"Timing: p50 per call over {args.rounds} interleaved rounds (~{args.round_ms:.0f} ms bursts per variant) "
            "after warm-up; `:model` = the chosen candidate's model graph on the feature matrix (like the anchors), "
            "`:artifact` = the whole artifact on raw columns (preprocessing included).",
            "",
            body,
            "",
            "Targets:",
            *verdicts,
            "",
        ]
    )
    print(text)
    if not args.no_append:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\n", encoding="utf-8")
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
