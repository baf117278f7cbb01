"""The gates judge decisions at the cut-off the target environment serves (git's overlay)."""

from __future__ import annotations

import yaml

from mlgate.config import REPO_ROOT, load_settings
from mlgate.gates.collect import overlay_cutoff, with_served_cutoff
from mlgate.gates.policy import GatePolicy


def test_no_gitops_repo_falls_back_to_the_policy_value() -> None:
    settings = load_settings()
    policy = GatePolicy()
    assert overlay_cutoff(settings, "credit_risk", "dev") is None
    same, source = with_served_cutoff(settings, "credit_risk", "dev", policy)
    assert same.cutoff.value == policy.cutoff.value and "no overlay" in source


def test_overlay_cutoff_is_used() -> None:
    from mlgate.gitops.repo import GitopsRepo

    settings = load_settings()
    repo = GitopsRepo.open(settings)  # the embedded default: a bare repo in the workspace
    release = REPO_ROOT / "manifests" / "models" / "credit_risk" / "stage" / "release.yaml"
    # What `mlgate promote` leaves on main: the stage overlay's release file, merged.
    target = repo.work / "manifests" / "models" / "credit_risk" / "stage" / "release.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(release.read_text())
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "Promote credit_risk to stage")
    repo.git("push", "-q", "origin", "HEAD:main")
    served = float(
        next(d for d in yaml.safe_load_all(release.read_text()) if d and "data" in d)["data"][
            "cutoff"
        ]
    )
    assert overlay_cutoff(settings, "credit_risk", "stage") == served
    policy, source = with_served_cutoff(settings, "credit_risk", "stage", GatePolicy())
    assert policy.cutoff.value == served and source == f"overlay stage: {served}"
    fixed = GatePolicy().model_copy(
        update={"cutoff": GatePolicy().cutoff.model_copy(update={"method": "fixed"})}
    )
    kept, _ = with_served_cutoff(settings, "credit_risk", "stage", fixed)
    assert kept.cutoff.value == 0.15
