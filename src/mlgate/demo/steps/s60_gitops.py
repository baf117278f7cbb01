"""Demo step: GitOps on the embedded default.

The trained version goes dev -> stage -> prod by pull requests in the workspace's GitOps
repository; a second version enters prod as a canary, its weight is raised, it is promoted,
rolled back (git revert) and aborted; then status, MLflow aliases and manifest validation.

Evidence is taken from earlier steps where it exists (gate report, image build record) and
from the workspace otherwise. Where no PASS gate report exists for an environment, the demo
uses the break-glass path (`--override-gates --reason`, two approvers), and says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import BadInputError
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.aliases import sync_aliases
from mlgate.gitops.evidence import load_report
from mlgate.gitops.overlay import ENVS, check_image
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import read_status
from mlgate.gitops.validate import validate_tree

APPROVERS = ["model-risk-officer", "head-of-credit-risk"]
OVERRIDE = "demo: no PASS gate report for this environment on the embedded default"


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _client(ctx: DemoContext) -> Any:
    from mlflow.tracking import MlflowClient

    uri = ctx.settings.mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=ctx.settings.mlflow.registry_uri or uri)


def _trained(ctx: DemoContext) -> tuple[str, str]:
    train = ctx.results.get("train")
    model, version = _field(train, "model"), _field(train, "version")
    if model and version:
        return str(model), str(version)
    ctx.console.print("[yellow]no training result in this run: using MLflow's latest version[/]")
    versions = _client(ctx).search_model_versions("name='credit_risk'")
    if not versions:
        raise BadInputError("no registered version of credit_risk in MLflow: run the train step")
    return "credit_risk", str(max(int(v.version) for v in versions))


def _image(ctx: DemoContext, model: str, version: str) -> str:
    """The image build record (this run or the workspace), else a labelled content digest."""
    rec = ctx.results.get("image")
    repo, digest = _field(rec, "repository"), _field(rec, "digest")
    path = ctx.settings.ws().root / "images" / model / f"{version}.json"
    if not (repo and digest) and path.is_file():
        doc = json.loads(path.read_text())
        repo, digest = doc.get("repository"), doc.get("digest")
    if repo and digest:
        return check_image(f"{repo}@{digest}", "image build record")
    mv = _client(ctx).get_model_version(model, version)
    stand_in = hashlib.sha256(f"{model}:{version}:{mv.run_id}:{mv.source}".encode()).hexdigest()
    ctx.console.print(
        "[yellow]no image was built in this workspace (image step skipped): the demo pins a "
        "content digest of the model version instead; a real deployment needs a built image[/]"
    )
    return f"127.0.0.1:5555/mlgate/{model.replace('_', '-')}@sha256:{stand_in}"


def _report(ctx: DemoContext, model: str, version: str, env: str) -> Path | None:
    """A PASS gate report for exactly this model/version/env, if the gates step made one."""
    gates = ctx.results.get("gates")
    candidates = []
    if _field(gates, "report_dir"):
        candidates.append(Path(str(_field(gates, "report_dir"))))
    reports = ctx.settings.ws().root / "reports"
    if reports.is_dir():
        candidates += sorted(p.parent for p in reports.rglob("report.json"))
    for d in candidates:
        try:
            rep = load_report(d)
        except BadInputError:
            continue
        if (rep.model, rep.challenger, rep.env, rep.overall) == (model, version, env, "PASS"):
            return d
    return None


def _merge(ctx: DemoContext, pr: prmod.PullRequest, approvers: list[str]) -> None:
    res = prmod.merge_pr(ctx.settings, pr.branch, approvers)
    ctx.console.print(
        f"  merged {pr.branch} -> {res.commit[:10]} (Approved-by: {', '.join(res.approvers)})"
    )


def _promote(ctx: DemoContext, model: str, version: str, env: str, image: str) -> None:
    report = _report(ctx, model, version, env)
    if report is None:
        ctx.console.print(
            f"  [bold yellow]BREAK-GLASS[/] {env}: no PASS gate report for {model} {version}; "
            "--override-gates with a reason, merge needs two approvers"
        )
        pr = promote(ctx.settings, model, version, env, None, image=image, override_reason=OVERRIDE)
        approvers = APPROVERS
    else:
        pr = promote(ctx.settings, model, version, env, report, image=image)
        approvers = APPROVERS[:1]
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, approvers)


def _second_version(ctx: DemoContext, model: str, version: str) -> str:
    """Re-register the trained model as a new version (labelled) so the canary has two."""
    client = _client(ctx)
    mv = client.get_model_version(model, version)
    new = client.create_model_version(
        model,
        source=mv.source,
        run_id=mv.run_id,
        tags={**dict(mv.tags or {}), "demo_note": f"re-registration of version {version}"},
        description=f"demo: version {version} re-registered to show a canary",
    )
    ctx.console.print(
        f"  [yellow]demo:[/] version {new.version} is version {version} re-registered "
        "(same artifact) so that prod has a stable and a canary"
    )
    return str(new.version)


def _status_table(ctx: DemoContext) -> dict[str, Any]:
    st = read_status(ctx.settings)
    table = Table(title="mlgate status (from git)")
    for col in ("model", "env", "stable", "canary", "cut-off", "last change"):
        table.add_column(col)
    for ms in st.models:
        for env, es in ms.envs.items():
            can = f"{es.canary_version} @ {es.canary_weight}%" if es.canary_version else "-"
            table.add_row(
                ms.model, env, es.stable_version, can, es.cutoff, es.last_commit_subject or ""
            )
    ctx.console.print(table)
    for ms in st.models:
        if ms.quarantined:
            ctx.console.print(
                f"  quarantined {ms.model}: {', '.join(q.version for q in ms.quarantined)}"
            )
    return st.model_dump(mode="json")


def run(ctx: DemoContext) -> dict[str, Any]:
    model, v1 = _trained(ctx)
    image1 = _image(ctx, model, v1)
    repo = GitopsRepo.open(ctx.settings)
    ctx.console.print(f"GitOps remote: {repo.remote} (working clone {repo.work})")
    for env in ENVS:
        _promote(ctx, model, v1, env, image1)

    v2 = _second_version(ctx, model, v1)
    for env in ENVS:
        _promote(ctx, model, v2, env, image1)  # into prod: a canary at the policy weight
    pr = canary.set_weight(ctx.settings, model, "prod", 50)
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS[:1])
    report = _report(ctx, model, v2, "prod")
    pr = canary.promote_canary(
        ctx.settings, model, "prod", report, override_reason=None if report else OVERRIDE
    )
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS if report is None else APPROVERS[:1])

    ctx.console.print("rollback: git revert of the canary promotion (version quarantined)")
    pr = rollback(ctx.settings, model, "prod", "demo: late-arriving defaults look worse")
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS[:1])
    pr = canary.abort(
        ctx.settings, model, "prod", "demo: quarantined version, all traffic to stable"
    )
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS[:1])

    status = _status_table(ctx)
    aliases = sync_aliases(ctx.settings, [model])
    for fix in aliases.fixed:
        ctx.console.print(
            f"  MLflow alias {fix.model}@{fix.alias}: {fix.before or '-'} -> {fix.after or '(removed)'}"
        )
    again = sync_aliases(ctx.settings, [model])
    ctx.console.print(f"  aliases sync again: fixed {len(again.fixed)} (idempotent)")
    with repo.session():
        report_v = validate_tree(repo.work, ctx.settings.crd_schema_dir())
    for t in report_v.targets:
        ctx.console.print(
            f"  validate {t.path}: {t.resources} resources, {len(t.problems)} problems"
        )
    ctx.console.print(f"  promtool: {report_v.promtool}; {report_v.seconds} s")
    if not report_v.ok:
        raise BadInputError(
            "manifests of the GitOps repository do not validate",
            problems=[f"{p.target} {p.resource}: {p.message}" for p in report_v.all_problems()],
        )
    return {
        "model": model,
        "versions": [v1, v2],
        "status": status,
        "aliases_fixed": [f.model_dump() for f in aliases.fixed],
        "validate_ok": report_v.ok,
        "remote": repo.remote,
    }


STEP = DemoStep(order=60, name="gitops", title="GitOps: PRs, canary, rollback, status", run=run)
