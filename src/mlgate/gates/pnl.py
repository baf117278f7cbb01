"""P&L gate: does the challenger make the lender more money than the champion?

Each model decides at its cut-off (gates.decisions); every application is valued under the
policy's cost model with its realised outcome (approvals without an outcome, i.e. swap-ins,
valued by the policy's conservative
rule, see decisions.unknown_default_rate). The uplift per application (challenger minus
champion) gets a bootstrap confidence interval with a fixed number of resamples and a fixed
seed, so the same data give the same verdict. PASS when the lower bound is above the
tolerance (-tolerance_share x |champion profit per application|); FAIL when even the upper
bound is below it; otherwise INCONCLUSIVE. A first version must show a profit per application
whose lower bound clears the floor.

The bootstrap resamples all rows but only rows where the two models decide differently carry
a non-zero difference, so it draws, per resample, how many of the n draws land in that swap
set (binomial) and then which ones: the exact multinomial bootstrap at the cost of the swap set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from mlgate.gates.decisions import Cutoffs, amounts, approve, row_profit, unknown_default_rate
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import GateInputs, gate
from mlgate.gates.result import GateResult, GateStatus

NAME = "pnl"
BOOTSTRAP_BUDGET = 50_000_000  # rows x resamples drawn for a first version's profit CI


def bootstrap_mean(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of mean(values); exact, cheap when most values are zero."""
    rng = np.random.default_rng(seed)
    n = len(values)
    nz = values[values != 0]
    m = len(nz)
    out = np.zeros(resamples)
    if m == 0:
        return out
    ks = rng.binomial(n, m / n, size=resamples)
    for b, k in enumerate(ks):
        out[b] = nz[rng.integers(0, m, size=k)].sum() / n
    return out


def pnl_gate(data: HoldoutScores, policy: GatePolicy, cutoffs: Cutoffs) -> GateResult:
    pol, cost, samples = policy.pnl, policy.cost_model, policy.samples
    mask = cutoffs.eval_mask
    n_eval = int(mask.sum())
    n_lab = int((data.labelled & mask).sum())
    if n_lab < samples.min_labelled:
        return GateResult.inconclusive(
            NAME, f"too few labelled rows to value: {n_lab} (min {samples.min_labelled})"
        )
    if not np.isfinite(data.pd_challenger[mask]).all():
        return GateResult.inconclusive(NAME, "holdout rows without a challenger PD")
    y = data.y[mask]
    amount = amounts(data, cost)[mask]
    unknown = unknown_default_rate(data, policy)[mask]
    chal_app = approve(data.pd_challenger[mask], cutoffs.challenger)
    p_chal = row_profit(chal_app, y, amount, cost, unknown)
    alpha = 1 - pol.confidence
    metrics: dict[str, Any] = {
        "n_evaluated": n_eval,
        "n_labelled": n_lab,
        "cutoff_method": cutoffs.method,
        "cutoff_challenger": cutoffs.challenger,
        "cutoff_champion": cutoffs.champion,
        "approval_rate_challenger": float(chal_app.mean()),
        "profit_per_application_challenger": float(p_chal.mean()),
        "swap_in_valuation": policy.swap.valuation,
        "bootstrap_resamples": pol.bootstrap_resamples,
        "bootstrap_seed": pol.seed,
    }
    details: dict[str, Any] = {}
    if data.pd_champion is None or cutoffs.champion is None:
        floor = policy.floors.min_profit_per_application
        if len(p_chal) * pol.bootstrap_resamples <= BOOTSTRAP_BUDGET:
            dist = bootstrap_mean(p_chal, pol.bootstrap_resamples, pol.seed)
            lo, hi = (float(x) for x in np.quantile(dist, [alpha / 2, 1 - alpha / 2]))
            details["bootstrap"] = dist.tolist()
            metrics["ci_method"] = "bootstrap"
        else:  # every row carries profit: at this size the CLT interval is as good and O(n)
            z = float(stats.norm.ppf(1 - alpha / 2))
            se = float(p_chal.std(ddof=1) / np.sqrt(len(p_chal)))
            lo, hi = float(p_chal.mean() - z * se), float(p_chal.mean() + z * se)
            metrics["ci_method"] = "normal (n x resamples above the bootstrap budget)"
        metrics.update(profit_lower=lo, profit_upper=hi, floor=floor)
        if lo > floor:
            status, reasons = GateStatus.PASS, []
        elif hi < floor:
            status = GateStatus.FAIL
            reasons = [f"profit per application CI [{lo:.2f}, {hi:.2f}] below the floor {floor}"]
        else:
            status = GateStatus.INCONCLUSIVE
            reasons = [f"profit per application CI [{lo:.2f}, {hi:.2f}] straddles {floor}"]
        summary = f"first version: profit/application {p_chal.mean():.2f} CI [{lo:.2f}, {hi:.2f}]"
        return GateResult(
            name=NAME,
            status=status,
            blocking=pol.blocking,
            summary=summary,
            reasons=reasons,
            metrics=metrics,
            details=details,
        )
    if not np.isfinite(data.pd_champion[mask]).all():
        return GateResult.inconclusive(NAME, "holdout rows without a champion PD")
    champ_app = approve(data.pd_champion[mask], cutoffs.champion)
    p_champ = row_profit(champ_app, y, amount, cost, unknown)
    diff = p_chal - p_champ
    dist = bootstrap_mean(diff, pol.bootstrap_resamples, pol.seed)
    lo, hi = (float(x) for x in np.quantile(dist, [alpha / 2, 1 - alpha / 2]))
    uplift = float(diff.mean())
    threshold = -pol.tolerance_share * abs(float(p_champ.mean()))
    bank = data.bank_approved[mask] if data.bank_approved is not None else None
    swap_in = chal_app & ~np.asarray(bank, dtype=bool) if bank is not None else None
    metrics.update(
        approval_rate_champion=float(champ_app.mean()),
        profit_per_application_champion=float(p_champ.mean()),
        uplift_per_application=uplift,
        uplift_lower=lo,
        uplift_upper=hi,
        uplift_threshold=threshold,
        total_uplift=float(diff.sum()),
        rows_decided_differently=int((chal_app != champ_app).sum()),
        swap_ins_valued_conservatively=int(swap_in.sum()) if swap_in is not None else None,
    )
    details["bootstrap"] = dist.tolist()
    if lo > threshold:
        status, reasons = GateStatus.PASS, []
    elif hi < threshold:
        status = GateStatus.FAIL
        reasons = [
            f"challenger earns less: uplift/application {uplift:+.2f}, {pol.confidence:.0%} CI "
            f"[{lo:+.2f}, {hi:+.2f}] below {threshold:+.2f}"
        ]
    else:
        status = GateStatus.INCONCLUSIVE
        reasons = [f"uplift CI [{lo:+.2f}, {hi:+.2f}] straddles the tolerance {threshold:+.2f}"]
    summary = (
        f"uplift/application {uplift:+.2f} CI [{lo:+.2f}, {hi:+.2f}] "
        f"(profit {p_chal.mean():.2f} vs {p_champ.mean():.2f})"
    )
    return GateResult(
        name=NAME,
        status=status,
        blocking=pol.blocking,
        summary=summary,
        reasons=reasons,
        metrics=metrics,
        details=details,
    )


@gate("pnl", needs=("holdout", "cutoff"), section="pnl", floors=("labelled",), order=50)
def _run(inputs: GateInputs, policy: GatePolicy) -> GateResult:
    return pnl_gate(inputs.the_holdout(), policy, inputs.the_cutoffs())
