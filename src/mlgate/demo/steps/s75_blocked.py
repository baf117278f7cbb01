"""Demo step 75: a candidate trained on biased labels is stopped at the gates, and git says
what runs where.

v3 is trained on labels a biased collections process left: a share of 18-25-year-olds' good
loans recorded as defaults (`data.label_bias`, recorded with the version). Age is never a model
input, yet v3 learns its proxies. Measured on its own holdout, cut from the same labels, it
looks better than the champion (AUC, P&L). The stage gates FAIL it on fairness (the four-fifths
rule for age_band), `promote` refuses its report, and the GitOps remote's refs are exactly as
they were. Then `mlgate status` (from git alone), the MLflow aliases brought in line with git
(twice: the second finds nothing to fix) and every manifest of the GitOps repository
validated.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from mlgate.data.label_bias import LabelBias
from mlgate.demo import DemoContext, DemoStep, acts
from mlgate.errors import BadInputError, Inconclusive
from mlgate.gates.result import GateStatus
from mlgate.gitops.aliases import sync_aliases
from mlgate.gitops.pr import Refused
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.status import read_status, status_table
from mlgate.gitops.validate import validate_tree

# v3's labels: measured on the full world, 10% of the group's good loans made defaults is
# enough for the four-fifths rule to stop it while every other gate passes (AUC and P&L even
# look better on its own biased holdout).
BIAS = LabelBias(
    attribute="age_band",
    group="18-25",
    share=0.10,
    seed=7,
    why="a collections process that wrote off young borrowers' arrears as defaults",
)
LOOKS_BETTER = ("performance", "pnl")  # shown even when they pass: on its own data it looks fine


def _blocked(ctx: DemoContext, repo: GitopsRepo, model: str) -> dict[str, Any]:
    ctx.say(f"a candidate trained on biased labels: {BIAS.text()}")
    version = acts.train_variant(ctx, "a candidate trained on biased labels", label_bias=BIAS)
    report, overall, _reason, doc = acts.gates(ctx, model, version, "stage")
    if overall == "PASS":
        raise BadInputError(f"{model} {version}: the stage gates passed a biased candidate")
    for g in doc.gates:
        if g.status != GateStatus.PASS or g.name in LOOKS_BETTER:
            ctx.say(f"    {g.name} {g.status.value}: {escape(g.summary)}")
    before = repo.remote_refs()
    image = acts.image(ctx, model, version)
    try:
        promote(ctx.settings, model, version, "stage", report, image=image)
    except (Refused, Inconclusive) as exc:
        refused = f"{type(exc).__name__} (exit {exc.exit_code}): {exc}"
    else:
        raise BadInputError(f"{model} {version}: promote accepted a {overall} gate report")
    unchanged = repo.remote_refs() == before
    ctx.say(
        f"  [bold red]blocked[/] mlgate promote {model} {version} -> stage: "
        f"{escape(refused.splitlines()[0])}; GitOps remote unchanged: {unchanged}"
    )
    ctx.console.print(f"    {refused}", markup=False)
    return {
        "version": version,
        "label_bias": BIAS.text(),
        "overall": overall,
        "not_passing": {g.name: g.status.value for g in doc.gates if g.status != GateStatus.PASS},
        "report_dir": str(report),
        "refused": refused,
        "refs_unchanged": unchanged,
    }


def run(ctx: DemoContext) -> dict[str, Any]:
    model, _v1 = acts.trained(ctx)
    repo = GitopsRepo.open(ctx.settings)
    blocked = _blocked(ctx, repo, model)
    st = read_status(ctx.settings)
    if ctx.terminal is not None:
        ctx.terminal.print(status_table(st))
    ctx.console.print(status_table(st))
    aliases = sync_aliases(ctx.settings, [model])
    for fix in aliases.fixed:
        ctx.say(
            f"  MLflow alias {fix.model}@{fix.alias}: {fix.before or '-'} -> "
            f"{fix.after or '(removed)'}"
        )
    again = sync_aliases(ctx.settings, [model])
    ctx.console.print(f"  aliases sync again: fixed {len(again.fixed)} (idempotent)")
    with repo.session():
        report_v = validate_tree(repo.work, ctx.settings.crd_schema_dir())
    for t in report_v.targets:
        ctx.console.print(
            f"  validate {t.path}: {t.resources} resources, {len(t.problems)} problems"
        )
    ctx.say(
        f"manifests validate: {sum(t.resources for t in report_v.targets)} resources in "
        f"{len(report_v.targets)} overlays, {'OK' if report_v.ok else 'problems'}"
    )
    if not report_v.ok:
        raise BadInputError(
            "manifests of the GitOps repository do not validate",
            problems=[f"{p.target} {p.resource}: {p.message}" for p in report_v.all_problems()],
        )
    return {
        "blocked": blocked,
        "status": st.model_dump(mode="json"),
        "aliases_fixed": [f.model_dump() for f in aliases.fixed],
        "validate_ok": report_v.ok,
        "remote": repo.remote,
    }


STEP = DemoStep(
    order=75,
    name="blocked",
    title="A candidate trained on biased labels stopped at the gates; status, aliases, manifests",
    run=run,
    chapter=5,
)
