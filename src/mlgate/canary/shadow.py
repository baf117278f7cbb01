"""Judge a shadow on identical requests: how differently would it have decided, for whom, and
at what expected cost? Pure: paired scores and policy in, the shadow-analysis report out.

The shadow answered a mirrored copy of every request stable answered, so unlike a canary there
are no two samples to tell apart: each request has both answers and every difference is the
model's. Checks (`canary.phases` shadow checks, thresholds in `canary.shadow`), each blocking:
- volume: at least `min_requests` requests answered by both (else INCONCLUSIVE);
- score_drift: PSI (stable's deciles, the drift gate's code) and KS between the two score
  distributions; FAIL at `score_psi_act`;
- decision_flips: the share of requests decided differently at the served cut-off (FAIL above
  `max_flip_rate`) and, per protected group, the declines the shadow adds net of the approvals
  it adds; a group worse off than the requests overall by more than `max_group_flip_gap` is
  FAIL (the flips fall on one group). Both versions' approval rates by group come from the
  fairness gate's fairlearn helper. No protected attributes: INCONCLUSIVE (fail closed);
- flip_pnl: the expected P&L difference the flips make per request under the cost model, each
  applicant valued at stable's PD (the reviewed estimate; live requests have no outcome yet),
  with a normal CI; FAIL when it is below -`pnl_tolerance`, PASS when clearly above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mlgate.gates.decisions import approve, row_profit
from mlgate.gates.drift import numeric_psi
from mlgate.gates.fairness import approval_by_group, impact_ratio
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import guarded
from mlgate.gates.result import GateReport, GateResult, GateStatus
from mlgate.gates.verdict import assemble


@dataclass
class ShadowPairs:
    """Requests answered by both versions, in the same order: each version's PD, the
    protected attributes of each applicant (None when they could not be joined) and the loan
    amount (None: the cost model's default)."""

    pd_stable: np.ndarray
    pd_shadow: np.ndarray
    groups: pd.DataFrame | None = None
    amount: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pd_stable)


def volume_check(pairs: ShadowPairs, policy: GatePolicy) -> GateResult:
    need, n = policy.canary.shadow.min_requests, len(pairs)
    metrics = {"paired_requests": n, "min_requests": need}
    if n < need:
        return GateResult.inconclusive(
            "volume", f"{n} requests answered by both stable and shadow (min {need})", **metrics
        )
    return GateResult(
        name="volume",
        status=GateStatus.PASS,
        summary=f"{n} requests answered by both",
        metrics=metrics,
    )


def score_drift_check(pairs: ShadowPairs, policy: GatePolicy) -> GateResult:
    name, limit = "score_drift", policy.canary.shadow.score_psi_act
    if not len(pairs):
        return GateResult.inconclusive(name, "no paired requests")
    psi = numeric_psi(pairs.pd_stable, pairs.pd_shadow, policy.drift.n_bins)
    ks = float(stats.ks_2samp(pairs.pd_stable, pairs.pd_shadow).statistic)
    metrics = {
        "psi": psi,
        "ks": ks,
        "psi_act": limit,
        "mean_pd_stable": float(np.mean(pairs.pd_stable)),
        "mean_pd_shadow": float(np.mean(pairs.pd_shadow)),
    }
    summary = f"score PSI {psi:.3f} (act {limit}), KS {ks:.3f}"
    if psi >= limit:
        return GateResult(
            name=name,
            status=GateStatus.FAIL,
            summary=summary,
            reasons=[f"{summary}: the shadow scores the same applicants differently"],
            metrics=metrics,
        )
    return GateResult(name=name, status=GateStatus.PASS, summary=summary, metrics=metrics)


def flips_check(pairs: ShadowPairs, cutoff: float, policy: GatePolicy) -> GateResult:
    name, pol = "decision_flips", policy.canary.shadow
    if not len(pairs):
        return GateResult.inconclusive(name, "no paired requests")
    a_st, a_sh = approve(pairs.pd_stable, cutoff), approve(pairs.pd_shadow, cutoff)
    flips = a_st != a_sh
    # +1: the shadow declines an applicant stable approves; -1: it approves one stable declines
    net_decline = (a_st & ~a_sh).astype(float) - (~a_st & a_sh).astype(float)
    rate, overall = float(flips.mean()), float(net_decline.mean())
    metrics: dict[str, float | int | str | None] = {
        "flip_rate": rate,
        "flips": int(flips.sum()),
        "added_declines": int((a_st & ~a_sh).sum()),
        "added_approvals": int((~a_st & a_sh).sum()),
        "net_decline_rate": overall,
        "max_flip_rate": pol.max_flip_rate,
        "max_group_flip_gap": pol.max_group_flip_gap,
        "cutoff": cutoff,
    }
    reasons: list[str] = []
    if rate > pol.max_flip_rate:
        reasons.append(f"{rate:.1%} of requests decided differently (max {pol.max_flip_rate:.0%})")
    if pairs.groups is None or pairs.groups.empty:
        summary = f"{rate:.1%} of requests flipped; protected attributes not joined"
        if reasons:
            return GateResult(
                name=name, status=GateStatus.FAIL, summary=summary, reasons=reasons, metrics=metrics
            )
        return GateResult.inconclusive(
            name, f"{summary}: flips by group cannot be judged", **metrics
        )
    table: list[dict[str, object]] = []
    for attr in pairs.groups.columns:
        g = pairs.groups[attr].astype("string").fillna("(missing)").to_numpy()
        by_st = approval_by_group(a_st, g)
        by_sh = approval_by_group(a_sh, g)
        per = pd.Series(net_decline).groupby(g).agg(["mean", "size"])
        for group, row in per.iterrows():
            gap = float(row["mean"]) - overall
            judged = int(row["size"]) >= pol.min_group_size and group != "(missing)"
            table.append(
                {
                    "attribute": attr,
                    "group": str(group),
                    "n": int(row["size"]),
                    "net_decline_rate": float(row["mean"]),
                    "gap": gap,
                    "approval_stable": float(by_st.loc[group, "approval_rate"]),
                    "approval_shadow": float(by_sh.loc[group, "approval_rate"]),
                    "judged": judged,
                }
            )
            if judged and gap > pol.max_group_flip_gap:
                reasons.append(
                    f"{attr}={group}: the shadow adds declines for {float(row['mean']):.1%} of "
                    f"its {int(row['size'])} requests, {gap:.1%} more than overall "
                    f"(max gap {pol.max_group_flip_gap:.0%})"
                )
        valid = g != "(missing)"
        metrics[f"impact_ratio_stable.{attr}"] = impact_ratio(
            approval_by_group(a_st[valid], g[valid])["approval_rate"]
        )
        metrics[f"impact_ratio_shadow.{attr}"] = impact_ratio(
            approval_by_group(a_sh[valid], g[valid])["approval_rate"]
        )
    summary = f"{rate:.1%} of requests flipped ({metrics['added_declines']} declines added, " + (
        f"{metrics['added_approvals']} approvals added)"
    )
    if not reasons and not any(row["judged"] for row in table):
        # Fail closed: no group large enough to judge is missing evidence, not a clean bill.
        return GateResult(
            name=name,
            status=GateStatus.INCONCLUSIVE,
            summary=f"{summary}; no group reached {pol.min_group_size} requests to judge",
            reasons=[f"no protected group has {pol.min_group_size} paired requests yet"],
            metrics=metrics,
            details={"by_group": table},
        )
    status = GateStatus.FAIL if reasons else GateStatus.PASS
    return GateResult(
        name=name,
        status=status,
        summary=summary,
        reasons=reasons,
        metrics=metrics,
        details={"by_group": table},
    )


def flip_pnl_check(pairs: ShadowPairs, cutoff: float, policy: GatePolicy) -> GateResult:
    name, tol = "flip_pnl", policy.canary.shadow.pnl_tolerance
    if not len(pairs):
        return GateResult.inconclusive(name, "no paired requests")
    cost = policy.cost_model
    amount = (
        np.full(len(pairs), cost.default_amount)
        if pairs.amount is None
        else np.where(np.isfinite(pairs.amount), pairs.amount, cost.default_amount)
    )
    y = np.full(len(pairs), np.nan)  # live requests: no outcome; valued at stable's PD
    p = np.clip(pairs.pd_stable, 0, 1)
    diff = row_profit(approve(pairs.pd_shadow, cutoff), y, amount, cost, p) - row_profit(
        approve(pairs.pd_stable, cutoff), y, amount, cost, p
    )
    mean = float(diff.mean())
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    z = float(stats.norm.ppf(1 - (1 - policy.pnl.confidence) / 2))
    lo, hi = mean - z * se, mean + z * se
    metrics = {
        "pnl_difference_per_request": mean,
        "lower": lo,
        "upper": hi,
        "tolerance": tol,
        "valued_at": "stable's PD",
        "flipped_pnl_total": float(diff.sum()),
    }
    summary = (
        f"expected P&L of the shadow's decisions {mean:+.2f} per request vs stable "
        f"({policy.pnl.confidence:.0%} CI [{lo:+.2f}, {hi:+.2f}], tolerance -{tol})"
    )
    if hi < -tol:
        return GateResult(
            name=name,
            status=GateStatus.FAIL,
            summary=summary,
            reasons=[f"{summary}: its flips lose money"],
            metrics=metrics,
        )
    if lo > -tol:
        return GateResult(name=name, status=GateStatus.PASS, summary=summary, metrics=metrics)
    return GateResult(
        name=name,
        status=GateStatus.INCONCLUSIVE,
        summary=summary,
        reasons=[f"CI straddles -{tol}: more paired requests needed"],
        metrics=metrics,
    )


def judge_shadow(
    *,
    model: str,
    env: str,
    stable_version: str,
    shadow_version: str,
    cutoff: float,
    pairs: ShadowPairs,
    policy: GatePolicy,
    data_info: dict[str, object] | None = None,
) -> GateReport:
    """The shadow-analysis report (one assembler: `gates.verdict.assemble`)."""
    results = [
        volume_check(pairs, policy),
        guarded("score_drift", lambda: score_drift_check(pairs, policy)),
        guarded("decision_flips", lambda: flips_check(pairs, cutoff, policy)),
        guarded("flip_pnl", lambda: flip_pnl_check(pairs, cutoff, policy)),
    ]
    return assemble(
        model=model,
        challenger=shadow_version,
        champion=stable_version,
        env=env,
        policy=policy,
        results=results,
        data_info={"analysis": "shadow (mirrored requests)", "cutoff": cutoff, **(data_info or {})},
        kind="shadow-analysis",
    )
