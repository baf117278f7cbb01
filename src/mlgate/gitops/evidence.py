"""What a promotion rests on: the gate report, the image digest, and the MLflow lineage.

Read from what the other capabilities write (the gate report from the content-addressed report
store, image build record `<workspace>/images/<model>/<version>.json`, MLflow model version
tags), so a promotion commit can carry all of it in its trailers. The gate report is verified,
never trusted (`verify_evidence`): promote, canary promote and `pr merge` all call it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError, GateFailed, Inconclusive
from mlgate.gates import result
from mlgate.gates.policy import GatePolicy, load_policy, policy_path_for
from mlgate.gates.result import GateStatus, ReportKind
from mlgate.gates.verify import CanaryClaim, Claim, parse_report, verify_report
from mlgate.gitops import policy_store, report_store
from mlgate.gitops.prhost import Refused
from mlgate.records.tags import VersionTags, read_tags
from mlgate.records.trailers import REPORT_KINDS, ChangeKind
from mlgate.records.values import canonical_version
from mlgate.training.registry import connect, resolve_version


class GateReport(BaseModel):
    """A verified gate report, as the promotion commit and its PR description use it."""

    path: str
    sha256: str
    model: str
    challenger: str
    champion: str | None
    env: str
    overall: str
    failing: list[str]
    reasons: list[str] = []  # "gate: reason" for every reason of every blocking gate short of PASS
    markdown: str
    # the digest of the policy the report was verified under (None: not verified, override)
    policy_sha256: str | None = None


def _summary(rep: result.GateReport, sha: str, path: str, markdown: str) -> GateReport:
    short = [g for g in rep.gates if g.status != GateStatus.PASS and g.blocking]
    return GateReport(
        path=path,
        sha256=sha,
        model=rep.model,
        challenger=rep.challenger,
        champion=rep.champion,
        env=rep.env,
        overall=rep.overall.value,
        failing=[g.name for g in short],
        reasons=[
            f"{g.name} {g.status.value}: {r}"
            for g in short
            for r in (g.reasons or [g.summary or "no reason recorded"])
        ],
        markdown=markdown,
    )


def load_report(report: Path) -> GateReport:
    """A gate report folder (or its report.json) as mlgate wrote it, NOT verified: for showing
    and reusing a report. A promotion goes through `verify_evidence`."""
    path = report_store.report_file(report)
    raw = path.read_bytes()
    md = path.parent / "report.md"
    return _summary(
        parse_report(raw, str(path)),
        hashlib.sha256(raw).hexdigest(),
        str(path),
        md.read_text(encoding="utf-8") if md.is_file() else "",
    )


def policy_in_force(
    settings: PlatformSettings, model: str, version: str, policies_dir: Path | None = None
) -> GatePolicy:
    """The gate policy `model` is judged under now: `<policies_dir>/<model>.yaml` when given,
    else the one the version's model config named (MLflow tag `gate_policy`: a file name in
    config/policies, nothing else), else config/policies/<model>.yaml. Loading it refuses
    stage/prod sections that switch gates off."""
    if policies_dir is not None:
        return load_policy(policy_path_for(model, policies_dir / f"{model}.yaml"))
    tags = read_tags(resolve_version(connect(settings), model, version).tags, model, version)
    named_by = f"MLflow tag gate_policy of {model} version {version}"
    return load_policy(policy_path_for(model, None, tags.gate_policy or None, named_by))


def canary_claim(settings: PlatformSettings, model: str, env: str) -> CanaryClaim:
    """The canary git runs in `env` now: its start commit and time, weight and stable version."""
    from mlgate.gitops.status import read_status  # status imports pr, pr this

    ms = read_status(settings).model(model)
    es = ms.envs.get(env) if ms is not None else None
    if es is None or es.canary_version is None or es.canary_weight is None:
        raise BadInputError(f"no canary of {model} runs in {env} (git main)")
    return claim_of(settings, model, env, es.canary_version, es.canary_weight, es.stable_version)


def claim_of(
    settings: PlatformSettings,
    model: str,
    env: str,
    canary_version: str,
    weight: int,
    stable_version: str,
    rev: str | None = None,
) -> CanaryClaim:
    """The claim for a canary that runs in `env` on main (or as of commit `rev` of main, for
    the audit): found with the commit that started it."""
    from mlgate.gitops.status import canary_start  # status imports pr, pr this

    start = canary_start(settings, model, env, canary_version, rev=rev)
    if start is None:
        raise BadInputError(f"git has no commit that started the {env} canary of {model}")
    return CanaryClaim(
        start_commit=start.sha,
        started=datetime.fromtimestamp(start.time, UTC).isoformat(),
        weight=weight,
        stable_version=stable_version,
    )


def verify_evidence(
    settings: PlatformSettings,
    sha: str,
    *,
    model: str,
    version: str,
    env: str,
    kind: ReportKind = "promotion",
    override: bool = False,
    policies_dir: Path | None = None,
    canary: CanaryClaim | None = None,
    champion: Callable[[], str | None] | None = None,
    policy_sha256: str | None = None,
) -> GateReport:
    """The one check of a gate report, for `promote`, `canary promote`, `pr merge`, CI and
    `audit` (which passes `champion` and `canary` as they were when the change was merged,
    instead of what git runs now).

    Fetches the report named by `sha` from the store (`report_store.get`: its bytes must hash to
    `sha`), checks it is about this model, version (canonical) and environment, then verifies it
    against the version's MLflow lineage, the policy in force and, for a promotion report, the
    champion git runs in `env` now (`mlgate.gates.verify`).
    Under `--override-gates` (break-glass: reason + two approvers) only the store and identity
    are checked: the report travels with the change, it does not need to pass.
    `policy_sha256` (the audit: the `Gate-Policy:` a merge recorded) verifies under that stored
    policy (`gitops.policy_store`) instead of the one in force now; a verification that passes
    stores the policy it used there, so the merge's policy can be read again later.
    """
    try:
        return _verify(
            settings,
            sha,
            model,
            version,
            env,
            kind,
            override,
            policies_dir,
            canary,
            champion,
            policy_sha256,
        )
    except GateFailed as exc:  # one exception for every refusal of the promotion rules
        if isinstance(exc, Refused):
            raise
        raise Refused(exc.message, problems=exc.problems) from None


def _verify(
    settings: PlatformSettings,
    sha: str,
    model: str,
    version: str,
    env: str,
    kind: ReportKind,
    override: bool,
    policies_dir: Path | None,
    canary: CanaryClaim | None,
    champion: Callable[[], str | None] | None,
    policy_sha256: str | None = None,
) -> GateReport:
    lineage = mlflow_lineage(settings, model, version)  # unknown version: exit 2
    fetched = report_store.get(settings, sha, lineage.run_id)
    rep = parse_report(fetched.raw, fetched.where)
    problems = []
    for key, want, got in (("model", model, rep.model), ("env", env, rep.env)):
        if got != want:
            problems.append(f"`{key}` is {got!r}, but this change is for {want!r}")
    try:
        same = canonical_version(rep.challenger, "challenger") == canonical_version(version)
    except BadInputError:
        same = False
    if not same:
        problems.append(f"`challenger` is {rep.challenger!r}, but this change is for {version!r}")
    if problems:
        raise BadInputError(
            f"{fetched.where}: gate report for another change; nothing was committed",
            problems=problems,
        )
    summary = _summary(rep, sha, fetched.where, fetched.markdown)
    if not override:
        policy = (
            policy_store.get(settings, policy_sha256, lineage.run_id)
            if policy_sha256
            else policy_in_force(settings, model, version, policies_dir)
        )
        claim = Claim(
            kind=kind,
            data_fingerprint=lineage.data_fingerprint,
            canary=canary,
            champion=(champion or (lambda: running_champion(settings, model, env)))()
            if kind in ("promotion", "shadow-analysis")  # both judged beside the stable
            else None,
        )
        verify_report(rep, claim, policy, fetched.where)
        digest = policy_store.put(settings, policy, lineage.run_id)
        summary = summary.model_copy(update={"policy_sha256": digest})
    return summary


def running_champion(settings: PlatformSettings, model: str, env: str) -> str | None:
    """The stable version git says runs in `env` now: the champion a promotion report must have
    been judged against (None only when git proves nothing runs there). Git that cannot be read
    is INCONCLUSIVE (exit 3), never "no champion"."""
    from mlgate.gitops.status import StateUnreadable, stable_version  # status imports pr

    try:
        return stable_version(settings, model, env)
    except StateUnreadable as exc:
        raise Inconclusive(
            f"the champion of {model} in {env} cannot be read from git: {exc}; nothing was "
            "committed"
        ) from None


def verify_change_evidence(
    settings: PlatformSettings,
    *,
    change: str,
    model: str,
    version: str | None,
    env: str,
    gate_report: str | None,
    overridden: bool,
) -> GateReport | None:
    """`pr merge` (and a CI check on the PR) re-verifies what the PR's commit names: for a
    change that rests on a gate report (`records.trailers.REPORT_KINDS`: promote,
    canary-promote, shadow-start) the report whose sha256 is
    its `Gate-Report:` trailer, fetched from the store now, against the policy in force now.
    A report tampered with (or a policy changed) after the PR was opened is refused here.
    `Gate-Report: none` is accepted only with `Override-Reason` (then two approvers)."""
    kind = cast(ReportKind | None, REPORT_KINDS.get(cast(ChangeKind, change)))
    if kind is None:
        return None  # weight steps, aborts, rollbacks, shadow stops carry no gate report
    if not version:
        raise BadInputError(f"{change} of {model} in {env}: the commit has no Model-Version")
    if gate_report in (None, "", "none"):
        if overridden:
            return None
        raise Refused(
            f"{change} of {model} {version} in {env}: the commit names no gate report and "
            "the gates were not overridden; nothing was merged"
        )
    return verify_evidence(
        settings,
        gate_report,
        model=model,
        version=version,
        env=env,
        kind=kind,
        override=overridden,
        canary=canary_claim(settings, model, env) if kind == "canary-analysis" else None,
    )


def verify_shadow_phase(
    settings: PlatformSettings,
    *,
    model: str,
    version: str,
    env: str,
    shadow_report: str | None,
    overridden: bool,
) -> GateReport | None:
    """A canary start under a policy whose `canary.phases` begin with shadow rests on the
    version's passing shadow analysis too (`Shadow-Report:`), verified again at the merge like
    the gate report: a canary PR opened by hand without it is refused."""
    if overridden or not policy_in_force(settings, model, version).for_env(env).canary.shadow_first:
        return None
    if shadow_report in (None, "", "none"):
        raise Refused(
            f"canary start of {model} {version} in {env}: the policy's canary.phases start with "
            "shadow and the commit names no shadow analysis (Shadow-Report); nothing was merged"
        )
    return verify_evidence(
        settings, shadow_report, model=model, version=version, env=env, kind="shadow-analysis"
    )


class Lineage(BaseModel):
    run_id: str | None
    data_fingerprint: str | None
    feature_service: str | None
    git_commit: str | None
    tags: VersionTags = VersionTags()


def mlflow_lineage(settings: PlatformSettings, model: str, version: str) -> Lineage:
    """The MLflow model version's run and tags; the version must exist in the registry."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=settings.mlflow.registry_uri or uri)
    try:
        mv = client.get_model_version(model, version)
    except MlflowException as exc:
        raise BadInputError(
            f"MLflow ({uri}) has no version {version} of registered model {model!r}"
        ) from exc
    except Exception as exc:  # connection problems
        raise ExternalServiceError(f"MLflow ({uri}) did not answer: {exc}") from exc
    tags = read_tags(mv.tags, model, version)  # a tag that would break a trailer: exit 2
    return Lineage(
        run_id=mv.run_id,
        data_fingerprint=tags.data_fingerprint,
        feature_service=tags.feature_service or None,
        git_commit=tags.git_commit,
        tags=tags,
    )


class ReleasePolicy(BaseModel):
    """What a promotion takes from the model's gate policy: canary weight and the cut-off."""

    canary_weight: int
    cutoff: str


def release_policy(policy: GatePolicy) -> ReleasePolicy:
    """`canary.initial_weight` and `cutoff.value` of the policy in force (`policy_in_force`:
    the one lookup), so the cut-off a new environment starts with is the one its gates were
    judged at."""
    return ReleasePolicy(
        canary_weight=policy.canary.initial_weight, cutoff=f"{policy.cutoff.value:g}"
    )
