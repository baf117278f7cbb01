"""Every change to a model's overlays on main is an mlgate commit: its trailers parse (the one
parser, `records.trailers.parse_message`) and its diff stays in the environment they name."""

from __future__ import annotations

from mlgate.audit.verify import CommitContext, Gap, register_check

CHECK = "trailers"


@register_check(CHECK, about="trailers parse; no model overlay changed outside a named change")
def trailers_parse(ctx: CommitContext) -> list[Gap]:
    c = ctx.commit
    if c.trailer_error:
        return [ctx.gap(CHECK, f"trailers do not parse: {c.trailer_error}")]
    t = c.trailers
    touched = sorted(c.overlays)
    if t is None:
        where = ", ".join(f"{m}/{e}" for m, e in touched) or ", ".join(c.model_paths)
        model, env = touched[0] if len(touched) == 1 else (None, None)
        return [
            ctx.gap(
                CHECK,
                f"changes {where} without mlgate trailers: not a reviewed mlgate change (no "
                "lineage, no gate report, no approvals)",
                model=model,
                env=env,
            )
        ]
    foreign = [f"{m}/{e}" for m, e in touched if (m, e) != (t.model, t.environment)]
    if foreign:
        return [
            ctx.gap(
                CHECK,
                f"also changes {', '.join(foreign)}, which its trailers do not name "
                f"({t.model}/{t.environment})",
            )
        ]
    return []
