"""Selection-bias gate: the swap set.

Outcomes exist only where the bank approved. Applicants the challenger would approve but the
bank declined (swap-ins) have no outcome, so every metric on the labelled holdout is silent
about them; applicants the challenger declines that the bank approved (swap-outs) are the
ones whose outcomes we do see. What a promotion adds is the unobserved part: swap-ins the
champion would not approve either (for a first version: all swap-ins vs the bank). The P&L values swap-ins conservatively (parcelling: a multiple
of the observed default rate in their score band, or the worst band's rate; see
decisions.unknown_default_rate). When swap-ins are more than the
policy's share of the challenger's approvals, too much of the decision rests on outcomes
nobody observed: INCONCLUSIVE (reject inference or a controlled test is needed first).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlgate.gates.decisions import Cutoffs, approve, unknown_default_rate
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import GateInputs, gate
from mlgate.gates.result import GateResult, GateStatus

NAME = "swap"


def swap_counts(
    approve_model: np.ndarray, bank_approved: np.ndarray, approve_champion: np.ndarray | None
) -> dict[str, Any]:
    """Swap set vs the bank's decisions, and the part of it a promotion adds.

    `unobserved_swap_ins`: approvals with no outcome that the current strategy would not make,
    i.e. declined by the bank and (when there is one) by the champion too. Their share of the
    challenger's approvals is what the gate limits.
    """
    swap_in = approve_model & ~bank_approved
    swap_out = ~approve_model & bank_approved
    new_unobserved = swap_in if approve_champion is None else swap_in & ~approve_champion
    n_app = int(approve_model.sum())
    out: dict[str, Any] = {
        "challenger_approvals": n_app,
        "bank_approvals": int(bank_approved.sum()),
        "swap_ins": int(swap_in.sum()),
        "swap_outs": int(swap_out.sum()),
        "unobserved_swap_ins": int(new_unobserved.sum()),
        "swap_in_share": float(new_unobserved.sum() / n_app) if n_app else 0.0,
    }
    if approve_champion is not None:
        out["vs_champion_swap_ins"] = int((approve_model & ~approve_champion).sum())
        out["vs_champion_swap_outs"] = int((~approve_model & approve_champion).sum())
    return out


def swap_gate(data: HoldoutScores, policy: GatePolicy, cutoffs: Cutoffs) -> GateResult:
    pol = policy.swap
    if data.bank_approved is None:
        return GateResult.inconclusive(
            NAME, "the bank's historical decisions are unknown: selection bias cannot be measured"
        )
    if len(data) == 0:
        return GateResult.inconclusive(NAME, "empty holdout")
    if not np.isfinite(data.pd_challenger).all():
        return GateResult.inconclusive(NAME, "holdout rows without a challenger PD")
    bank = np.asarray(data.bank_approved, dtype=bool)
    chal = approve(data.pd_challenger, cutoffs.challenger)
    champ = (
        approve(data.pd_champion, cutoffs.champion)
        if data.pd_champion is not None and cutoffs.champion is not None
        else None
    )
    counts = swap_counts(chal, bank, champ)
    rates = unknown_default_rate(data, policy)
    swapped_in = chal & ~bank
    counts["swap_in_valuation"] = policy.swap.valuation
    counts["swap_in_assumed_default_rate"] = (
        float(rates[swapped_in].mean()) if swapped_in.any() else None
    )
    counts["max_swap_in_share"] = pol.max_swap_in_share
    share = counts["swap_in_share"]
    summary = (
        f"swap-ins {counts['swap_ins']}, swap-outs {counts['swap_outs']} vs the bank; "
        f"{counts['unobserved_swap_ins']} new approvals without outcome "
        f"({share:.1%} of approvals)"
    )
    if share > pol.max_swap_in_share:
        return GateResult(
            name=NAME,
            status=GateStatus.INCONCLUSIVE,
            blocking=pol.blocking,
            summary=summary + f": above the {pol.max_swap_in_share:.0%} limit",
            reasons=[
                f"{counts['unobserved_swap_ins']} approvals ({share:.1%}) were declined by the "
                f"bank{' and the champion' if champ is not None else ''} and have no outcome "
                f"(limit {pol.max_swap_in_share:.0%}): needs reject inference or a controlled test"
            ],
            metrics=counts,
        )
    return GateResult(
        name=NAME, status=GateStatus.PASS, blocking=pol.blocking, summary=summary, metrics=counts
    )


@gate("swap", needs=("holdout", "cutoff"), section="swap", order=60)
def _run(inputs: GateInputs, policy: GatePolicy) -> GateResult:
    return swap_gate(inputs.the_holdout(), policy, inputs.the_cutoffs())
