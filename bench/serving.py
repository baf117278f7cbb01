"""Serving benchmark: the mlgate runtime in MLServer vs its peers, side by side in one run.

Measured on loopback, sequential single-row requests (what a credit decision is) and batches:
- floor: in-process `predict_proba` of the same calibrated model (no server at all);
- mlgate runtime in MLServer (the image's server, run locally), via requests and tritonclient;
- the pushed image's server itself (read-only, non-root), with --image (builds it if needed);
- MLServer's stock sklearn runtime on a joblib export of the same fitted model;
- seldon-core 1.18.2's Python microservice (own venv .venv-tools/seldon: it needs numpy<2 and
  protobuf<4) serving the same logistic-regression coefficients re-created there in numpy.

Target (issues 5 and 13): with the serving contract switched on, p99 under 10 ms for single
rows and throughput at least seldon-core's. The runtime is measured twice side by side: as
served (contract on) and as a bench-only subclass with row validation off, so the difference
is the contract's cost. The limits section sends a 200,000-row request (refused with 413 at the
door) and a 10,000-row one (the row cap, scored), reading the server's RSS before and after.

The seldon-core peer's venv is created when missing (python3.11 -m venv + pip install), so a
fresh clone measures it instead of reporting an error.
Writes bench/results/serving.json.  Run: .venv/bin/python bench/serving.py [--n 2000] [--image]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mlgate.config import load_settings  # noqa: E402
from mlgate.serving import client  # noqa: E402
from mlgate.serving.server import free_port, serving, stop, wait_ready  # noqa: E402
from mlgate.training.fastpath import LinearFastPath  # noqa: E402

NUMERIC = ["income", "debt_to_income", "utilization", "months_on_book"]
CATEGORICAL = ["loan_purpose"]
# The bench dataset's plausible ranges: the serving contract checks every request against them.
RANGES = {
    "income": {"min": 0, "min_exclusive": True, "max": 1e8},
    "debt_to_income": {"min": 0, "max": 100},
    "utilization": {"min": 0, "max": 100},
    "months_on_book": {"min": 0, "max": 1200},
}
SELDON_VENV = ROOT / ".venv-tools" / "seldon"
SELDON_PINS = ["seldon-core==1.18.2", "setuptools<81", "numpy<2"]
UNCHECKED = """
from mlgate.serving.runtime import CreditRiskRuntime


class UncheckedRuntime(CreditRiskRuntime):
    \"\"\"The benchmark's baseline: the runtime with row validation off (never deployed).\"\"\"

    validate_rows = False
"""


def synthetic(n: int, seed: int = 11) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "applicant_id": [f"A{i:06d}" for i in range(n)],
            "income": rng.lognormal(10.5, 0.4, n),
            "debt_to_income": rng.uniform(0, 0.8, n),
            "utilization": rng.uniform(0, 1, n),
            "months_on_book": rng.integers(1, 240, n).astype(float),
            "loan_purpose": rng.choice(["car", "home", "debt_consolidation", "other"], n),
        }
    )
    logit = (
        -2.5
        + 3 * df["debt_to_income"]
        + 1.5 * df["utilization"]
        - 0.3 * (np.log(df["income"]) - 10.5)
        - 0.002 * df["months_on_book"]
        + 0.5 * (df["loan_purpose"] == "debt_consolidation")
    )
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return df, y


def stats(lat_s: list[float], wall: float) -> dict[str, float]:
    a = np.asarray(lat_s) * 1000
    return {
        "n": len(a),
        "req_per_s": round(len(a) / wall, 1),
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def loop(fn: Callable[[int], Any], n: int, warmup: int = 50) -> dict[str, float]:
    for i in range(warmup):
        fn(i)
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        lat.append(time.perf_counter() - t)
    return stats(lat, time.perf_counter() - t0)


def register(
    ws: Path, df: pd.DataFrame, y: np.ndarray, algorithm: str = "logistic_regression"
) -> tuple[Any, str, Any]:
    import mlflow
    from mlflow.models import infer_signature

    from mlgate.training.model_config import ModelConfig
    from mlgate.training.pipeline import fit_pd_model
    from mlgate.training.pyfunc import CreditRiskModel

    cfg = ModelConfig(name="credit_risk", dataset="synthetic.yaml", algorithm=algorithm)
    cut = int(len(df) * 0.7)
    pd_model = fit_pd_model(cfg, NUMERIC, CATEGORICAL, df[:cut], y[:cut], df[cut:], y[cut:])
    wrapped = CreditRiskModel(pd_model, model_name="credit_risk", cutoff=0.15)
    os.environ["MLGATE_MLFLOW__TRACKING_URI"] = f"sqlite:///{ws / 'mlflow.db'}"
    mlflow.set_tracking_uri(os.environ["MLGATE_MLFLOW__TRACKING_URI"])
    mlflow.set_experiment("bench")
    x = df[NUMERIC + CATEGORICAL]
    dataset = {
        "name": "bench", "path": "bench.parquet", "entity_key": "applicant_id",
        "event_timestamp": "ts", "label": "y", "numeric_features": NUMERIC,
        "categorical_features": CATEGORICAL, "validation": {"ranges": RANGES},
    }  # fmt: skip
    with mlflow.start_run():
        mlflow.set_tags({"data_fingerprint": "sha256:bench", "git_commit": "bench"})
        mlflow.log_dict(dataset, "config/dataset_config.json")  # what serving_ranges reads
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapped,
            signature=infer_signature(x.head(), wrapped.predict(None, x.head())),
            registered_model_name="credit_risk",
        )
    return pd_model, str(info.registered_model_version), wrapped


def bench_server(url: str, model: str, rows: pd.DataFrame, n: int, batch: pd.DataFrame) -> dict:
    import tritonclient.http as httpclient

    session = requests.Session()
    bodies = [client.v2_request(rows.iloc[[i % len(rows)]]) for i in range(len(rows))]

    def one(i: int) -> None:
        r = session.post(f"{url}/v2/models/{model}/infer", json=bodies[i % len(bodies)], timeout=10)
        r.raise_for_status()

    out: dict[str, Any] = {"single_row_requests": loop(one, n)}
    host = url.removeprefix("http://")
    triton = httpclient.InferenceServerClient(url=host)

    def tri_inputs(i: int) -> list[Any]:
        row = rows.iloc[[i % len(rows)]]
        inputs = []
        for col in rows.columns:
            if row[col].dtype.kind in "fiu":
                t = httpclient.InferInput(col, [1, 1], "FP64")
                t.set_data_from_numpy(row[col].to_numpy("float64").reshape(1, 1), binary_data=False)
            else:
                t = httpclient.InferInput(col, [1, 1], "BYTES")
                t.set_data_from_numpy(
                    row[col].astype(str).to_numpy(object).reshape(1, 1), binary_data=False
                )
            inputs.append(t)
        return inputs

    prepared = [tri_inputs(i) for i in range(min(len(rows), 200))]
    outs = [httpclient.InferRequestedOutput("pd", binary_data=False)]

    def one_triton(i: int) -> None:
        triton.infer(
            model, prepared[i % len(prepared)], outputs=outs, parameters={"content_type": "pd"}
        )

    out["single_row_tritonclient"] = loop(one_triton, n)
    body = client.v2_request(batch)
    t0 = time.perf_counter()
    reps = 10
    for _ in range(reps):
        session.post(f"{url}/v2/models/{model}/infer", json=body, timeout=60).raise_for_status()
    wall = time.perf_counter() - t0
    out["batch"] = {
        "rows": len(batch),
        "requests": reps,
        "rows_per_s": round(reps * len(batch) / wall, 1),
    }
    return out


def paired(on: str, off: str, rows: pd.DataFrame, n: int, batch: pd.DataFrame) -> dict:
    """Contract on vs off, request by request alternately, so both see the same machine load."""
    session = requests.Session()
    bodies = [client.v2_request(rows.iloc[[i]]) for i in range(min(len(rows), 200))]
    lat: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(n + 50):
        for name, url in (("on", on), ("off", off)):
            t = time.perf_counter()
            session.post(f"{url}/v2/models/credit_risk/infer", json=bodies[i % len(bodies)],
                         timeout=10).raise_for_status()  # fmt: skip
            if i >= 50:  # warm-up
                lat[name].append(time.perf_counter() - t)
    out: dict[str, Any] = {k: stats(v, sum(v)) for k, v in lat.items()}
    body = client.v2_request(batch)
    for name, url in (("on", on), ("off", off), ("on", on), ("off", off)):
        t0 = time.perf_counter()
        for _ in range(5):
            session.post(f"{url}/v2/models/credit_risk/infer", json=body, timeout=60)
        rate = 5 * len(batch) / (time.perf_counter() - t0)
        out[f"batch_rows_per_s_{name}"] = max(out.get(f"batch_rows_per_s_{name}", 0), round(rate))
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def limits(url: str, model: str, pid: int, rows: pd.DataFrame) -> dict[str, Any]:
    """A 200,000-row request (refused at the door) and a 10,000-row one (the cap), with RSS."""
    session = requests.Session()
    out: dict[str, Any] = {}
    for name, n in (("rows_200000", 200_000), ("rows_10000", 10_000)):
        frame = rows.iloc[np.arange(n) % len(rows)].reset_index(drop=True)
        body = json.dumps(client.v2_request(frame)).encode()
        before = _rss_mb(pid)
        t0 = time.perf_counter()
        r = session.post(f"{url}/v2/models/{model}/infer", data=body, timeout=300,
                         headers={"Content-Type": "application/json"})  # fmt: skip
        out[name] = {
            "body_mb": round(len(body) / 2**20, 1),
            "status": r.status_code,
            "seconds": round(time.perf_counter() - t0, 3),
            "rss_before_mb": before,
            "rss_after_mb": _rss_mb(pid),
        }
    return out


def stock_sklearn(tmp: Path, pd_model: Any, rows: pd.DataFrame, n: int) -> dict:
    import joblib

    repo = tmp / "stock"
    (repo / "credit_risk").mkdir(parents=True)
    joblib.dump(pd_model.calibrator, repo / "credit_risk" / "model.joblib")
    port, grpc = free_port(), free_port()
    (repo / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": grpc, "parallel_workers": 0,
        "metrics_endpoint": None}))  # fmt: skip
    (repo / "credit_risk" / "model-settings.json").write_text(json.dumps({
        "name": "credit_risk", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "content_type": "pd"}}))  # fmt: skip
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlserver"), "start", str(repo)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=repo,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, "credit_risk", proc, 90)
        session = requests.Session()
        bodies = []
        for i in range(min(len(rows), 200)):
            b = client.v2_request(rows.iloc[[i]])
            b["outputs"] = [{"name": "predict_proba"}]
            bodies.append(b)
        probe = session.post(f"{url}/v2/models/credit_risk/infer", json=bodies[0], timeout=10)
        probe.raise_for_status()
        p = float(np.asarray(probe.json()["outputs"][0]["data"]).reshape(-1, 2)[0, 1])
        expect = float(pd_model.predict_pd(rows.iloc[[0]])[0])

        def one(i: int) -> None:
            session.post(f"{url}/v2/models/credit_risk/infer", json=bodies[i % len(bodies)],
                         timeout=10).raise_for_status()  # fmt: skip

        return {"single_row_requests": loop(one, n), "pd_matches": abs(p - expect) < 1e-9}
    finally:
        stop(proc)


SELDON_MODEL = textwrap.dedent(
    '''
    import json, numpy as np

    class LRModel:
        """The same logistic regression + Platt map, re-created from exported coefficients."""

        def __init__(self):
            with open("coef.json") as fh:
                c = json.load(fh)
            self.num = c["numeric"]; self.cat = c["categorical"]
            self.median = np.array(c["median"]); self.mean = np.array(c["mean"])
            self.scale = np.array(c["scale"]); self.cats = c["categories"]
            self.coef = np.array(c["coef"]); self.intercept = c["intercept"]
            self.a = c["a"]; self.b = c["b"]

        def predict(self, X, features_names=None, **kwargs):
            X = np.asarray(X, dtype=object)
            idx = {n: i for i, n in enumerate(features_names)}
            num = np.array([[float(r[idx[n]]) if r[idx[n]] not in (None, "") else np.nan
                             for n in self.num] for r in X], dtype=float)
            num = np.where(np.isnan(num), self.median, num)
            parts = [(num - self.mean) / self.scale]
            for j, n in enumerate(self.cat):
                col = [str(r[idx[n]]) for r in X]
                parts.append(np.array([[1.0 if v == k else 0.0 for k in self.cats[j]] for v in col]))
            z = np.hstack(parts) @ self.coef + self.intercept
            return 1.0 / (1.0 + np.exp(self.a * z + self.b))
    '''
)


def export_coefficients(pd_model: Any) -> dict[str, Any]:
    pre = pd_model.base.named_steps["pre"]
    clf = pd_model.base.named_steps["clf"]
    num = pre.named_transformers_["num"]
    imputer = num.named_steps.get("impute") or num.steps[0][1]
    scaler = num.named_steps.get("scale") or num.steps[-1][1]
    onehot = pre.named_transformers_["cat"].named_steps["onehot"]
    cal = pd_model.calibrator.calibrated_classifiers_[0].calibrators[0]
    return {
        "numeric": list(pd_model.numeric), "categorical": list(pd_model.categorical),
        "median": imputer.statistics_.tolist(), "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(), "categories": [list(map(str, c)) for c in onehot.categories_],
        "coef": clf.coef_[0].tolist(), "intercept": float(clf.intercept_[0]),
        "a": float(cal.a_), "b": float(cal.b_),
    }  # fmt: skip


def ensure_seldon_venv() -> str | None:
    """Create the seldon-core peer's own venv when missing; an error message, or None.

    It needs numpy<2 and protobuf<4, which the project's environment cannot hold, hence a venv
    of its own (created from python3.11, as the project's).
    """
    exe = SELDON_VENV / "bin" / "seldon-core-microservice"
    if exe.exists():
        return None
    import shutil

    python = shutil.which("python3.11") or sys.executable
    print(f"creating {SELDON_VENV} ({' '.join(SELDON_PINS)}) ...", file=sys.stderr)
    steps = [
        [python, "-m", "venv", "--clear", str(SELDON_VENV)],
        [str(SELDON_VENV / "bin" / "pip"), "install", "--quiet", *SELDON_PINS],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-800:]}"
    return None if exe.exists() else f"{exe} missing after installing {SELDON_PINS}"


def seldon(tmp: Path, pd_model: Any, rows: pd.DataFrame, n: int) -> dict:
    exe = SELDON_VENV / "bin" / "seldon-core-microservice"
    error = ensure_seldon_venv()
    if error:
        return {"error": error}
    d = tmp / "seldon"
    d.mkdir()
    (d / "LRModel.py").write_text(SELDON_MODEL)
    (d / "coef.json").write_text(json.dumps(export_coefficients(pd_model)))
    port = free_port()
    proc = subprocess.Popen(
        [str(exe), "LRModel", "--service-type", "MODEL", "--http-port", str(port),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), "--workers", "1"],
        cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/v1.0/predictions"
        names = NUMERIC + CATEGORICAL
        bodies = [{"data": {"names": names, "ndarray": rows[names].iloc[[i]].astype(object).values.tolist()}}
                  for i in range(min(len(rows), 200))]  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                r = requests.post(url, json=bodies[0], timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                return {"error": "seldon-core microservice did not start"}
            time.sleep(0.3)
        p = float(np.asarray(r.json()["data"]["ndarray"]).reshape(-1)[0])
        expect = float(pd_model.predict_pd(rows.iloc[[0]])[0])
        session = requests.Session()

        def one(i: int) -> None:
            session.post(url, json=bodies[i % len(bodies)], timeout=10).raise_for_status()

        return {"single_row_requests": loop(one, n), "pd_matches": abs(p - expect) < 1e-6}
    finally:
        # The microservice forks its gunicorn server: stop the whole process group.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        stop(proc)


def image_server(
    settings: Any, version: str, rows: pd.DataFrame, n: int, batch: pd.DataFrame
) -> dict:
    from mlgate.config import RegistrySettings
    from mlgate.packaging import registry
    from mlgate.packaging.build import build_model_image
    from mlgate.packaging.container_run import run_image

    s = settings.model_copy(
        update={"registry": RegistrySettings(address=f"127.0.0.1:{free_port()}")}
    )
    registry.up(s)
    try:
        t0 = time.monotonic()
        rec = build_model_image(s, "credit_risk", version)
        built = time.monotonic() - t0
        port = free_port()
        env = {"MLGATE_CUTOFF": "0.15", "MLSERVER_HTTP_PORT": str(port),
               "MLSERVER_GRPC_PORT": str(free_port()), "MLSERVER_HOST": "127.0.0.1",
               "MLSERVER_METRICS_PORT": str(free_port())}  # fmt: skip
        with run_image(s, f"{rec.repository}@{rec.digest}", env=env):
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, "credit_risk", None, 120)
            out = bench_server(url, "credit_risk", rows, n, batch)
        out["build_seconds"] = round(built, 1)
        out["reference"] = rec.reference
        return out
    finally:
        registry.down(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="single-row requests per peer")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--image", action="store_true", help="also build + run the image's server")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlgate-bench-"))
    os.environ["MLGATE_WORKSPACE"] = str(tmp / "ws")
    os.environ["MLGATE_CUTOFF"] = "0.15"
    df, y = synthetic(20000)
    pd_model, version, wrapped = register(tmp, df, y)
    settings = load_settings()
    rows = df[NUMERIC + CATEGORICAL].tail(500).reset_index(drop=True)
    batch = df[NUMERIC + CATEGORICAL].head(args.batch)
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "n_single": args.n,
    }
    frames = [rows.iloc[[i]] for i in range(len(rows))]
    x = pd_model.frame(rows)
    xrows = [x.iloc[[i]] for i in range(len(x))]
    results["floor_in_process_predict_proba"] = loop(
        lambda i: pd_model.calibrator.predict_proba(xrows[i % len(xrows)]), args.n
    )
    results["in_process_predict_pd_and_reason_codes"] = loop(
        lambda i: (wrapped.predict_pd(frames[i % len(frames)]), wrapped.reason_codes(frames[i % len(frames)])),
        args.n,
    )  # fmt: skip
    fast = LinearFastPath.from_model(pd_model)  # what the runtime scores LR models with
    assert fast is not None
    cols = [{c: frames[i][c].tolist() for c in frames[i].columns} for i in range(len(frames))]
    results["in_process_fastpath_pd_and_reason_codes"] = loop(
        lambda i: fast.reason_codes(fast.score(cols[i % len(cols)])), args.n
    )
    t0 = time.perf_counter()
    pd_model.predict_pd(batch)
    results["floor_batch_rows_per_s"] = round(len(batch) / (time.perf_counter() - t0), 1)
    from mlgate.serving.contract import check_rows, feature_rules
    from mlgate.serving.runtime import read_ranges

    rules = feature_rules(pd_model, read_ranges({"ranges": RANGES}))
    results["in_process_contract_check_single_row"] = loop(
        lambda i: check_rows(cols[i % len(cols)], rules, 0.25), args.n
    )
    with serving(settings, "credit_risk", version, cutoff=0.15) as srv:
        results["mlgate_runtime_mlserver"] = bench_server(
            srv.url, "credit_risk", rows, args.n, batch
        )
        results["limits"] = limits(srv.url, "credit_risk", srv.pid, rows)
    (tmp / "unchecked").mkdir()
    (tmp / "unchecked" / "mlgate_bench_unchecked.py").write_text(UNCHECKED)
    pythonpath = os.pathsep.join(
        p for p in (str(tmp / "unchecked"), os.environ.get("PYTHONPATH")) if p
    )
    with serving(
        settings, "credit_risk", version, cutoff=0.15,
        implementation="mlgate_bench_unchecked.UncheckedRuntime", env={"PYTHONPATH": pythonpath},
    ) as off, serving(settings, "credit_risk", version, cutoff=0.15) as on:  # fmt: skip
        results["mlgate_runtime_mlserver_validation_off"] = bench_server(
            off.url, "credit_risk", rows, args.n, batch
        )
        results["validation_on_off_interleaved"] = paired(on.url, off.url, rows, args.n, batch)
    results["mlserver_stock_sklearn_joblib"] = stock_sklearn(tmp, pd_model, rows, args.n)
    results["seldon_core_1_18_2_microservice"] = seldon(tmp, pd_model, rows, args.n)
    if args.image:
        results["mlgate_image_server"] = image_server(settings, version, rows, args.n, batch)
    mine = results["mlgate_runtime_mlserver"]["single_row_requests"]
    pair = results["validation_on_off_interleaved"]
    results["validation_cost"] = {  # from the interleaved run: same load on both sides
        "single_row_mean_ms": round(pair["on"]["mean_ms"] - pair["off"]["mean_ms"], 3),
        "single_row_p50_ms": round(pair["on"]["p50_ms"] - pair["off"]["p50_ms"], 3),
        "single_row_p99_ms": round(pair["on"]["p99_ms"] - pair["off"]["p99_ms"], 3),
        "batch_rows_per_s_ratio": round(
            pair["batch_rows_per_s_on"] / pair["batch_rows_per_s_off"], 3
        ),
        "in_process_check_single_row_ms": results["in_process_contract_check_single_row"][
            "mean_ms"
        ],
    }
    results["load_average"] = [round(v, 2) for v in os.getloadavg()]
    peer = results["seldon_core_1_18_2_microservice"].get("single_row_requests", {})
    results["targets"] = {
        "p99_under_10ms": mine["p99_ms"] < 10,
        "throughput_at_least_seldon": bool(peer) and mine["req_per_s"] >= peer["req_per_s"],
    }
    out = ROOT / "bench" / "results" / "serving.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
