"""Demo step 80: the audit trail a model-risk reviewer reads at the end of the lifecycle.

What runs in prod now and how it got there (`mlgate audit lineage --env prod`: versions and
weights, the change that made each run, who wrote, approved and merged it, its gate report
verified against the stored hash, image, MLflow run, data fingerprint), then every change on
main re-checked by every registered check (`mlgate audit verify`). The demo's history must be
clean: every promoted version's image is in the registry (each is built when first
promoted, `demo.acts.image`) and every report verifies
under the policy its merge recorded (`Gate-Policy:`). A gap is printed and stops the demo
(exit 1), as `audit verify` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.markup import escape

from mlgate.audit.lineage import VersionFacts, lineage_at
from mlgate.audit.verify import verify_history
from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import GateFailed, MlgateError
from mlgate.gitops.status import read_status
from mlgate.packaging import registry


def _facts(v: VersionFacts) -> str:
    e = v.entered
    if e is None:
        return f"{v.role} {v.version} ({v.traffic}%): no change on main names its entry"
    report = e.gate_report
    evidence = (
        "no gate report needed"
        if report is None
        else f"gate report {(report.sha256 or 'none')[:12]} "
        + ("verified" if report.verified else f"NOT verified: {report.problem}")
    )
    return (
        f"{v.role} {v.version} ({v.traffic}%): {e.change} {e.commit[:10]} by {e.author}, "
        f"approved by {', '.join(e.approved_by) or 'nobody'}, merged by {e.merged_by}; "
        f"{evidence}; image {v.image}; MLflow run {v.mlflow.run_id}, data "
        f"{v.mlflow.data_fingerprint}"
    )


def run(ctx: DemoContext) -> dict[str, Any]:
    now = datetime.now(UTC)
    lineage = []
    for ms in read_status(ctx.settings).models:
        if "prod" not in ms.envs:
            continue
        res = lineage_at(ctx.settings, ms.model, "prod", now)
        lineage.append(res.model_dump(mode="json"))
        ctx.say(f"[bold]mlgate audit lineage --model {ms.model} --env prod[/]")
        for v in (res.stable, res.canary):
            if v is not None:
                ctx.say(f"  {escape(_facts(v))}")
    # The fast demo stops the loopback registry after the image step; verify needs it to say
    # whether each pinned image is there, so it runs for the check and stops again after.
    started = not registry.answering(ctx.settings.registry.address)
    if started:
        try:
            registry.up(ctx.settings)
        except MlgateError as exc:
            started = False
            ctx.console.print(f"[yellow]registry not started ({exc}): image checks report it[/]")
    try:
        with ctx.progress("mlgate audit verify"):
            result = verify_history(ctx.settings)
    finally:
        if started:
            registry.down(ctx.settings)
    checks = ", ".join(c.name for c in result.checks)
    ctx.say(
        f"[bold]mlgate audit verify[/]: {result.changes_checked} changes on main, checks {checks}: "
        + ("[green]clean[/]" if result.clean else f"[yellow]{len(result.gaps)} gaps[/]")
    )
    for g in result.gaps:
        ctx.say(f"  {escape((g.commit or '')[:10])} {escape(g.check)}: {escape(g.message)}")
    if not result.clean:
        raise GateFailed(
            f"mlgate audit verify: {len(result.gaps)} gaps in the demo's history",
            problems=[f"{(g.commit or '')[:10]} {g.check}: {g.message}" for g in result.gaps],
        )
    return {"lineage": lineage, "verify": result.model_dump(mode="json")}


STEP = DemoStep(
    order=80,
    name="audit",
    title="Audit: lineage of prod, every change re-checked",
    run=run,
    chapter=5,
)
