"""GitOps at scale: `mlgate status` and `mlgate manifests validate` for many models x 3 envs.

For N models (x dev/stage/prod) a GitOps repository is built with real overlays (one commit
per environment sweep, then a canary in prod for every model). Measured in one process run:
- status: `read_status` (one ls-tree + one cat-file --batch + one log) next to the naive
  baseline, one `git show` per release file (3N subprocesses);
- validate: `validate_tree` over all overlays (kubectl kustomize per overlay, strict schemas,
  Seldon rules, pod security, promtool) without checkov.
Status runs for 1, 100, 1000 models; validate for 1, 10, 100 (it renders each overlay with
kubectl, ~0.1-0.2 s each: 1000 models would take minutes, and grows the same way).
- the pull-request check at 1000 models x 3 envs: a PR that changes one overlay's
  release.yaml, validated with `--changed-since` (the library call, and the whole
  `mlgate manifests validate --changed-since` command as CI runs it) next to the full
  validation of every overlay, in the same run. Target: the one-overlay PR under 10 s.
Writes bench/results/gitops_scale.json.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.gitops.changed import VALIDATOR_SOURCE, changed_targets
from mlgate.gitops.overlay import ENVS, Release, write_release
from mlgate.gitops.repo import GitopsRepo, run_git
from mlgate.gitops.status import read_status
from mlgate.gitops.validate import find_targets, validate_tree

STATUS_SIZES = (1, 100, 1000)
VALIDATE_SIZES = (1, 10, 100)
PR_CHECK_SIZE = 1000
PR_CHECK_TARGET_S = 10.0
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


def cpu_s() -> float:
    """CPU seconds of this process and its finished children (kubectl, git, the CLI): on a
    shared, loaded machine wall time says more about the neighbours than about mlgate."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pr_check(
    settings: PlatformSettings, n: int, full: PlatformSettings | None = None, full_n: int = 0
) -> dict[str, object]:
    """One PR changing one overlay's release.yaml in an n-model repository: `--changed-since`
    (library and CLI) next to the full validation, on the same checkout (or, with `full`, on
    a `full_n`-model one built in the same run when n is too many to validate in full here)."""
    work = GitopsRepo.locate(settings).work
    crd = settings.crd_schema_dir()
    write_release(
        work,
        Release(model="model_0007", env="stage", stable_version="2", stable_image=CANARY),
    )
    run_git(["commit", "-qam", "promote model_0007 2 to stage"], work)

    def changed() -> int:
        picked = changed_targets(work, "HEAD~1", find_targets(work), [crd, VALIDATOR_SOURCE])
        rep = validate_tree(work, crd, targets=[work / t for t in picked.targets])
        assert rep.ok and [t.path for t in rep.targets] == picked.targets
        return len(picked.targets)

    assert changed() == 1
    c0 = cpu_s()
    t_changed = timed(changed)
    cpu_changed = round((cpu_s() - c0) / 3, 3)
    t0, c0 = time.perf_counter(), cpu_s()
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "mlgate"),
            "manifests",
            "validate",
            "--root",
            str(work),
            "--changed-since",
            "HEAD~1",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    t_cli, cpu_cli = round(time.perf_counter() - t0, 4), round(cpu_s() - c0, 3)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["targets"]) == 1
    row: dict[str, object] = {
        "models": n,
        "kustomizations": len(find_targets(work)),
        "changed_overlays": 1,
        "changed_since_s": t_changed,
        "changed_since_cpu_s": cpu_changed,
        "changed_since_cli_s": t_cli,
        "changed_since_cli_cpu_s": cpu_cli,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(row), flush=True)
    full_work = GitopsRepo.locate(full).work if full is not None else work
    t0, c0 = time.perf_counter(), cpu_s()
    rep = validate_tree(full_work, crd)
    t_full, cpu_full = round(time.perf_counter() - t0, 4), round(cpu_s() - c0, 3)
    assert rep.ok, rep.all_problems()[:3]
    return {
        **row,
        "full_models": full_n if full is not None else n,
        "full_kustomizations": len(rep.targets),
        "full_validate_s": t_full,
        "full_validate_cpu_s": cpu_full,
        "full_per_overlay_cpu_s": round(cpu_full / len(rep.targets), 4),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "target_s": PR_CHECK_TARGET_S,
        "met": t_cli < PR_CHECK_TARGET_S,
        "met_library": t_changed < PR_CHECK_TARGET_S,
    }


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
        "pr_check": None,
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
            if n == PR_CHECK_SIZE:
                results["pr_check"] = pr_check(settings, n)
                print(json.dumps(results["pr_check"]))
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
    write(results, "gitops_scale.json")


def write(results: dict[str, object], name: str) -> None:
    out = Path(__file__).parent / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def main_pr_check(full_n: int | None) -> None:
    """`--pr-check [--full-at N]`: only the pull-request check at PR_CHECK_SIZE models (no
    status sizes); the full validation beside it at N models when given (the machine may be
    too slow or too shared to render 3,000 overlays in one sitting)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = build(Path(tmp), PR_CHECK_SIZE)
        full = build(Path(tmp), full_n) if full_n and full_n != PR_CHECK_SIZE else None
        row = pr_check(settings, PR_CHECK_SIZE, full, full_n or PR_CHECK_SIZE)
    print(json.dumps(row))
    machine = {"machine": platform.platform(), "python": sys.version.split()[0]}
    write({**machine, "pr_check": row}, "gitops_pr_check.json")


def _full_at(argv: list[str]) -> int | None:
    if "--full-at" not in argv:
        return None
    i = argv.index("--full-at")
    if i + 1 >= len(argv) or not argv[i + 1].isdigit() or int(argv[i + 1]) < 1:
        sys.exit("--full-at: want a number of models (>= 1)")
    return int(argv[i + 1])


if __name__ == "__main__":
    args = sys.argv[1:]
    main_pr_check(_full_at(args)) if "--pr-check" in args else main()
