"""Run the policy's gates on one run's inputs: the gates `gates run` and the pipeline share.

Each gate is a pure function registered in `mlgate.gates.registry`; this runner chooses the
cut-off decisions once (the served cut-off is already resolved into the policy by
`gates.run.gather`), runs the gates the policy applies in the target environment (a crash
inside a gate is INCONCLUSIVE, never a pass) and hands the results to the one assembler,
`mlgate.gates.verdict.assemble`, which makes the decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlgate.gates.decisions import choose_cutoffs
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import GateInputs, crashed, run_gate
from mlgate.gates.result import GateReport, GateResult
from mlgate.gates.verdict import assemble


def gate_inputs(
    holdout: HoldoutScores | None,
    drift: DriftData | None,
    policy: GatePolicy,
    why_missing: dict[str, str] | None = None,
    recent: HoldoutScores | None = None,
) -> GateInputs:
    """The inputs every gate of a run reads, with the cut-off decisions chosen once on the
    holdout (`policy` is the environment's, its served cut-off resolved)."""
    inputs = GateInputs(holdout, drift, recent, None, dict(why_missing or {}))
    if holdout is not None and len(holdout) and "cutoff" not in inputs.why_missing:
        inputs.cutoffs = choose_cutoffs(holdout, policy)
    return inputs


def evaluate_gates(
    names: list[str],
    inputs: Callable[[], GateInputs],
    policy: GatePolicy,
    on_gate: Callable[[str], None] | None = None,
) -> list[GateResult]:
    """Each named gate on the inputs; inputs that cannot be built (e.g. choosing the cut-off
    crashed) make every gate INCONCLUSIVE with that error."""
    try:
        built = inputs()
    except Exception as exc:  # noqa: BLE001 - fail closed
        return [crashed(name, exc, "gate set-up crashed") for name in names]
    out = []
    for name in names:
        if on_gate:
            on_gate(name)
        out.append(run_gate(name, built, policy))
    return out


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

    `why_missing` ({"holdout": reason, "drift": reason, "cutoff": reason}) says why data is
    None (e.g. the champion could not be loaded); the affected gates are INCONCLUSIVE with it.
    """
    eff = policy.for_env(env)
    results = evaluate_gates(
        eff.gates_for(env),
        lambda: gate_inputs(holdout, drift, eff, why_missing, recent),
        eff,
        on_gate,
    )
    return assemble(
        model=model,
        challenger=challenger,
        champion=champion,
        env=env,
        policy=policy,
        results=results,
        data_info=data_info,
    )
