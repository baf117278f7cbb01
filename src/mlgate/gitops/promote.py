"""`mlgate promote`: propose a model version for the next environment, as one reviewed commit.

Rules, checked against the remote's main before anything is written:
- order: a version reaches stage only after it was promoted to dev, prod only after stage;
- evidence: the gate report for this model, version and environment must say PASS
  (`--override-gates --reason` is break-glass: the reason goes into the commit, and the merge
  then needs two approvers);
- quarantined versions (rolled back, aborted) never come back through automation;
- into prod, a version enters as the canary at the policy's initial weight (the very first
  prod version, having nothing to be compared against in traffic, becomes stable directly).
The commit's trailers carry the lineage: Model, Model-Version, Image-Digest, MLflow-Run,
Data-Fingerprint, Gate-Report (sha256 of report.json). The PR description is report.md.
"""

from __future__ import annotations

from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gates.result import ReportKind
from mlgate.gates.verify import CanaryClaim
from mlgate.gitops.evidence import (
    GateReport,
    Lineage,
    mlflow_lineage,
    policy_in_force,
    release_policy,
    verify_evidence,
)
from mlgate.gitops.history import log
from mlgate.gitops.overlay import (
    ENVS,
    Release,
    check_env,
    check_model,
    overlay_dir,
    read_release,
    write_release,
)
from mlgate.gitops.pr import Proposal, PullRequest, Refused, open_pr
from mlgate.gitops.quarantine import read_quarantine
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.report_store import report_sha
from mlgate.records.builds import pinned_image
from mlgate.records.trailers import ENTERING, ChangeKind, make_trailers
from mlgate.records.values import check_text
from mlgate.training.versions import version_number


def check_report(
    settings: PlatformSettings,
    report: Path | None,
    model: str,
    version: str,
    env: str,
    override_reason: str | None,
    *,
    kind: ReportKind = "promotion",
    canary: CanaryClaim | None = None,
    policies_dir: Path | None = None,
) -> GateReport | None:
    """The gate report in `report`, verified against the store, the version and the policy in
    force (`evidence.verify_evidence`): only a verified PASS promotes, unless overridden."""
    if override_reason is not None and not override_reason.strip():
        raise BadInputError("--reason: overriding the gates needs a written reason")
    if report is None:
        if override_reason is None:
            raise BadInputError(
                "--report: a gate report directory is required (or --override-gates)"
            )
        return None
    return verify_evidence(
        settings,
        report_sha(report),
        model=model,
        version=version,
        env=env,
        kind=kind,
        override=override_reason is not None,
        policies_dir=policies_dir,
        canary=canary,
    )


def evidence_trailers(rep: GateReport | None, override_reason: str | None) -> dict[str, str]:
    """The evidence fields of `records.trailers.Trailers` (field name -> value)."""
    out: dict[str, str] = {}
    if rep is not None:
        out |= {"gate_report": rep.sha256, "gate_result": rep.overall}
        if rep.champion:
            out["champion"] = rep.champion
    else:
        out["gate_report"] = "none"
    if override_reason is not None:
        out["override_reason"] = check_text(override_reason.strip(), "--reason")
    return out


def version_trailers(lineage: Lineage, image_ref: str) -> dict[str, str | None]:
    """The lineage fields of `records.trailers.Trailers` of a change that runs a version's
    image (a promotion, a shadow): its digest and reference, MLflow run, data, features, code."""
    return {
        "image_digest": image_ref.split("@", 1)[1],
        "image": image_ref,
        "mlflow_run": lineage.run_id or "unknown",
        "data_fingerprint": lineage.data_fingerprint or "unknown",
        "feature_service": lineage.feature_service,
        "training_commit": lineage.git_commit,
    }


def description(rep: GateReport | None, override_reason: str | None, summary: str) -> str:
    parts = [summary, ""]
    if override_reason is not None:
        parts += [
            "> **GATES OVERRIDDEN (break-glass).** Reason: " + override_reason.strip(),
            "> Merging needs two approvers other than the author.",
            "",
        ]
    if rep is not None:
        parts.append(rep.markdown or f"Gate report {rep.path}: {rep.overall}")
    return "\n".join(parts).strip() + "\n"


def previously_in(repo_work: Path, main: str, model: str, env: str, version: str) -> bool:
    """Was `version` ever merged into `env` (promoted there, or a canary promoted there)?"""
    for c in log(None, repo_work, main, [overlay_dir(model, env)]):
        if c.lineage and c.lineage.model_version == version and c.lineage.change in ENTERING:
            return True
    return False


def promote(
    settings: PlatformSettings,
    model: str,
    version: str,
    to: str,
    report: Path | None,
    *,
    image: str | None = None,
    override_reason: str | None = None,
    weight: int | None = None,
    policies_dir: Path | None = None,
    shadow_report: Path | None = None,
) -> PullRequest:
    """Open the promotion PR (branch `promote/<model>-<version>-<env>`), or refuse. Into prod
    as a canary under a policy whose phases start with `shadow`, `shadow_report` must be a
    verified PASS of the shadow analysis of this version beside the stable version running."""
    check_model(model)
    check_env(to)
    # An alias (`challenger`) becomes the number here: the commit records what was judged.
    version = version_number(settings, model, version)
    from mlgate.gitops.status import read_status

    known = read_status(settings).model(model)  # fail fast, before reading any evidence
    if known and any(q.version == version for q in known.quarantined):
        raise Refused(f"{model} version {version} is quarantined: it cannot be promoted again")
    rep = check_report(
        settings, report, model, version, to, override_reason, policies_dir=policies_dir
    )
    lineage = mlflow_lineage(settings, model, version)
    image_ref = pinned_image(settings, model, version, image, lineage.tags)
    in_force = policy_in_force(settings, model, version, policies_dir)
    shadow_rep = None
    rel_policy = release_policy(in_force)
    if (
        to == "prod"
        and override_reason is None
        and in_force.for_env(to).canary.shadow_first
        and read_current_stable(settings, model, to) is not None
    ):
        if shadow_report is None:
            raise BadInputError(
                "--shadow-report: the gate policy's canary.phases start with shadow; a canary "
                f"of {model} {version} needs its shadow analysis (`mlgate shadow analyze`)"
            )
        shadow_rep = check_report(
            settings,
            shadow_report,
            model,
            version,
            to,
            None,
            kind="shadow-analysis",
            policies_dir=policies_dir,
        )
    canary_weight = weight if weight is not None else rel_policy.canary_weight
    if not 1 <= canary_weight <= 99:
        raise BadInputError(f"--weight {canary_weight}: must be 1..99")
    repo = GitopsRepo.locate(settings)

    def edit(root: Path) -> None:
        if any(q.version == version for q in read_quarantine(root, model)):
            raise Refused(
                f"{model} version {version} is quarantined (see manifests/models/{model}/"
                "quarantine.yaml): it cannot be promoted again"
            )
        idx = ENVS.index(to)
        if idx > 0 and not previously_in(root, repo.main, model, ENVS[idx - 1], version):
            raise Refused(
                f"{model} {version} has not been promoted to {ENVS[idx - 1]}: promotions go "
                f"{' -> '.join(ENVS)}"
            )
        current = read_release(root, model, to)
        if (to == "prod" and current is not None) != as_canary:
            # the subject and trailers were planned as canary/stable from an earlier read
            raise Refused(f"{to} of {model} changed meanwhile; look at `mlgate status`")
        if current and current.stable_version == version:
            raise BadInputError(f"{model} {version} already runs stable in {to}")
        if current and current.has_canary:
            raise Refused(
                f"a canary ({model} {current.canary_version}) is running in {to}: "
                "`mlgate canary promote` or `mlgate canary abort` it first"
            )
        cutoff = current.cutoff if current else rel_policy.cutoff
        if to == "prod" and current is not None:
            update: dict[str, object] = {
                "canary_version": version,
                "canary_image": image_ref,
                "canary_weight": canary_weight,
            }
            if current.shadow_version == version:  # shadow -> canary: it replaces the shadow
                update |= {"shadow_version": None, "shadow_image": None}
            new = current.model_copy(update=update)
        else:
            new = Release(
                model=model, env=to, stable_version=version, stable_image=image_ref, cutoff=cutoff
            )
        write_release(root, new)

    as_canary = to == "prod" and (read_current_stable(settings, model, to) is not None)
    subject = (
        f"Promote {model} {version} to {to}"
        + (f" as canary at {canary_weight}%" if as_canary else "")
        + (" [GATES OVERRIDDEN]" if override_reason is not None else "")
    )
    trailers = make_trailers(
        model=model,
        model_version=version,
        environment=to,
        change=ChangeKind.PROMOTE,
        **version_trailers(lineage, image_ref),
        canary_weight=canary_weight if as_canary else None,
        shadow_report=shadow_rep.sha256 if shadow_rep else None,
        **evidence_trailers(rep, override_reason),
    )
    proposal = Proposal(
        model=model,
        env=to,
        change=ChangeKind.PROMOTE,
        version=version,
        branch=f"promote/{model}-{version}-{to}",
        subject=subject,
        body=[f"Gate report: {rep.path if rep else 'none (gates overridden)'}"],
        trailers=trailers,
        description=description(rep, override_reason, f"## {subject}"),
    )
    return open_pr(settings, proposal, edit)


def read_current_stable(settings: PlatformSettings, model: str, env: str) -> str | None:
    from mlgate.gitops.status import stable_version

    return stable_version(settings, model, env)
