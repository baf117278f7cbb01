"""Cut-offs and the decisions they make: shared by the P&L, fairness and swap gates.

Decline when PD >= cut-off (the same convention as the model config and the serving runtime).
The cut-off is credit policy: the one the target environment serves (its overlay in git,
resolved by gates.collect before the gates run), fixed in the gate policy, or chosen per model to
maximise profit on a validation window, the earliest part of the holdout, before the rest is touched; the P&L
is then judged on the remaining, later rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlgate.gates.calibration import calibration_table
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import CostModel, GatePolicy


@dataclass(frozen=True)
class Cutoffs:
    method: str
    challenger: float
    champion: float | None
    eval_mask: np.ndarray  # rows the P&L is judged on (all rows for a fixed cut-off)


def approve(pd_values: np.ndarray, cutoff: float) -> np.ndarray:
    return np.asarray(pd_values) < cutoff


def amounts(data: HoldoutScores, cost: CostModel) -> np.ndarray:
    if data.amount is None:
        return np.full(len(data), cost.default_amount)
    a = np.asarray(data.amount, dtype=float)
    return np.where(np.isfinite(a) & (a > 0), a, cost.default_amount)


def unknown_default_rate(data: HoldoutScores, policy: GatePolicy) -> np.ndarray:
    """Default rate assumed for each application without an outcome (swap-ins), by the
    policy's rule: parcelling (factor x the observed default rate of the labelled applicants in
    the same challenger score band, capped at 1) or the worst observed band's rate for all."""
    mask = data.labelled & np.isfinite(data.pd_challenger)
    n = len(data)
    if mask.sum() == 0:
        return np.ones(n)
    table = calibration_table(
        data.y[mask], data.pd_challenger[mask], policy.calibration.n_bands, 0.95
    )
    rates = table["observed_rate"].to_numpy()
    if policy.swap.valuation == "worst_band":
        return np.full(n, float(rates.max()))
    edges = table["pd_to"].to_numpy()[:-1]
    band = np.searchsorted(edges, np.nan_to_num(data.pd_challenger, nan=1.0), side="right")
    return np.minimum(1.0, policy.swap.parcelling_factor * rates[np.minimum(band, len(rates) - 1)])


def row_profit(
    approved: np.ndarray,
    y: np.ndarray,
    amount: np.ndarray,
    cost: CostModel,
    unknown_rate: np.ndarray | float,
) -> np.ndarray:
    """Profit per application under the cost model; unknown outcomes at `unknown_rate`.

    An application without an outcome is valued at the same assumed default rate whichever way
    it is decided: approved, the expected profit of the loan; declined, the expected forgone
    margin (1 - rate) x margin, as a known good decline costs its margin. Counting nothing for
    an unobserved decline would make declining the unknown look free and bias every comparison
    against the model that approves more of them, beyond the conservative rate itself."""
    good = amount * (cost.interest_margin - cost.funding_cost) - cost.operating_cost
    bad = -amount * (cost.lgd * cost.ead_share + cost.funding_cost) - cost.operating_cost
    forgone = -cost.forgone_margin_weight * amount * (cost.interest_margin - cost.funding_cost)
    known = np.isfinite(y)
    p_def = np.where(known, np.nan_to_num(y), unknown_rate)
    when_approved = (1 - p_def) * good + p_def * bad
    when_declined = (1 - p_def) * forgone
    return np.where(approved, when_approved, when_declined)


def best_cutoff(
    pd_values: np.ndarray,
    y: np.ndarray,
    amount: np.ndarray,
    cost: CostModel,
    unknown: np.ndarray,
) -> float:
    finite = np.isfinite(pd_values)
    cands = np.unique(np.quantile(pd_values[finite], np.linspace(0.02, 0.99, 98)))
    profits = [row_profit(approve(pd_values, c), y, amount, cost, unknown).sum() for c in cands]
    return float(cands[int(np.argmax(profits))])


def choose_cutoffs(data: HoldoutScores, policy: GatePolicy) -> Cutoffs:
    pol = policy.cutoff
    n = len(data)
    if pol.method in ("fixed", "overlay") or n == 0:
        return Cutoffs(
            pol.method,
            pol.value,
            pol.value if data.pd_champion is not None else None,
            np.ones(n, dtype=bool),
        )
    order = np.argsort(data.order, kind="stable") if data.order is not None else np.arange(n)
    n_val = max(int(n * pol.validation_share), 1)
    val = np.zeros(n, dtype=bool)
    val[order[:n_val]] = True
    amount = amounts(data, policy.cost_model)
    unknown = unknown_default_rate(data, policy)
    cost = policy.cost_model
    chal = best_cutoff(data.pd_challenger[val], data.y[val], amount[val], cost, unknown[val])
    champ = None
    if data.pd_champion is not None:
        champ = best_cutoff(data.pd_champion[val], data.y[val], amount[val], cost, unknown[val])
    return Cutoffs("max_profit", chal, champ, ~val)
