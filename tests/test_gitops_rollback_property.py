"""Property: a rollback reverts exactly one change.

Over random histories of promotions, canary steps and rollbacks on a real git remote,
whenever `mlgate rollback` reverts commit C of environment E, E's rendered manifests equal
their state just before C and every other environment's rendered output is unchanged.
Refused operations change nothing at all. Every rollback quarantines exactly what the one
rule says (`quarantine.quarantined_by_revert`): the versions that ran in E before it and run
there in no role after it, so a version still serving is never quarantined.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mlgate.config import PlatformSettings
from mlgate.errors import MlgateError
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.kubectl import kustomize
from mlgate.gitops.overlay import ENVS, read_release
from mlgate.gitops.promote import promote
from mlgate.gitops.quarantine import quarantined_by_revert, read_quarantine, running_versions
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import read_status
from mlgate.records.builds import BuildRecord, write_record
from tests.fixtures.gitops import GITOPS_VERSIONS
from tests.gitops_helpers import MODEL, remote_refs

OPS = st.lists(
    st.sampled_from(
        [
            "promote:dev",
            "promote:stage",
            "promote:prod",
            "weight",
            "canary-promote",
            "abort",
            "rollback:dev",
            "rollback:stage",
            "rollback:prod",
        ]
    ),
    min_size=3,
    max_size=7,
)


def _render_all(repo: GitopsRepo) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for env in ENVS:
        d = repo.work / "manifests" / "models" / MODEL / env
        if not d.exists():
            out[env] = None
            continue
        out[env] = kustomize(d)
    return out


def _apply(settings: PlatformSettings, op: str, reports, next_version: list[int]) -> str | None:
    """Try one operation; return the merged commit or None when the rules refused it."""
    kind, _, env = op.partition(":")
    status = read_status(settings).model(MODEL)
    envs = status.envs if status else {}
    if kind == "promote":
        if env == "dev":
            version = str(next_version[0])
            next_version[0] += 1
        else:
            prev = ENVS[ENVS.index(env) - 1]
            if prev not in envs:
                return None
            version = envs[prev].stable_version
        pr = promote(settings, MODEL, version, env, reports(version, env))
    elif kind == "weight":
        current = envs["prod"].canary_weight if "prod" in envs else None
        pr = canary.set_weight(settings, MODEL, "prod", 50 if current != 50 else 25)
    elif kind == "canary-promote":
        cv = envs["prod"].canary_version if "prod" in envs else None
        if cv is None:
            return None
        pr = canary.promote_canary(settings, MODEL, "prod", reports(cv, "prod"))
    elif kind == "abort":
        pr = canary.abort(settings, MODEL, "prod", "property test")
    else:
        pr = rollback(settings, MODEL, env, "property test")
    return prmod.merge_pr(settings, pr.branch, ["alice"]).commit


@pytest.mark.slow
@hsettings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
@example(
    ops=[
        "promote:dev",
        "promote:stage",
        "promote:prod",
        "promote:dev",
        "promote:stage",
        "promote:prod",
        "weight",
        "rollback:prod",
        "rollback:stage",
        "canary-promote",
        "abort",
        "rollback:dev",
    ]
)
def test_rollback_restores_exactly_the_state_before_the_reverted_commit(
    ops, tmp_path: Path, gitops_mlflow_template: Path, gate_report
) -> None:
    ws = tmp_path / f"ws-{uuid.uuid4().hex[:8]}"
    settings = PlatformSettings(
        workspace=str(ws), mlflow={"tracking_uri": f"sqlite:///{gitops_mlflow_template}"}
    )
    for v in GITOPS_VERSIONS:  # each version's image build, as `mlgate image build` records it
        repo_name = "127.0.0.1:5555/mlgate/credit-risk"
        write_record(
            settings,
            BuildRecord(
                model=MODEL,
                version=v,
                repository=repo_name,
                reference=f"{repo_name}:{v}",
                digest=f"sha256:{int(v):064x}",
            ),
        )
    repo = GitopsRepo.open(settings)
    snapshots: dict[str, dict[str, str | None]] = {repo.rev(repo.main): _render_all(repo)}
    next_version = [1]
    rollbacks: list[str] = []
    try:
        for op in ops:
            before_refs = remote_refs(settings)
            head_before = repo.rev(repo.main)
            releases_before = {e: read_release(repo.work, MODEL, e) for e in ENVS}
            quarantined_before = {q.version for q in read_quarantine(repo.work, MODEL)}
            try:
                merged = _apply(settings, op, gate_report, next_version)
            except MlgateError:
                merged = None
            if merged is None:
                # refused: nothing was written anywhere
                assert remote_refs(settings) == before_refs, op
                continue
            repo.sync()
            now = _render_all(repo)
            snapshots[merged] = now
            if op.startswith("rollback:"):
                env = op.partition(":")[2]
                msg = repo.git("log", "-1", "--format=%(trailers:key=Reverts,valueonly)", merged)
                reverted = msg.strip()
                parent_of_reverted = repo.rev(f"{reverted}^")
                assert now[env] == snapshots[parent_of_reverted][env], ops
                for other in ENVS:
                    if other != env:
                        assert now[other] == snapshots[head_before][other], ops
                after = read_release(repo.work, MODEL, env)
                quarantined = {q.version for q in read_quarantine(repo.work, MODEL)}
                rule = set(quarantined_by_revert(releases_before[env], after))
                assert quarantined - quarantined_before == rule - quarantined_before, ops
                assert quarantined_before <= quarantined, ops
                assert not (running_versions(after) & (rule | (quarantined - quarantined_before)))
                rollbacks.append(op)
        if len(ops) == 12:  # the explicit example: every kind of rollback really happened
            assert rollbacks == ["rollback:prod", "rollback:stage", "rollback:dev"]
    finally:
        shutil.rmtree(ws, ignore_errors=True)
