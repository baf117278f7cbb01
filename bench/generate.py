"""Benchmark: generate the synthetic credit world (target: 1M applications in < 60 s, 2 cores).

Runs 100k and 1M applications in one process (the 100k run is the scaling reference), records
wall time per phase, rows per table and peak memory, and writes bench/results/generate.json.
Run: .venv/bin/python bench/generate.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from mlgate.data.world import WorldSpec, generate_world

TARGET_SECONDS = 60.0
RESULTS = Path(__file__).resolve().parent / "results" / "generate.json"


def run(n: int, folder: Path) -> dict[str, object]:
    phases: list[tuple[str, float]] = []
    t0 = time.perf_counter()

    def progress(msg: str, _frac: float) -> None:
        phases.append((msg, time.perf_counter() - t0))

    manifest = generate_world(WorldSpec(n_applications=n), folder / f"world-{n}", progress)
    total = time.perf_counter() - t0
    steps = {
        name: round(end - start, 3)
        for (name, start), (_, end) in zip(phases, phases[1:], strict=False)
    }
    return {
        "n_applications": n,
        "seconds": round(total, 2),
        "applications_per_second": round(n / total),
        "phases_seconds": steps,
        "rows": {k: v.rows for k, v in manifest.tables.items()},
        "bytes_on_disk": sum(p.stat().st_size for p in (folder / f"world-{n}").iterdir()),
        "default_rate_observed": manifest.default_rate_observed,
        "approval_rate_observed": manifest.approval_rate_observed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run(100_000, Path(tmp)), run(args.n, Path(tmp))]
    big = runs[-1]
    result = {
        "benchmark": "world generation",
        "target": f"{args.n:,} applications in < {TARGET_SECONDS:.0f} s",
        "met": float(big["seconds"]) < TARGET_SECONDS,  # type: ignore[arg-type]
        "runs": runs,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
