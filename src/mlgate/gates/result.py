"""Gate results: what every gate returns and what a whole gate run adds up to.

A gate never answers with a bare boolean. It says PASS, FAIL or INCONCLUSIVE (fail closed:
missing data, too few samples or a crash are INCONCLUSIVE, never PASS), why, and the numbers
behind the verdict, so a reviewer can check the decision without re-running anything.
`report.json` is the serialised `GateReport`; the promotion tooling reads its top-level keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class GateStatus(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


class GateResult(BaseModel):
    """One gate's verdict, its reasons and its numbers."""

    name: str
    status: GateStatus
    blocking: bool = True
    summary: str = ""
    reasons: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)  # headline numbers (scalars)
    details: dict[str, Any] = Field(default_factory=dict)  # tables: per band/feature/group

    @classmethod
    def inconclusive(cls, name: str, *reasons: str, **metrics: Any) -> GateResult:
        return cls(
            name=name,
            status=GateStatus.INCONCLUSIVE,
            summary=reasons[0] if reasons else "inconclusive",
            reasons=list(reasons),
            metrics=metrics,
        )


def worst(statuses: list[GateStatus]) -> GateStatus:
    """FAIL beats INCONCLUSIVE beats PASS: one bad gate is enough to stop a promotion."""
    if GateStatus.FAIL in statuses:
        return GateStatus.FAIL
    if GateStatus.INCONCLUSIVE in statuses:
        return GateStatus.INCONCLUSIVE
    return GateStatus.PASS


ReportKind = Literal["promotion", "canary-analysis", "shadow-analysis"]


class CanaryRun(BaseModel):
    """Which canary a canary analysis judged: the commit on main that started it, when, the
    weight it ran at and the decision. A promotion of the canary checks these against git, so
    an analysis of an earlier canary (or a report made before this one started) is refused."""

    start_commit: str
    started: str  # ISO time of that commit
    weight: int
    decision: str  # advance | promote | wait | abort


class GateReport(BaseModel):
    """A whole gate run: the decision that counts (`overall`) and every gate's result.

    `overall` is the enforced decision: PASS only if every blocking gate passes. In an
    environment whose policy is warn-only (dev) no gate blocks, so `overall` is PASS and the
    problems appear in `warnings`; `verdict` is always the unenforced worst status of all gates.
    """

    model: str
    challenger: str
    champion: str | None = None
    env: str
    overall: GateStatus
    verdict: GateStatus
    enforced: bool = True
    warnings: list[str] = Field(default_factory=list)
    gates: list[GateResult] = Field(default_factory=list)
    policy_file: str | None = None
    policy: dict[str, Any] = Field(default_factory=dict)  # the effective policy for this env
    data: dict[str, Any] = Field(default_factory=dict)  # row counts, windows, samples used
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    # What a promotion checks the report against (mlgate.gates.verify): which kind of judgement
    # it is, the policy it was judged under (GatePolicy.digest) and the version's data.
    kind: ReportKind = "promotion"
    policy_sha256: str | None = None
    data_fingerprint: str | None = None
    canary: CanaryRun | None = None

    @property
    def exit_code(self) -> int:
        return {GateStatus.PASS: 0, GateStatus.FAIL: 1, GateStatus.INCONCLUSIVE: 3}[self.overall]

    def gate(self, name: str) -> GateResult:
        for g in self.gates:
            if g.name == name:
                return g
        raise KeyError(name)
