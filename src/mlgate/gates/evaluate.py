"""Run the policy's gates and add them up: the one place the overall decision is made.

Each gate is a pure function; this runner calls the ones the policy applies in the target
environment, turns a crash inside a gate into INCONCLUSIVE (a crash is never a pass), and
computes the overall result: PASS only if every blocking gate passes. In a warn-only
environment (dev) no gate blocks: the overall result is PASS and the problems are warnings.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.gates.calibration import calibration_gate
from mlgate.gates.decisions import choose_cutoffs
from mlgate.gates.drift import drift_gate
from mlgate.gates.fairness import fairness_gate
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.performance import performance_gate
from mlgate.gates.pnl import pnl_gate
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateReport, GateResult, GateStatus, worst
from mlgate.gates.swap import swap_gate


def guarded(name: str, fn: Callable[[], GateResult]) -> GateResult:
    """Run one gate; an exception becomes INCONCLUSIVE with the error as its reason."""
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - fail closed on anything
        return GateResult(
            name=name,
            status=GateStatus.INCONCLUSIVE,
            summary=f"gate crashed: {type(exc).__name__}: {exc}",
            reasons=[f"gate crashed: {type(exc).__name__}: {exc}"],
            details={"traceback": traceback.format_exc(limit=5)},
        )
    if not isinstance(result, GateResult):
        return GateResult.inconclusive(name, f"gate returned {type(result).__name__}")
    return result


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


def _holdout_floors(h: HoldoutScores, policy: GatePolicy, defaults: bool) -> list[Shortfall]:
    window = h.window or "holdout window"
    labelled = int(h.labelled.sum())
    s = policy.samples
    out = [Shortfall(window, "labelled rows", labelled, s.min_labelled, "min_labelled")]
    if defaults:
        n_def = int(np.nansum(h.y[h.labelled] == 1))
        out.append(Shortfall(window, "defaults", n_def, s.min_defaults, "min_defaults"))
    return out


def sample_floors(
    name: str,
    holdout: HoldoutScores | None,
    drift: DriftData | None,
    recent: HoldoutScores | None,
    policy: GatePolicy,
) -> list[Shortfall]:
    """Each window a gate judges, with its rows and floor, and only those below the floor.

    The gates check their own minimums; this names the window (which days, which months) so a
    reason says what to widen: "fairness: recent window (last 90 days) has 37 rows, floor 200".
    A gate is registered here by name with the windows it reads.
    """
    s = policy.samples
    checks: list[Shortfall] = []
    if holdout is not None and name in ("performance", "calibration", "pnl"):
        checks += _holdout_floors(holdout, policy, defaults=name != "pnl")
    if drift is not None and name == "drift":
        checks.append(
            Shortfall(
                "drift reference (the challenger's training set)",
                "rows",
                len(drift.reference),
                s.min_reference,
                "min_reference",
            )
        )
        checks.append(
            Shortfall(
                drift.window or "current window",
                "rows",
                len(drift.current),
                s.min_current,
                "min_current",
            )
        )
    if recent is not None and name == "fairness":
        window = recent.window or "recent window"
        checks.append(Shortfall(window, "rows", len(recent), s.min_recent, "min_recent"))
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


def gate_functions(
    holdout: HoldoutScores | None,
    drift: DriftData | None,
    policy: GatePolicy,
    why_missing: dict[str, str] | None = None,
    recent: HoldoutScores | None = None,
) -> dict[str, Callable[[], GateResult]]:
    """The gates by name, bound to their data. Missing data -> an INCONCLUSIVE gate.

    `recent`: the newest applications scored by both models (no outcomes), for the fairness of
    the decisions the challenger would make next."""
    why = why_missing or {}

    def missing(name: str, what: str) -> Callable[[], GateResult]:
        key = "drift" if name == "drift" else "holdout"
        return lambda: GateResult.inconclusive(name, why.get(key) or f"no {what}")

    fns: dict[str, Callable[[], GateResult]] = {}
    if holdout is None:
        for name in ("performance", "calibration", "fairness", "pnl", "swap"):
            fns[name] = missing(name, "holdout data")
    else:
        h = holdout
        cut = choose_cutoffs(h, policy) if len(h) else None

        def with_cut(fn: Callable[..., GateResult], name: str) -> Callable[[], GateResult]:
            if cut is None:
                return missing(name, "holdout rows")
            return lambda: fn(h, policy, cut)

        fns["performance"] = lambda: performance_gate(h, policy)
        fns["calibration"] = lambda: calibration_gate(h, policy)
        fns["fairness"] = (
            (lambda: fairness_gate(h, policy, cut, recent))
            if cut is not None
            else missing("fairness", "holdout rows")
        )
        fns["pnl"] = with_cut(pnl_gate, "pnl")
        fns["swap"] = with_cut(swap_gate, "swap")
    if drift is None:
        fns["drift"] = missing("drift", "reference/current window")
    else:
        d = drift
        fns["drift"] = lambda: drift_gate(d, policy)
    return fns


def run_gates(
    *,
    model: str,
    challenger: str,
    champion: str | None,
    env: str,
    policy: GatePolicy,
    holdout: HoldoutScores | None,
    drift: DriftData | None,
    data_info: dict[str, Any] | None = None,
    why_missing: dict[str, str] | None = None,
    on_gate: Callable[[str], None] | None = None,
    recent: HoldoutScores | None = None,
) -> GateReport:
    """All gates the policy applies in `env` -> one GateReport.

    `why_missing` ({"holdout": reason, "drift": reason}) says why data is None (e.g. the
    champion could not be loaded); the affected gates are INCONCLUSIVE with that reason.
    """
    eff = policy.for_env(env)
    names = eff.gates_for(env)
    results: list[GateResult] = []
    try:
        fns = gate_functions(holdout, drift, eff, why_missing, recent)
    except Exception as exc:  # noqa: BLE001 - e.g. choosing the cut-off crashed
        fns = {n: (lambda n=n, e=exc: _crash(n, e)) for n in names}  # type: ignore[misc]
    for name in names:
        if on_gate:
            on_gate(name)
        res = guarded(name, fns[name])
        results.append(with_floors(res, sample_floors(name, holdout, drift, recent, eff)))
    return assemble(
        model=model,
        challenger=challenger,
        champion=champion,
        env=env,
        policy=policy,
        results=results,
        data_info=data_info,
    )


def assemble(
    *,
    model: str,
    challenger: str,
    champion: str | None,
    env: str,
    policy: GatePolicy,
    results: list[GateResult],
    data_info: dict[str, Any] | None = None,
) -> GateReport:
    """Gate results -> the GateReport: each gate's blocking flag from the policy in `env`,
    `overall` from the blocking gates, `verdict` from all, the policy's digest and the data
    fingerprint recorded (what `mlgate.gates.verify` checks a promotion against)."""
    eff = policy.for_env(env)
    enforced = eff.enforced(env)
    for res in results:
        res.blocking = bool(getattr(eff, res.name).blocking and enforced)
    verdict = worst([r.status for r in results])
    overall = worst([r.status for r in results if r.blocking])
    warnings = [
        f"{r.name}: {r.status.value}: {r.summary}" for r in results if r.status != GateStatus.PASS
    ]
    return GateReport(
        model=model,
        challenger=challenger,
        champion=champion,
        env=env,
        overall=overall,
        verdict=verdict,
        enforced=enforced,
        warnings=warnings,
        gates=results,
        policy_file=policy.source_file,
        policy=eff.model_dump(mode="json", exclude={"environments"}),
        data=data_info or {},
        policy_sha256=policy.digest,
        data_fingerprint=(data_info or {}).get("data_fingerprint"),
    )


def _crash(name: str, exc: Exception) -> GateResult:
    return GateResult.inconclusive(name, f"gate set-up crashed: {type(exc).__name__}: {exc}")
