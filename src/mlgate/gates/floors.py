"""Sample floors: each window a gate reads, with its rows and the policy's floor.

The gates check their own minimums; this names the window (which days, which months) so a
reason says what to widen: "fairness: recent window (last 90 days) has 37 rows, floor 200".
Which windows a gate reads is part of its registration (`registry.gate(floors=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlgate.gates.result import GateResult, GateStatus

if TYPE_CHECKING:
    from mlgate.gates.policy import GatePolicy
    from mlgate.gates.registry import Floor, GateInputs


@dataclass(frozen=True)
class Shortfall:
    """A window with fewer rows than the policy's floor for a gate."""

    window: str
    what: str
    rows: int
    floor: int
    field: str

    def reason(self, gate: str) -> str:
        return (
            f"{gate}: {self.window} has {self.rows} {self.what}, floor {self.floor} "
            f"(samples.{self.field})"
        )


def sample_floors(
    floors: tuple[Floor, ...], inputs: GateInputs, policy: GatePolicy
) -> list[Shortfall]:
    """The windows among `floors` that hold fewer rows than the policy's floor."""
    s = policy.samples
    h, d, r = inputs.holdout, inputs.drift, inputs.recent
    checks: list[Shortfall] = []
    if h is not None:
        window = h.window or "holdout window"
        if "labelled" in floors:
            labelled = int(h.labelled.sum())
            checks.append(
                Shortfall(window, "labelled rows", labelled, s.min_labelled, "min_labelled")
            )
        if "defaults" in floors:
            n_def = int(np.nansum(h.y[h.labelled] == 1))
            checks.append(Shortfall(window, "defaults", n_def, s.min_defaults, "min_defaults"))
    if d is not None and "drift" in floors:
        checks.append(
            Shortfall(
                "drift reference (the challenger's training set)",
                "rows",
                len(d.reference),
                s.min_reference,
                "min_reference",
            )
        )
        checks.append(
            Shortfall(
                d.window or "current window", "rows", len(d.current), s.min_current, "min_current"
            )
        )
    if r is not None and "recent" in floors:
        checks.append(
            Shortfall(r.window or "recent window", "rows", len(r), s.min_recent, "min_recent")
        )
    return [c for c in checks if c.rows < c.floor]


def with_floors(result: GateResult, short: list[Shortfall]) -> GateResult:
    """Name the windows below their floors in the result; a PASS on too few rows is
    INCONCLUSIVE (fail closed), a FAIL stands (the rows there were enough to show a problem)."""
    if not short:
        return result
    lines = [s.reason(result.name) for s in short]
    status = GateStatus.INCONCLUSIVE if result.status == GateStatus.PASS else result.status
    summary = result.summary
    if status == GateStatus.INCONCLUSIVE:
        summary = "; ".join(lines)
    details = {
        **result.details,
        "sample_floors": [
            {"window": s.window, "what": s.what, "rows": s.rows, "floor": s.floor} for s in short
        ],
    }
    return result.model_copy(
        update={
            "status": status,
            "summary": summary,
            "reasons": lines + [r for r in result.reasons if r not in lines],
            "details": details,
        }
    )
