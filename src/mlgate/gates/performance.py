"""Performance gate: challenger vs champion AUC on the same out-of-time holdout.

The comparison is DeLong's test for two correlated ROC curves (both models score the same
applications), so the verdict rests on a confidence interval of the AUC difference, not on
two point estimates. The rule is non-inferiority: PASS if the lower bound of the CI of
(challenger - champion) is above -tolerance; FAIL if even the upper bound is below it;
otherwise the holdout is too small to tell (INCONCLUSIVE). A first version has no champion and
is held to the policy's absolute floors (AUC lower bound and KS). KS and Gini are reported.
Only labelled rows count: outcomes exist only where the bank approved (see the swap gate).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import GateInputs, gate
from mlgate.gates.result import GateResult, GateStatus, worst

NAME = "performance"


def delong(y: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of `scores` and their covariance matrix (DeLong 1988, fast form of Sun & Xu 2014).

    Positives are y == 1; a higher score means more likely positive.
    """
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both classes")
    k = len(scores)
    v01 = np.empty((k, m))
    v10 = np.empty((k, n))
    aucs = np.empty(k)
    for i, s in enumerate(scores):
        s = np.asarray(s, dtype=float)
        pos, neg = s[y], s[~y]
        tx = stats.rankdata(pos)
        ty = stats.rankdata(neg)
        tz = stats.rankdata(np.concatenate([pos, neg]))
        aucs[i] = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        v01[i] = (tz[:m] - tx) / n
        v10[i] = 1.0 - (tz[m:] - ty) / m
    sx = np.atleast_2d(np.cov(v01))
    sy = np.atleast_2d(np.cov(v10))
    return aucs, sx / m + sy / n


def ks_statistic(y: np.ndarray, score: np.ndarray) -> float:
    """Max distance between the score CDFs of defaults and non-defaults."""
    y = np.asarray(y).astype(bool)
    return float(stats.ks_2samp(score[y], score[~y]).statistic)


def performance_gate(data: HoldoutScores, policy: GatePolicy) -> GateResult:
    pol, floors, samples = policy.performance, policy.floors, policy.samples
    mask = data.labelled
    n_lab = int(mask.sum())
    if n_lab == 0:
        return GateResult.inconclusive(NAME, "no labelled holdout rows (no matured outcomes)")
    y = data.y[mask]
    chal = data.pd_challenger[mask]
    champ = data.pd_champion[mask] if data.pd_champion is not None else None
    bad = int((~np.isfinite(chal)).sum())
    if champ is not None:
        bad += int((~np.isfinite(champ)).sum())
    if bad:
        return GateResult.inconclusive(NAME, f"{bad} labelled rows without a finite PD")
    n_def = int(y.sum())
    if n_lab < samples.min_labelled or n_def < samples.min_defaults:
        return GateResult.inconclusive(
            NAME,
            f"too few labelled rows: {n_lab} (min {samples.min_labelled}) with {n_def} "
            f"defaults (min {samples.min_defaults})",
            n_labelled=n_lab,
            n_defaults=n_def,
        )
    z = float(stats.norm.ppf(0.5 + pol.confidence / 2))
    ks_chal = ks_statistic(y, chal)
    metrics: dict[str, float | int | None] = {"n_labelled": n_lab, "n_defaults": n_def}
    reasons: list[str] = []
    statuses: list[GateStatus] = []

    scores = (chal,) if champ is None else (chal, champ)
    aucs, cov = delong(y, *scores)
    auc_se = float(np.sqrt(max(cov[0, 0], 0.0)))
    auc_lo = float(aucs[0] - z * auc_se)
    metrics.update(
        auc_challenger=float(aucs[0]),
        auc_challenger_lower=auc_lo,
        auc_challenger_upper=float(aucs[0] + z * auc_se),
        gini_challenger=float(2 * aucs[0] - 1),
        ks_challenger=ks_chal,
    )
    # Floors hold for every version; for a first version they are the whole test.
    if aucs[0] < floors.min_auc:
        statuses.append(GateStatus.FAIL)
        reasons.append(f"AUC {aucs[0]:.4f} below the floor {floors.min_auc:.4f}")
    elif auc_lo < floors.min_auc:
        statuses.append(GateStatus.INCONCLUSIVE)
        reasons.append(
            f"AUC {aucs[0]:.4f} but its {pol.confidence:.0%} lower bound {auc_lo:.4f} is below "
            f"the floor {floors.min_auc:.4f}"
        )
    if ks_chal < floors.min_ks:
        statuses.append(GateStatus.FAIL)
        reasons.append(f"KS {ks_chal:.4f} below the floor {floors.min_ks}")

    if champ is not None:
        diff = float(aucs[0] - aucs[1])
        se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
        lo, hi = diff - z * se, diff + z * se
        p_value = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else 1.0
        metrics.update(
            auc_champion=float(aucs[1]),
            ks_champion=ks_statistic(y, champ),
            auc_diff=diff,
            auc_diff_lower=lo,
            auc_diff_upper=hi,
            delong_p_value=p_value,
            auc_tolerance=pol.auc_tolerance,
        )
        if lo > -pol.auc_tolerance:
            statuses.append(GateStatus.PASS)
        elif hi < -pol.auc_tolerance:
            statuses.append(GateStatus.FAIL)
            reasons.append(
                f"challenger AUC worse than the champion's: diff {diff:+.4f}, "
                f"{pol.confidence:.0%} CI [{lo:+.4f}, {hi:+.4f}] below -{pol.auc_tolerance}"
            )
        else:
            statuses.append(GateStatus.INCONCLUSIVE)
            reasons.append(
                f"non-inferiority not shown: AUC diff {diff:+.4f}, CI [{lo:+.4f}, {hi:+.4f}] "
                f"reaches below -{pol.auc_tolerance}"
            )
    status = worst(statuses)
    if champ is not None:
        summary = (
            f"AUC {aucs[0]:.3f} vs champion {aucs[1]:.3f} "
            f"(diff CI [{metrics['auc_diff_lower']:+.3f}, {metrics['auc_diff_upper']:+.3f}]), "
            f"KS {ks_chal:.3f}"
        )
    else:
        summary = (
            f"first version (no champion): AUC {aucs[0]:.3f} (floor {floors.min_auc:.3f}), "
            f"KS {ks_chal:.3f}"
        )
    return GateResult(
        name=NAME,
        status=status,
        blocking=pol.blocking,
        summary=summary,
        reasons=reasons,
        metrics=metrics,
    )


@gate(
    "performance",
    needs=("holdout",),
    section="performance",
    floors=("labelled", "defaults"),
    order=10,
)
def _run(inputs: GateInputs, policy: GatePolicy) -> GateResult:
    return performance_gate(inputs.the_holdout(), policy)
