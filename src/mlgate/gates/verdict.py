"""The one place gate results become a GateReport: which gates a report must hold, which of
them block, and what they add up to.

Three judges produce reports: `gates run` (`evaluate.run_gates`), the training pipeline's
decision step (`pipelines.steps.gates.decide`, gate results from the per-gate tasks) and the canary
analysis (`canary.analysis.judge`); `gates.verify` re-derives a stored report with the same
function before a promotion rests on it. So they cannot disagree on the rules:
- a promotion report holds exactly the gates the policy applies in the environment
  (`GatePolicy.gates_for`), each blocking where its policy section blocks and the environment
  enforces (registry: `GateSpec.blocks`); a canary analysis holds `CANARY_CHECKS`, all blocking;
- a required gate with no result is INCONCLUSIVE ("missing evidence"), never PASS, and a report
  with no gate at all is INCONCLUSIVE;
- `overall` is the worst status of the blocking gates (PASS in warn-only dev, where nothing
  blocks), `verdict` the worst of all; the policy digest and data fingerprint are recorded.
"""

from __future__ import annotations

from typing import Any

from mlgate.gates.policy import PHASE_CHECKS, GatePolicy
from mlgate.gates.registry import spec
from mlgate.gates.result import CanaryRun, GateReport, GateResult, GateStatus, ReportKind, worst

# The checks a canary analysis runs (mlgate.canary.analysis.judge) and a shadow analysis
# (mlgate.canary.shadow.judge_shadow), every one blocking: the policy's phases name them.
CANARY_CHECKS = PHASE_CHECKS["canary"]
PHASE_OF: dict[str, str] = {"canary-analysis": "canary", "shadow-analysis": "shadow"}


def required_gates(kind: ReportKind, policy: GatePolicy, env: str) -> dict[str, bool]:
    """Gate name -> blocking, in report order, for a report of `kind` in `env`."""
    if kind in PHASE_OF:
        return dict.fromkeys(PHASE_CHECKS[PHASE_OF[kind]], True)
    eff = policy.for_env(env)
    enforced = eff.enforced(env)
    return {name: spec(name).blocks(eff) and enforced for name in eff.gates_for(env)}


def enforced(kind: ReportKind, policy: GatePolicy, env: str) -> bool:
    return kind in PHASE_OF or policy.for_env(env).enforced(env)


def missing_evidence(name: str) -> GateResult:
    return GateResult.inconclusive(
        name, f"no result for gate {name}: missing evidence is INCONCLUSIVE, never a pass"
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
    kind: ReportKind = "promotion",
    canary: CanaryRun | None = None,
) -> GateReport:
    """Gate results -> the GateReport (see the module docstring for the rules). Results for
    gates the policy does not require here are left out; the results are not modified."""
    want = required_gates(kind, policy, env)
    given = {r.name: r for r in results}
    gates = [
        (given.get(name) or missing_evidence(name)).model_copy(update={"blocking": blocks})
        for name, blocks in want.items()
    ]
    if gates:
        verdict = worst([g.status for g in gates])
        overall = worst([g.status for g in gates if g.blocking])
    else:
        verdict = overall = GateStatus.INCONCLUSIVE
    warnings = [
        f"{g.name}: {g.status.value}: {g.summary}" for g in gates if g.status != GateStatus.PASS
    ]
    if not gates:
        warnings.append(f"no gate applies in {env}: nothing was judged")
    eff = policy.for_env(env)
    data = dict(data_info or {})
    return GateReport(
        model=model,
        challenger=challenger,
        champion=champion,
        env=env,
        overall=overall,
        verdict=verdict,
        enforced=enforced(kind, policy, env),
        warnings=warnings,
        gates=gates,
        policy_file=policy.source_file,
        policy=eff.model_dump(mode="json", exclude={"environments"}),
        data=data,
        kind=kind,
        policy_sha256=policy.digest,
        data_fingerprint=data.get("data_fingerprint"),
        canary=canary,
    )
