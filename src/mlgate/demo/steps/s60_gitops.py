"""Demo step: GitOps on the embedded default, each promotion decided by the gates.

The trained version goes dev -> stage -> prod by pull requests in the workspace's GitOps
repository. Before each promotion the step runs the gates for that environment (challenger vs
the champion git says runs stable there) and promotes with that report when it PASSes. Only a
report short of PASS takes the break-glass path (`--override-gates` with the failing gates as the
written reason, two approvers), and the report still travels with the commit. `--fast` (a 20k
world) has too few recent applications and too small groups for the drift and fairness
minimums, so stage and prod go break-glass there; the full world passes on the merits.

A second version is a routine retrain through the library (the model config with its
regularisation retuned): it is gated against v1 per environment and enters prod as a canary,
whose weight is raised, which is judged by `canary analyze` on a year of replayed applications
(promoted on that verdict when it says PROMOTE, else on the prod gate report), rolled back
(git revert) and aborted. A third,
misconfigured candidate (a one-split tree) shows the stage gates blocking: `promote` refuses its
FAIL report and the GitOps remote is left untouched. Then status, MLflow aliases and manifest
validation.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from rich.table import Table

from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import BadInputError, Inconclusive
from mlgate.gates.result import GateReport, GateStatus
from mlgate.gates.run import run_gates_for_model
from mlgate.gitops import canary
from mlgate.gitops import pr as prmod
from mlgate.gitops.aliases import sync_aliases
from mlgate.gitops.evidence import load_report
from mlgate.gitops.overlay import ENVS
from mlgate.gitops.pr import Refused
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.rollback import rollback
from mlgate.gitops.status import read_status, stable_version
from mlgate.gitops.validate import validate_tree
from mlgate.packaging import registry
from mlgate.packaging.stand_in import push_stand_in
from mlgate.records.builds import read_record
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, ModelConfig, load_model_config
from mlgate.training.train import train_model

APPROVERS = ["model-risk-officer", "head-of-credit-risk"]
RETRAIN_C = 1.0  # v2: the routine retrain retunes the L2 strength (config: C 0.5)
# v3: a misconfigured candidate (a single one-split tree), to show a gate blocking it
BAD_CANDIDATE = {
    "algorithm": "hist_gradient_boosting",
    "params": {"max_iter": 1, "max_depth": 1, "early_stopping": False},
}
COLOR = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}
REPLAY_DAYS = 365  # the canary analysis replays this much of the newest applications


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
    """The version's image build record; without one (the fast demo builds only the first
    version's image), a small labelled stand-in image of the model version, really pushed to
    the loopback registry and recorded like a build (`packaging.stand_in`): a promotion pins
    only what is recorded for the version, and what it pins must exist in the registry."""
    rec = read_record(ctx.settings, model, version)
    if rec is not None:
        return rec.image
    mv = _client(ctx).get_model_version(model, version)
    started = not registry.answering(ctx.settings.registry.address)
    if started:
        registry.up(ctx.settings)
    try:
        rec = push_stand_in(ctx.settings, model, version, str(mv.run_id), str(mv.source))
    finally:
        if started:
            registry.down(ctx.settings)
    ctx.console.print(
        f"[yellow]no image was built for {model} {version} in this workspace: pushed a labelled "
        f"stand-in image {rec.image} (not a model server; `mlgate image build` makes one)[/]"
    )
    return rec.image


def _reusable(ctx: DemoContext, model: str, version: str, env: str, champion: str | None) -> Any:
    """The gates step's report when it is exactly this comparison (dev, v1, no champion)."""
    d = _field(ctx.results.get("gates"), "report_dir")
    if not d or not (Path(str(d)) / "report.json").is_file():
        return None
    rep = load_report(Path(str(d)))
    if (rep.model, rep.challenger, rep.env, rep.champion) == (model, version, env, champion):
        return rep
    return None


def _override_reason(report: GateReport) -> str:
    """The written break-glass reason: which blocking gates did not pass, and why."""
    parts = [
        f"{g.name} {g.status.value}: {g.summary}"
        for g in report.gates
        if g.blocking and g.status != GateStatus.PASS
    ]
    return (
        f"demo break-glass: {report.env} gates {report.overall.value} "
        f"({'; '.join(parts) or 'no gate result'})"
    )


def _gates(ctx: DemoContext, model: str, version: str, env: str) -> tuple[Path, str, str | None]:
    """Run the gates for `env` (champion from git); -> (report dir, overall, override reason)."""
    champion = stable_version(ctx.settings, model, env)
    vs = f"vs champion {champion}" if champion else "first version, held to the floors"
    reused = _reusable(ctx, model, version, env, champion)
    if reused is not None:
        ctx.console.print(f"  gates {model} {version} -> {env} ({vs}): the gates step's report")
        doc = GateReport.model_validate_json(Path(reused.path).read_text())
        report_dir = Path(reused.path).parent
    else:
        with ctx.console.status(f"gates {model} {version} -> {env}") as status:
            doc, paths = run_gates_for_model(
                ctx.settings,
                model=model,
                challenger=version,
                env=env,
                champion=champion,
                evidently=not ctx.fast,  # Evidently's HTML costs ~10 s a run: full demo only
                say=lambda m: status.update(f"gates {model} {version} -> {env}: {m}"),
            )
        report_dir = paths["report.json"].parent
        ctx.console.print(f"  gates {model} {version} -> {env} ({vs}): {report_dir}")
    for g in doc.gates:
        ctx.console.print(
            f"    {g.name:<12} [{COLOR[g.status.value]}]{g.status.value:<12}[/] {g.summary}"
        )
    overall = doc.overall.value
    ctx.console.print(
        f"    overall [{COLOR[overall]}]{overall}[/]"
        + (" (warn-only environment)" if not doc.enforced else "")
    )
    return report_dir, overall, None if overall == "PASS" else _override_reason(doc)


def _merge(ctx: DemoContext, pr: prmod.PullRequest, approvers: list[str]) -> str:
    res = prmod.merge_pr(ctx.settings, pr.branch, approvers)
    ctx.console.print(
        f"  merged {pr.branch} -> {res.commit[:10]} (Approved-by: {', '.join(res.approvers)})"
    )
    return res.commit


def _promote(ctx: DemoContext, model: str, version: str, env: str, image: str) -> dict[str, Any]:
    report, overall, reason = _gates(ctx, model, version, env)
    if reason is not None:
        ctx.console.print(
            f"  [bold yellow]BREAK-GLASS[/] {env}: the gates say {overall}, not PASS; "
            "--override-gates with this reason (the report goes with the commit), "
            f"merge needs two approvers:\n    {reason}"
        )
    pr = promote(ctx.settings, model, version, env, report, image=image, override_reason=reason)
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    commit = _merge(ctx, pr, APPROVERS if reason else APPROVERS[:1])
    return {
        "version": version,
        "env": env,
        "overall": overall,
        "report_dir": str(report),
        "override_reason": reason,
        "commit": commit,
    }


def _train_variant(ctx: DemoContext, what: str, **changes: Any) -> str:
    """Train and register one more version: the model config with `changes` applied."""
    base = load_model_config(DEFAULT_MODEL_CONFIG)
    cfg = ModelConfig.model_validate({**base.model_dump(), **changes}).model_copy(
        update={"source_file": base.source_file}
    )
    with ctx.console.status(f"training {what}") as status:
        result = train_model(ctx.settings, cfg, progress=lambda m: status.update(m))
    m = result.metrics
    ctx.console.print(
        f"{what}: {result.model} v{result.version} ({result.algorithm} {cfg.params}), run "
        f"{result.run_id}: out-of-time AUC {m.auc:.3f}, KS {m.ks:.3f}, Brier {m.brier:.4f}"
    )
    return str(result.version)


def _refs(repo: GitopsRepo) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo.remote}", "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _blocked(ctx: DemoContext, repo: GitopsRepo, model: str) -> dict[str, Any]:
    """A bad candidate: the stage gates FAIL it and `promote` refuses, committing nothing."""
    version = _train_variant(ctx, "a misconfigured candidate", **BAD_CANDIDATE)
    report, overall, _reason = _gates(ctx, model, version, "stage")
    if overall == "PASS":
        raise BadInputError(f"{model} {version}: the stage gates passed a bad candidate")
    before = _refs(repo)
    try:
        promote(ctx.settings, model, version, "stage", report, image=_image(ctx, model, version))
    except (Refused, Inconclusive) as exc:
        refused = f"{type(exc).__name__} (exit {exc.exit_code}): {exc}"
    else:
        raise BadInputError(f"{model} {version}: promote accepted a {overall} gate report")
    unchanged = _refs(repo) == before
    ctx.console.print(
        f"  [bold red]blocked[/] mlgate promote {model} {version} -> stage: {refused}\n"
        f"  refs of the GitOps remote unchanged: {unchanged}"
    )
    return {
        "version": version,
        "overall": overall,
        "report_dir": str(report),
        "refused": refused,
        "refs_unchanged": unchanged,
    }


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


def _replayed_requests(ctx: DemoContext, model: str, days: int) -> Path:
    """The demo has no live traffic: the newest `days` of applications replayed as the request
    log (`mlgate canary replay`), split by the canary weight."""
    from mlgate.canary.replay import replay_requests

    return Path(replay_requests(ctx.settings, model, "prod", days).path)


def _canary_analysis(ctx: DemoContext, model: str) -> tuple[Any, Path]:
    """`mlgate canary analyze` on the replayed requests: the verdict and its report folder."""
    from mlgate.canary.run import analyze

    requests = _replayed_requests(ctx, model, REPLAY_DAYS)
    with ctx.console.status("canary analysis") as status:
        verdict, paths, _pr = analyze(
            ctx.settings,
            model=model,
            env="prod",
            requests=requests,
            say=lambda m: status.update(f"canary analysis: {m}"),
        )
    rep = verdict.report
    ctx.console.print(
        f"canary analysis of {rep.challenger} vs {rep.champion} on {REPLAY_DAYS} days of "
        f"replayed applications ({rep.data.get('canary_requests')} served by the canary):"
    )
    for g in rep.gates:
        ctx.console.print(
            f"    {g.name:<17} [{COLOR[g.status.value]}]{g.status.value:<12}[/] {g.summary}"
        )
    ctx.console.print(f"    decision [bold]{verdict.decision.upper()}[/]")
    return verdict, paths["report.json"].parent


def run(ctx: DemoContext) -> dict[str, Any]:
    model, v1 = _trained(ctx)
    image1 = _image(ctx, model, v1)
    repo = GitopsRepo.open(ctx.settings)
    ctx.console.print(f"GitOps remote: {repo.remote} (working clone {repo.work})")
    promotions = [_promote(ctx, model, v1, env, image1) for env in ENVS]

    v2 = _train_variant(
        ctx,
        "routine retrain",
        params={**load_model_config(DEFAULT_MODEL_CONFIG).params, "C": RETRAIN_C},
    )
    image2 = _image(ctx, model, v2)
    # into prod: a canary at the policy's initial weight next to v1
    promotions += [_promote(ctx, model, v2, env, image2) for env in ENVS]
    pr = canary.set_weight(ctx.settings, model, "prod", 50)
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS[:1])
    verdict, analysis_dir = _canary_analysis(ctx, model)
    prod = promotions[-1]
    if verdict.decision == "promote":
        from mlgate.canary.run import act_on

        reason = None
        pr = act_on(ctx.settings, verdict, analysis_dir)  # `canary analyze --act`
    else:
        ctx.console.print(
            f"canary promote: the analysis says {verdict.decision.upper()} on replayed traffic; "
            f"the demo promotes on the prod gate report of {v2} vs {v1} ({prod['overall']})"
        )
        reason = prod["override_reason"]
        pr = canary.promote_canary(
            ctx.settings, model, "prod", Path(prod["report_dir"]), override_reason=reason
        )
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS if reason else APPROVERS[:1])

    ctx.console.print("rollback: git revert of the canary promotion (version quarantined)")
    pr = rollback(ctx.settings, model, "prod", "demo: late-arriving defaults look worse")
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS[:1])
    pr = canary.abort(
        ctx.settings, model, "prod", "demo: quarantined version, all traffic to stable"
    )
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    _merge(ctx, pr, APPROVERS[:1])

    blocked = _blocked(ctx, repo, model)
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
        "promotions": promotions,
        "canary_analysis": {
            "decision": verdict.decision,
            "reasons": verdict.reasons,
            "report_dir": str(analysis_dir),
            "checks": {g.name: g.status.value for g in verdict.report.gates},
        },
        "blocked": blocked,
        "status": status,
        "aliases_fixed": [f.model_dump() for f in aliases.fixed],
        "validate_ok": report_v.ok,
        "remote": repo.remote,
    }


STEP = DemoStep(
    order=60, name="gitops", title="GitOps: gated PRs, retrain, canary, rollback", run=run
)
