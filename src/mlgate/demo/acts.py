"""What several demo chapters do the same way: gate a version for an environment and promote it
by a reviewed PR, train one more version, find or build a version's image.

Each is a sequence of library calls (`gates.run`, `gitops.promote`, `gitops.pr`,
`training.train`, `records.builds`, `packaging.build`) and the lines that tell it: the
story line on the terminal (`ctx.say`), the gate table in the log (`ctx.console`).

Break-glass: a report short of PASS promotes only with `--override-gates` and the failing gates
as the written reason (two approvers), and the report still travels with the commit. `--fast`
(a 20k world) has too few recent applications and too small groups for the drift and fairness
minimums, so stage and prod go break-glass there; the full world passes on the merits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from mlgate.data.label_bias import LabelBias
from mlgate.demo import DemoContext
from mlgate.gates.result import GateReport, GateStatus
from mlgate.gates.run import run_gates_for_model
from mlgate.gitops import pr as prmod
from mlgate.gitops.evidence import load_report
from mlgate.gitops.promote import promote
from mlgate.gitops.status import stable_version
from mlgate.packaging import registry
from mlgate.packaging.build import build_model_image
from mlgate.records.builds import read_record
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, ModelConfig, load_model_config
from mlgate.training.registry import connect, resolve_version
from mlgate.training.train import train_model

APPROVERS = ["model-risk-officer", "head-of-credit-risk"]
FAST_N = 20_000  # applications in the world of `--fast` (the demo's test)
FULL_N = 100_000
COLOR = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}


def world_size(ctx: DemoContext) -> int:
    return FAST_N if ctx.fast else FULL_N


def field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def model_name(ctx: DemoContext) -> str:
    """The demo's model: the training step's, else the default model config's."""
    return str(
        field(ctx.results.get("train"), "model") or load_model_config(DEFAULT_MODEL_CONFIG).name
    )


def trained(ctx: DemoContext) -> tuple[str, str]:
    """(model, version) the training step registered; run alone (`--only`), the registry's
    `challenger` alias."""
    train = ctx.results.get("train")
    model = field(train, "model") or load_model_config(DEFAULT_MODEL_CONFIG).name
    version = field(train, "version")
    if version:
        return str(model), str(version)
    mv = resolve_version(connect(ctx.settings), str(model), "challenger")
    ctx.say(f"[yellow]no training result in this run: {model}@challenger is v{mv.version}[/]")
    return str(model), str(mv.version)


def image(ctx: DemoContext, model: str, version: str) -> str:
    """The version's model-server image: its build record, else built and pushed now (what
    `mlgate image build` does). Every version the story promotes is pinned by the image that
    serves it; the base and wheel layers are shared, so a later version's build is seconds."""
    rec = read_record(ctx.settings, model, version)
    if rec is not None:
        return rec.image
    started = not registry.answering(ctx.settings.registry.address)
    if started:
        registry.up(ctx.settings)
    try:
        with ctx.progress(f"building v{version}'s model-server image") as say:
            rec = build_model_image(ctx.settings, model, version, progress=say)
    finally:
        if started:
            registry.down(ctx.settings)
    ctx.console.print(f"  v{version}'s model-server image {rec.reference} ({rec.digest[:19]})")
    return rec.image


def _reusable(ctx: DemoContext, model: str, version: str, env: str, champion: str | None) -> Any:
    """The gates step's report when it is exactly this comparison (dev, v1, no champion)."""
    d = field(ctx.results.get("gates"), "report_dir")
    if not d or not (Path(str(d)) / "report.json").is_file():
        return None
    rep = load_report(Path(str(d)))
    if (rep.model, rep.challenger, rep.env, rep.champion) == (model, version, env, champion):
        return rep
    return None


def override_reason(report: GateReport) -> str:
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


def print_gates(ctx: DemoContext, report: GateReport) -> None:
    for g in report.gates:
        ctx.console.print(f"    {g.name:<17} {g.status.value:<12} {g.summary}", markup=False)


def gates(
    ctx: DemoContext, model: str, version: str, env: str
) -> tuple[Path, str, str | None, GateReport]:
    """Run the gates for `env` (champion from git); -> (report dir, overall, override reason,
    the report)."""
    champion = stable_version(ctx.settings, model, env)
    vs = f"vs champion v{champion}" if champion else "first version, held to the floors"
    reused = _reusable(ctx, model, version, env, champion)
    if reused is not None:
        doc = GateReport.model_validate_json(Path(reused.path).read_text())
        report_dir = Path(reused.path).parent
    else:
        with ctx.progress(f"gates v{version} -> {env}") as say:
            doc, paths = run_gates_for_model(
                ctx.settings,
                model=model,
                challenger=version,
                env=env,
                champion=champion,
                evidently=not ctx.fast,  # Evidently's HTML costs ~10 s a run: full demo only
                say=say,
            )
        report_dir = paths["report.json"].parent
    overall = doc.overall.value
    failing = [g.name for g in doc.gates if g.status != GateStatus.PASS]
    ctx.say(
        f"  gates v{version} -> {env} ({vs}): [{COLOR[overall]}]{overall}[/]"
        + (" (warn-only)" if not doc.enforced else "")
        + (f", not passing: {', '.join(failing)}" if failing else "")
    )
    ctx.console.print(f"    report {report_dir}")
    print_gates(ctx, doc)
    return report_dir, overall, None if overall == "PASS" else override_reason(doc), doc


def merge(ctx: DemoContext, pr: prmod.PullRequest, approvers: list[str]) -> str:
    res = prmod.merge_pr(ctx.settings, pr.branch, approvers)
    who = ", ".join(res.approvers)
    ctx.say(f"  merged {escape(pr.subject)} ({res.commit[:10]}, approved by {escape(who)})")
    return res.commit


def promote_env(
    ctx: DemoContext, model: str, version: str, env: str, image_ref: str
) -> dict[str, Any]:
    """Gate `version` for `env` and promote it by a PR merged with approvals (break-glass, two
    approvers, when the gates do not PASS)."""
    report, overall, reason, _doc = gates(ctx, model, version, env)
    if reason is not None:
        ctx.say(
            f"  [bold yellow]break-glass[/] {env}: gates {overall}; promoted with the reason "
            "written into the commit, two approvers"
        )
        ctx.console.print(f"    {reason}", markup=False)
    pr = promote(ctx.settings, model, version, env, report, image=image_ref, override_reason=reason)
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    commit = merge(ctx, pr, APPROVERS if reason else APPROVERS[:1])
    return {
        "version": version,
        "env": env,
        "overall": overall,
        "report_dir": str(report),
        "override_reason": reason,
        "commit": commit,
    }


def train_variant(
    ctx: DemoContext, what: str, label_bias: LabelBias | None = None, **changes: Any
) -> str:
    """Train and register one more version: the model config with `changes` applied, its
    labels biased on purpose when `label_bias` says so (`data.label_bias`)."""
    base = load_model_config(DEFAULT_MODEL_CONFIG)
    cfg = ModelConfig.model_validate({**base.model_dump(), **changes}).model_copy(
        update={"source_file": base.source_file}
    )
    with ctx.progress(f"training {what}") as say:
        result = train_model(ctx.settings, cfg, label_bias=label_bias, progress=say)
    m = result.metrics
    ctx.say(
        f"{what}: {result.model} v{result.version} ({result.algorithm}): out-of-time AUC "
        f"{m.auc:.3f}, KS {m.ks:.3f}"
    )
    ctx.console.print(f"  params {cfg.params}, run {result.run_id}, Brier {m.brier:.4f}")
    return str(result.version)
