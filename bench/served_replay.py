"""Served replay throughput: requests/s through the router, side by side with its parts.

What `mlgate traffic replay` and the served canary tests do: V2 requests sent concurrently
(`serving.traffic.send`) to the router (`serving.router`), which forwards each to one of two
MLServer predictors (50/50) and logs request and response to the request-log sink
(`serving.logsink_server`, fsync per group commit). Measured in one run, on the same rows,
single-row requests (one request per application: the hardest case):
- logistic regression (the runtime's fast path): direct to one predictor, through the router
  with nothing logged, through the router with the sink (what `mlgate serve --env` runs), and
  router+sink at batch 10 (rows/s);
- gradient boosting (the served canary tests' second version): router+sink as served, and the
  baseline beside it: the same servers' runtime with the reason codes' former one scoring call
  per feature (`PER_FEATURE`, bench-only), the cause of ~1-2 requests/s under load.

The registered models are bench/serving.py's synthetic ones (no world to build: seconds).
Writes bench/results/served_replay.json.
Run: .venv/bin/python bench/served_replay.py [--n 400] [--n-tree 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mlgate.config import load_settings  # noqa: E402
from mlgate.serving.logsink import LogStore  # noqa: E402
from mlgate.serving.logsink_server import SinkServer  # noqa: E402
from mlgate.serving.router import Route, Router, RouterConfig  # noqa: E402
from mlgate.serving.server import serving  # noqa: E402
from mlgate.serving.traffic import send  # noqa: E402

MODEL = "credit_risk"
PER_FEATURE = """
import numpy as np

from mlgate.serving.runtime import CreditRiskRuntime
from mlgate.training import reason_codes


def per_feature(model, df):
    \"\"\"The former attribution: one scoring call for the row and one per feature.\"\"\"
    x = model.frame(df)
    full = model.logit(x)
    out = np.zeros((len(x), len(model.features)))
    for j, col in enumerate(model.features):
        swapped = x.copy()
        ref = model.reference_raw.get(col)
        swapped[col] = ref if col in model.numeric else [ref] * len(x)
        out[:, j] = full - model.logit(swapped)
    return out


reason_codes.substitution_contributions = per_feature


class PerFeatureRuntime(CreditRiskRuntime):
    \"\"\"The benchmark's baseline (never deployed).\"\"\"
"""


def _serving_bench() -> Any:
    """bench/serving.py's synthetic data and registration (one home for them)."""
    spec = importlib.util.spec_from_file_location("bench_serving", ROOT / "bench" / "serving.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure(url: str, rows: Any, *, concurrency: int, batch: int = 1) -> dict[str, Any]:
    t0 = time.perf_counter()
    rep = send(url, MODEL, rows, concurrency=concurrency, batch=batch)
    wall = time.perf_counter() - t0
    return {
        "requests": rep.sent,
        "rows": len(rows),
        "batch": batch,
        "concurrency": concurrency,
        "seconds": round(wall, 2),
        "req_per_s": round(rep.sent / wall, 1),
        "rows_per_s": round(len(rows) / wall, 1),
        "answered": rep.answered,
        "first_errors": rep.first_errors[:2],
    }


def routed(settings: Any, version: str, **kw: Any) -> Any:
    """Two predictors of `version` (50/50), started together."""
    from contextlib import ExitStack

    stack = ExitStack()
    a = stack.enter_context(serving(settings, MODEL, version, cutoff=0.15, timeout=600, **kw))
    b = stack.enter_context(serving(settings, MODEL, version, cutoff=0.15, timeout=600, **kw))
    routes = [Route(name="stable", url=a.url, weight=50), Route(name="canary", url=b.url,
              weight=50)]  # fmt: skip
    return stack, a, routes


def through_sink(
    tmp: Path, routes: list[Route], rows: Any, c: int, batches: tuple[int, ...] = (1,)
) -> list[dict[str, Any]]:
    """Router + sink in this process, as `serve_environment` runs them."""
    sink = SinkServer(LogStore(tmp), read_token=b"r" * 32, write_token=None, write_port=0,
                      read_port=0)  # fmt: skip
    sink.start_in_thread()
    try:
        cfg = RouterConfig(model=MODEL, namespace="bench", deployment="model", routes=routes,
                           sink_url=f"http://127.0.0.1:{sink.write_port}/")  # fmt: skip
        with Router(cfg) as router:
            send(router.url, MODEL, rows.head(20), concurrency=c)
            return [measure(router.url, rows, concurrency=c, batch=b) for b in batches]
    finally:
        sink.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="single-row requests, logistic regression")
    ap.add_argument("--n-tree", type=int, default=120, help="single-row requests, trees")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    sb = _serving_bench()
    tmp = Path(tempfile.mkdtemp(prefix="mlgate-bench-replay-"))
    os.environ["MLGATE_WORKSPACE"] = str(tmp / "ws")
    os.environ["MLGATE_CUTOFF"] = "0.15"
    df, y = sb.synthetic(5000)
    _m, lr_version, _w = sb.register(tmp, df, y)
    _m, tree_version, _w = sb.register(tmp, df, y, algorithm="hist_gradient_boosting")
    settings = load_settings()
    rows = df[sb.NUMERIC + sb.CATEGORICAL].tail(args.n).reset_index(drop=True)
    tree_rows = rows.head(args.n_tree)
    c = args.concurrency
    out: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "concurrency": c,
    }
    stack, a, routes = routed(settings, lr_version)
    with stack:
        send(a.url, MODEL, rows.head(20), concurrency=c)
        out["lr_direct"] = measure(a.url, rows, concurrency=c)
        cfg = RouterConfig(model=MODEL, namespace="bench", deployment="model", routes=routes)
        with Router(cfg) as router:
            send(router.url, MODEL, rows.head(20), concurrency=c)
            out["lr_router"] = measure(router.url, rows, concurrency=c)
        out["lr_router_sink"], out["lr_router_sink_batch10"] = through_sink(
            tmp / "log-lr", routes, rows, c, (1, 10)
        )
    stack, _a, routes = routed(settings, tree_version)
    with stack:
        (out["tree_router_sink"],) = through_sink(tmp / "log-tree", routes, tree_rows, c)
    (tmp / "baseline").mkdir()
    (tmp / "baseline" / "mlgate_bench_per_feature.py").write_text(PER_FEATURE)
    pythonpath = os.pathsep.join(
        p for p in (str(tmp / "baseline"), os.environ.get("PYTHONPATH")) if p
    )
    stack, _a, routes = routed(settings, tree_version,
                               implementation="mlgate_bench_per_feature.PerFeatureRuntime",
                               env={"PYTHONPATH": pythonpath})  # fmt: skip
    with stack:
        (out["tree_router_sink_baseline_per_feature"],) = through_sink(
            tmp / "log-base", routes, tree_rows, c
        )
    out["tree_speedup"] = round(
        out["tree_router_sink"]["req_per_s"]
        / out["tree_router_sink_baseline_per_feature"]["req_per_s"],
        2,
    )
    out["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    path = ROOT / "bench" / "results" / "served_replay.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
