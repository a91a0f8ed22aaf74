"""Serving benchmark: leanfit (batching on/off) against a naive FastAPI anchor and an echo ceiling.

Loopback only, bounded in time, load from ``wrk`` (Debian package) with a Lua script that
POSTs one single-row V2 request. Servers run one at a time, each in its own process:

* ``leanfit``        ``leanfit.serve.serve`` with batching (max_batch_size 64, max_delay_ms 2)
* ``leanfit-nobatch`` the same with ``max_batch_size=0`` (one model call per request, in a thread)
* ``anchor``         a minimal FastAPI app written below: pydantic request model, one ONNX
                     Runtime call per request on the event loop
* ``echo``           a Starlette app on the same stack as leanfit (uvicorn, httptools, uvloop) that
                     parses the same JSON and returns a constant: the HTTP + JSON ceiling

Models: ``light`` (digits MLP 64-512-512-10, tens of microseconds per row) and ``heavy``
(64-2048-2048-2048-10, over a millisecond per single-row call). The response cache is off
(``cache_size=0``): wrk repeats one body, and a cache would measure itself, not the model.

Usage::

    python benchmarks/serving.py                     # full run, appends to benchmarks/RESULTS.md
    python benchmarks/serving.py --duration 3 --repeats 1 --no-append   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "RESULTS.md"
VARIANTS = ("leanfit", "leanfit-nobatch", "anchor")
LUA = r"""
wrk.method = "POST"
local f = assert(io.open(os.getenv("LEANFIT_BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %d, \"duration_us\": %d, \"status_errors\": %d, \"socket_errors\": %d, " ..
    "\"p50_us\": %d, \"p99_us\": %d, \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


# ---------------------------------------------------------------------------------------------
# models (built with scikit-learn / skl2onnx, written as real leanfit artifacts)
# ---------------------------------------------------------------------------------------------
def build_models(workdir: Path) -> dict[str, Path]:
    import warnings

    import numpy as np
    import pandas as pd
    from onnx import TensorProto, helper, version_converter
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from leanfit.artifacts import Manifest, reference_statistics
    from leanfit.artifacts.export import merge_graphs, write_artifact
    from leanfit.schema import ColumnSpec

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target
    names = [f"p{i}" for i in range(64)]
    columns = [ColumnSpec(n, "numeric") for n in names]
    frame = pd.DataFrame(x, columns=names)
    pre = helper.make_model(
        helper.make_graph(
            [helper.make_node("Concat", names, ["features"], axis=1)],
            "raw_columns",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in names],
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 64])],
        ),
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    out = {}
    for name, hidden, epochs in (("light", (512, 512), 30), ("heavy", (2048, 2048, 2048), 2)):
        target = workdir / name / "model"
        if (target / "manifest.json").is_file():
            out[name] = target.parent
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=epochs, random_state=0).fit(x, y)
        net = convert_sklearn(
            mlp,
            initial_types=[("features", FloatTensorType([None, 64]))],
            options={id(mlp): {"zipmap": False}},
            target_opset={"": 18, "ai.onnx.ml": 3},
        )
        net = version_converter.convert_version(net, 18)  # skl2onnx picks the lowest opset that suffices
        for opset in net.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = 3  # ArrayFeatureExtractor is the same in ai.onnx.ml 1 and 3
        old = [o.name for o in net.graph.output]
        rename = {old[0]: "label", old[1]: "probabilities"}
        for node in net.graph.node:
            node.output[:] = [rename.get(o, o) for o in node.output]
        for o in net.graph.output:
            o.name = rename.get(o.name, o.name)
        pre.ir_version = net.ir_version = 9  # what this ONNX Runtime reads; merge_graphs keeps the larger
        graph = merge_graphs(pre, net)
        manifest = Manifest(
            name=name,
            task="classification",
            inputs=columns,
            outputs=[],
            classes=list(range(10)),
            family="mlp",
            params={"hidden": list(hidden)},
            reference=reference_statistics(frame, columns),
        )
        write_artifact(target, graph, manifest)
        out[name] = target.parent
    return out


def single_row_call_us(model_dir: Path) -> float:
    import numpy as np

    import leanfit

    predictor = leanfit.load(model_dir)
    feeds = {f"p{i}": np.full((1, 1), 0.5, np.float32) for i in range(64)}
    for _ in range(20):
        predictor.run(feeds)
    times = []
    for _ in range(200):
        t = time.perf_counter()
        predictor.run(feeds)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def request_body() -> bytes:
    values = [round((i * 7 % 17) / 16.0, 4) for i in range(64)]
    return json.dumps(
        {"id": "bench", "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": values}]}
    ).encode()


# ---------------------------------------------------------------------------------------------
# the anchor and the echo app (run in a subprocess via `serving.py _server ...`)
# ---------------------------------------------------------------------------------------------
def anchor_app(model_dir: str) -> Any:
    """A minimal FastAPI app: pydantic request model, one ONNX Runtime call per request."""
    import numpy as np
    import onnxruntime as ort
    from fastapi import FastAPI
    from pydantic import BaseModel

    class Tensor(BaseModel):
        name: str
        shape: list[int]
        datatype: str
        data: list[Any]

    class InferRequest(BaseModel):
        id: str | None = None
        inputs: list[Tensor]

    session = ort.InferenceSession(
        str(Path(model_dir) / "model" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    app = FastAPI()

    async def infer(model: str, request: InferRequest) -> dict[str, Any]:
        tensor = request.inputs[0]
        x = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
        label, proba = session.run(None, {n: x[:, j : j + 1] for j, n in enumerate(names)})
        return {
            "model_name": model,
            "id": request.id,
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": list(label.shape), "data": label.tolist()},
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": list(proba.shape),
                    "data": proba.ravel().tolist(),
                },
            ],
        }

    # This file uses postponed annotations; hand FastAPI the real classes (they are local here).
    infer.__annotations__ = {"model": str, "request": InferRequest, "return": dict[str, Any]}
    app.post("/v2/models/{model}/infer")(infer)

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    return app


def echo_app() -> Any:
    """Starlette on the same stack as leanfit: parse the same JSON, answer a constant."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    constant = json.dumps(
        {
            "model_name": "echo",
            "model_version": "1",
            "id": "bench",
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [1], "data": [3]},
                {"name": "probabilities", "datatype": "FP32", "shape": [1, 10], "data": [0.1] * 10},
            ],
        },
        separators=(",", ":"),
    ).encode()

    try:  # the same parser leanfit uses (orjson when installed)
        from orjson import loads
    except ImportError:
        loads = json.loads

    async def infer(request: Request) -> Response:
        loads(await request.body())
        return Response(constant, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    return Starlette(
        routes=[Route("/v2/models/{model}/infer", infer, methods=["POST"]), Route("/v2/health/ready", ready)]
    )


def run_server(kind: str, model_dir: str, port: int, access_log: bool) -> int:
    if kind == "leanfit":
        from leanfit.serve import serve

        return serve(
            [model_dir], port=port, cache_size=0, access_log=access_log, log_level="info", drain_timeout=2
        )
    if kind == "leanfit-nobatch":
        from leanfit.serve import serve

        return serve(
            [model_dir],
            port=port,
            cache_size=0,
            max_batch_size=0,
            access_log=access_log,
            log_level="info",
            drain_timeout=2,
        )
    import uvicorn

    app = anchor_app(model_dir) if kind == "anchor" else echo_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


# ---------------------------------------------------------------------------------------------
# driving wrk
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, kind: str, model_dir: Path | None, access_log: bool) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, __file__, "_server", kind, str(model_dir or ""), str(self.port)]
        args += ["--access-log"] if access_log else []
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{kind} server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(url: str, connections: int, duration: float, script: Path, body: Path) -> dict[str, float]:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    env = {**os.environ, "LEANFIT_BENCH_BODY": str(body)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    match = re.search(r"RESULT (\{.*\})", proc.stdout)
    if not match:
        raise RuntimeError(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50_us"] / 1000.0,
        "p99_ms": raw["p99_us"] / 1000.0,
        "errors": raw["status_errors"] + raw["socket_errors"],
        "requests": raw["requests"],
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "errors": int(sum(r["errors"] for r in runs)),
    }


def versions() -> str:
    names = [
        "leanfit",
        "onnxruntime",
        "starlette",
        "fastapi",
        "uvicorn",
        "uvloop",
        "httptools",
        "numpy",
        "pydantic",
    ]
    parts = []
    for n in names:
        try:
            parts.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{n} (not installed)")
    return ", ".join(parts)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def table(results: dict[str, Any], conns: list[int], call_us: dict[str, float]) -> list[str]:
    lines = [
        "| model | clients | server | req/s | p50 ms | p99 ms | errors | vs anchor | vs echo |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in results["models"]:
        for c in conns:
            anchor = results["models"][model]["anchor"][c]["rps"]
            echo = results["echo"][c]["rps"]
            for kind in (*VARIANTS, "echo"):
                r = results["echo"][c] if kind == "echo" else results["models"][model][kind][c]
                lines.append(
                    f"| {model} ({call_us[model]:.0f} µs/row call) | {c} | {kind} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {r['errors']} | {r['rps'] / anchor:.2f}x | {r['rps'] / echo:.0%} |"
                )
    return lines


def check_targets(results: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against this run's medians."""
    out = []

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    echo64 = results["echo"].get(64)
    for model, need in (("light", 1.2), ("heavy", 4.0)):
        if model not in results["models"]:
            continue
        runs = results["models"][model]
        if 64 in runs["leanfit"]:
            lf, anchor = runs["leanfit"][64], runs["anchor"][64]
            ratio = lf["rps"] / anchor["rps"]
            line = f"- {model}, 64 clients: {ratio:.2f}x the anchor's throughput (target >= {need}x: {mark(ratio >= need)})"
            if model == "light" and echo64:
                share = lf["rps"] / echo64["rps"]
                line += f", {share:.0%} of the echo ceiling (target >= 80%: {mark(share >= 0.8)})"
            line += (
                f"; p99 {lf['p99_ms']:.1f} ms vs the anchor's {anchor['p99_ms']:.1f} ms "
                f"({mark(lf['p99_ms'] < anchor['p99_ms'])})"
            )
            out.append(line)
        if 1 in runs["leanfit"]:
            p50 = runs["leanfit"][1]["p50_ms"] / runs["anchor"][1]["p50_ms"]
            out.append(
                f"- {model}, 1 client: p50 {p50:.2f}x the anchor's (target <= 1.2x: {mark(p50 <= 1.2)})"
            )
    errors = sum(r["errors"] for m in results["models"].values() for k in m.values() for r in k.values())
    errors += sum(r["errors"] for r in results["echo"].values())
    out.append(f"- errors across all leanfit, anchor and echo runs: {errors} (target 0: {mark(errors == 0)})")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="wrk runs per point (median reported)")
    parser.add_argument("--connections", default="1,8,64")
    parser.add_argument("--models", default="light,heavy")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "leanfit-bench")
    parser.add_argument(
        "--access-log", action="store_true", help="keep leanfit's JSON access log on (to /dev/null)"
    )
    parser.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    conns = [int(c) for c in args.connections.split(",")]
    models = args.models.split(",")
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = build_models(args.workdir)
    call_us = {m: single_row_call_us(paths[m]) for m in models}
    for m in models:
        print(f"{m}: single-row model call {call_us[m]:.0f} µs (median of 200)")
    script = args.workdir / "post.lua"
    script.write_text(LUA)
    body = args.workdir / "body.json"
    body.write_bytes(request_body())
    started = time.time()
    load_before = os.getloadavg()
    # Every server is up at once (idle ones cost nothing) and each round visits them all in a
    # rotated order, so background noise on a shared machine falls on every variant alike.
    targets: list[tuple[str, str, Server]] = []
    try:
        targets.append(("echo", "echo", Server("echo", None, False)))
        for model in models:
            for kind in VARIANTS:
                targets.append((model, kind, Server(kind, paths[model], args.access_log)))
        for model, _, server in targets:
            wrk(f"{server.url}/v2/models/{model}/infer", 8, 1.0, script, body)  # warm-up
        runs: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        for repeat in range(args.repeats):
            order = targets[repeat % len(targets) :] + targets[: repeat % len(targets)]
            for c in conns:
                for model, kind, server in order:
                    r = wrk(f"{server.url}/v2/models/{model}/infer", c, args.duration, script, body)
                    runs.setdefault((model, kind, c), []).append(r)
                    print(
                        f"  round {repeat + 1} {kind:16s} {model:6s} c={c:<3d} {r['rps']:9.0f} req/s  "
                        f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}",
                        flush=True,
                    )
    finally:
        for _, _, server in targets:
            server.stop()
    results: dict[str, Any] = {
        "echo": {c: summarise(runs[("echo", "echo", c)]) for c in conns},
        "models": {m: {k: {c: summarise(runs[(m, k, c)]) for c in conns} for k in VARIANTS} for m in models},
    }
    lines = table(results, conns, call_us)
    verdicts = check_targets(results)
    print("\n".join(lines + [""] + verdicts))
    command = "python benchmarks/serving.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.no_append:
        section = [
            "",
            f"## Serving: leanfit vs naive FastAPI vs echo ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
            "",
            f"- command: `{command.strip()}` ({time.time() - started:.0f} s)",
            f"- machine: {cpu_model()}, {os.cpu_count()} cores (server and wrk share them), Linux {platform.release()}; "
            f"1-min load average {load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at the end "
            "(other jobs share this machine; the rotating order spreads their noise over all servers)",
            f"- load: wrk -t1, single-row V2 JSON request (one FP32 [1, 64] matrix), {args.duration:g} s per run, "
            f"median of {args.repeats} round(s) after a 1 s warm-up; all servers up at once, visited in a rotating order",
            f"- leanfit: max_batch_size 64, max_delay_ms 2, adaptive policy, cache off, access log "
            f"{'on (to /dev/null)' if args.access_log else 'off'}, ONNX Runtime intra-op threads = cores - 1 "
            f"(leanfit's default: {max(1, (os.cpu_count() or 2) - 1)} here); the anchor keeps ONNX Runtime's "
            "default (all cores); the echo app parses with the same JSON library as leanfit (orjson)",
            f"- versions: Python {platform.python_version()}, {versions()}",
            "",
            *lines,
            "",
            "Targets of the serving issue, checked on the medians above:",
            "",
            *verdicts,
            "",
        ]
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n", encoding="utf-8")
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(section))
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_server":
        sys.exit(run_server(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--access-log" in sys.argv))
    sys.exit(main())
