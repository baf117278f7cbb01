"""Benchmark: train + evaluate + log/register time for 100k and 1M applications.

For each size: generate the synthetic world into a scratch workspace, build the training set
through Feast (approved, matured), then `train_on_frame` (out-of-time split, fit, calibrate,
evaluate, model card, MLflow run + registration on the embedded SQLite default).
Baseline, side by side in the same process on the same rows: the bare sklearn pipeline fit
(`build_pipeline(...).fit` on the training window, nothing else), i.e. what the platform's
tracking, calibration, evaluation and lineage add on top of fitting.

    .venv/bin/python bench/train.py [--sizes 100000 1000000] [--algorithms logistic_regression]

Writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from mlgate.config import load_settings
from mlgate.data.sources import credit_world_config
from mlgate.data.world import WorldSpec, generate_world
from mlgate.features.training_set import build_training_set
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.pipeline import build_pipeline, native_threads, prepare_frame
from mlgate.training.split import out_of_time_split
from mlgate.training.train import dataset_fingerprint, train_on_frame

OUT = Path(__file__).parent / "results" / "train.json"


def bench_size(n: int, algorithms: list[str]) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"mlgate-bench-train-{n}-"))
    try:
        settings = load_settings(workspace=str(root / "ws"))
        world = settings.ws().data_dir / "world"
        t = time.perf_counter()
        generate_world(WorldSpec(n_applications=n), world)
        gen_s = time.perf_counter() - t
        dataset = credit_world_config(world)
        t = time.perf_counter()
        training_set = build_training_set(settings, dataset)
        build_s = time.perf_counter() - t
        data_fp = dataset_fingerprint(dataset)
        rows: dict = {
            "applications": n,
            "training_rows": len(training_set),
            "generate_world_s": round(gen_s, 2),
            "feast_training_set_s": round(build_s, 2),
            "algorithms": {},
        }
        for algo in algorithms:
            cfg = load_model_config(DEFAULT_MODEL_CONFIG).model_copy(
                update={"algorithm": algo, "params": {}}
            )
            # Baseline: the bare sklearn pipeline fit on the same training window.
            split = out_of_time_split(
                training_set, dataset.event_timestamp, dataset.label, cfg.split
            )
            x = prepare_frame(split.train, dataset.numeric_features, dataset.categorical_features)
            t = time.perf_counter()
            with native_threads():
                build_pipeline(cfg, dataset.numeric_features, dataset.categorical_features).fit(
                    x, split.train[dataset.label].astype(int)
                )
            baseline_s = time.perf_counter() - t
            t = time.perf_counter()
            result = train_on_frame(settings, cfg, dataset, training_set, data_fingerprint=data_fp)
            total_s = time.perf_counter() - t
            rows["algorithms"][algo] = {
                "baseline_bare_sklearn_fit_s": round(baseline_s, 2),
                "mlgate_train_evaluate_log_s": round(total_s, 2),
                "breakdown_s": {k: round(v, 2) for k, v in result.seconds.items()},
                "holdout_auc": round(result.metrics.auc, 4),
                "holdout_rows": result.metrics.n,
            }
            print(json.dumps({"n": n, "algorithm": algo, **rows["algorithms"][algo]}), flush=True)
        rows["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return rows
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument(
        "--algorithms", nargs="+", default=["logistic_regression", "hist_gradient_boosting"]
    )
    args = ap.parse_args()
    results = {
        "benchmark": "train",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "baseline": "bare sklearn pipeline fit on the training window (no calibration, "
        "evaluation, model card or MLflow)",
        "sizes": [bench_size(n, args.algorithms) for n in args.sizes],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(OUT.read_text()) if OUT.is_file() else {}
    by_n = {s["applications"]: s for s in previous.get("sizes", [])}
    by_n.update({s["applications"]: s for s in results["sizes"]})
    results["sizes"] = [by_n[k] for k in sorted(by_n)]
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
