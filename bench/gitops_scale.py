"""GitOps at scale: `mlgate status` and `mlgate manifests validate` for many models x 3 envs.

For N models (x dev/stage/prod) a GitOps repository is built with real overlays (one commit
per environment sweep, then a canary in prod for every model). Measured in one process run:
- status: `read_status` (one ls-tree + one cat-file --batch + one log) next to the naive
  baseline, one `git show` per release file (3N subprocesses);
- validate: `validate_tree` over all overlays (kubectl kustomize per overlay, strict schemas,
  Seldon rules, pod security, promtool) without checkov.
Status runs for 1, 100, 1000 models; validate for 1, 10, 100 (it renders each overlay with
kubectl, ~0.1-0.2 s each: 1000 models would take minutes, and grows the same way).
Writes bench/results/gitops_scale.json.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.gitops.overlay import ENVS, Release, write_release
from mlgate.gitops.repo import GitopsRepo, run_git
from mlgate.gitops.status import read_status
from mlgate.gitops.validate import validate_tree

STATUS_SIZES = (1, 100, 1000)
VALIDATE_SIZES = (1, 10, 100)
IMAGE = "registry.example/credit@sha256:" + "ab" * 32
CANARY = "registry.example/credit@sha256:" + "cd" * 32


def build(root: Path, n: int) -> PlatformSettings:
    settings = PlatformSettings(workspace=str(root / f"ws-{n}"))
    repo = GitopsRepo.open(settings)
    for env in ENVS:
        for i in range(n):
            write_release(
                repo.work,
                Release(model=f"model_{i:04d}", env=env, stable_version="1", stable_image=IMAGE),
            )
        run_git(["add", "-A"], repo.work)
        run_git(["commit", "-q", "-m", f"{n} models into {env}"], repo.work)
    for i in range(n):
        write_release(
            repo.work,
            Release(
                model=f"model_{i:04d}",
                env="prod",
                stable_version="1",
                stable_image=IMAGE,
                canary_version="2",
                canary_image=CANARY,
                canary_weight=10,
            ),
        )
    run_git(["add", "-A"], repo.work)
    run_git(["commit", "-q", "-m", "canaries"], repo.work)
    run_git(["push", "-q", "origin", "HEAD:refs/heads/main"], repo.work)
    return settings


def naive_status(settings: PlatformSettings, n: int) -> int:
    bare = GitopsRepo.locate(settings).remote
    found = 0
    for i in range(n):
        for env in ENVS:
            path = f"manifests/models/model_{i:04d}/{env}/release.yaml"
            out = subprocess.run(
                ["git", f"--git-dir={bare}", "show", f"main:{path}"], capture_output=True, text=True
            ).stdout
            found += bool(out)
    return found


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(best, 4)


def main() -> None:
    results: dict[str, object] = {
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "status": [],
        "validate": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in STATUS_SIZES:
            settings = build(root, n)
            st = read_status(settings)
            assert len(st.models) == n and all(len(m.envs) == 3 for m in st.models)
            t_status = timed(lambda s=settings: read_status(s))
            t_naive = timed(lambda s=settings, n=n: naive_status(s, n), repeat=1)
            row = {"models": n, "envs": 3 * n, "status_s": t_status, "naive_git_show_s": t_naive}
            results["status"].append(row)  # type: ignore[union-attr]
            print(json.dumps(row))
            if n in VALIDATE_SIZES:
                work = GitopsRepo.locate(settings).work
                crd = settings.crd_schema_dir()
                rep = validate_tree(work, crd)
                assert rep.ok, rep.all_problems()[:3]
                t_val = timed(lambda w=work, c=crd: validate_tree(w, c), repeat=1)
                vrow = {
                    "models": n,
                    "overlays": 3 * n,
                    "validate_s": t_val,
                    "per_overlay_s": round(t_val / (3 * n), 4),
                }
                results["validate"].append(vrow)  # type: ignore[union-attr]
                print(json.dumps(vrow))
        extra = [n for n in VALIDATE_SIZES if n not in STATUS_SIZES]
        for n in extra:
            settings = build(root, n)
            work = GitopsRepo.locate(settings).work
            crd = settings.crd_schema_dir()
            t_val = timed(lambda w=work, c=crd: validate_tree(w, c), repeat=1)
            vrow = {
                "models": n,
                "overlays": 3 * n,
                "validate_s": t_val,
                "per_overlay_s": round(t_val / (3 * n), 4),
            }
            results["validate"].append(vrow)  # type: ignore[union-attr]
            print(json.dumps(vrow))
    out = Path(__file__).parent / "results" / "gitops_scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
