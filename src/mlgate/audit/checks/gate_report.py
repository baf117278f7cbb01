"""A change that made a version run (promote, canary promote) rests on a gate report that is
still in the store under the sha256 its commit names and verifies as of its merge
(`audit.asof.report_check`: the same verifier as `promote` and `pr merge`)."""

from __future__ import annotations

from mlgate.audit.asof import report_check
from mlgate.audit.verify import CommitContext, Gap, register_check

CHECK = "gate-report"


@register_check(CHECK, about="the stored gate report matches its hash and verifies")
def gate_report_verifies(ctx: CommitContext) -> list[Gap]:
    rc = report_check(ctx.settings, ctx.mainline, ctx.commit)
    if rc is None or rc.verified:
        return []
    name = rc.sha256 or "(none)"
    return [ctx.gap(CHECK, f"gate report {name}: {rc.problem}", rc.problems)]
