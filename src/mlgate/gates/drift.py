"""Drift gate: have recent applications moved away from what the model was trained on?

Reference = the model's exact training set; current = a recent window of applications with
features as known at application time. Computed on the full window, per feature:
- PSI on reference deciles (missing values are a bin of their own), read the way credit-risk
  teams read it: < 0.1 stable, 0.1-0.25 watch, >= 0.25 act;
- an effect size: Wasserstein distance / reference std (numeric) or total variation distance
  (categorical), and the two-sample KS statistic. No p-values decide anything: with large
  windows they flag tiny, harmless shifts every day.
FAIL if any feature is at "act", if the share of features at "watch" or worse reaches the
policy's drift share, or if the score (PD) distribution moved by PSI >= score_psi_act.
Each numeric column is sorted once and every statistic is read off the sorted arrays, so 1M
rows x 20 features costs about what scipy's KS alone costs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlgate.gates.inputs import DriftData
from mlgate.gates.policy import DriftPolicy, GatePolicy
from mlgate.gates.result import GateResult, GateStatus

NAME = "drift"
EPS = 1e-4  # floor on bin shares: an empty bin must not make PSI infinite


def psi_from_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    r = np.maximum(ref / max(ref.sum(), 1), EPS)
    c = np.maximum(cur / max(cur.sum(), 1), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_drift(ref: np.ndarray, cur: np.ndarray, n_bins: int) -> dict[str, float]:
    """PSI, KS, normalised Wasserstein and missing shares for one numeric column."""
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    r_ok, c_ok = np.isfinite(ref), np.isfinite(cur)
    rs = np.sort(ref if r_ok.all() else ref[r_ok])
    cs = np.sort(cur if c_ok.all() else cur[c_ok])
    nr, nc = len(rs), len(cs)
    out = {
        "missing_reference": float(1 - nr / max(len(ref), 1)),
        "missing_current": float(1 - nc / max(len(cur), 1)),
    }
    if nr == 0 or nc == 0:
        miss = np.array([len(ref) - nr, len(cur) - nc], dtype=float)
        out.update(psi=psi_from_counts(np.array([nr, miss[0]]), np.array([nc, miss[1]])))
        out.update(ks=float("nan"), wasserstein_norm=float("nan"))
        return out
    edges = np.unique(rs[(np.arange(1, n_bins) * nr) // n_bins])
    rc = np.diff(np.concatenate([[0], np.searchsorted(rs, edges, side="left"), [nr]]))
    cc = np.diff(np.concatenate([[0], np.searchsorted(cs, edges, side="left"), [nc]]))
    rc = np.append(rc, len(ref) - nr)  # the missing-value bin
    cc = np.append(cc, len(cur) - nc)
    out["psi"] = psi_from_counts(rc, cc)
    # Empirical CDFs on the merged support (timsort merges the two sorted runs in linear time).
    # Ties (discrete features) collapse to one point each before the CDF lookups.
    allv = np.sort(np.concatenate([rs, cs]), kind="stable")
    last = np.empty(len(allv), dtype=bool)
    last[:-1] = allv[1:] != allv[:-1]
    last[-1] = True
    support = allv[last]
    cdf_r = np.searchsorted(rs, support, side="right") / nr
    cdf_c = np.searchsorted(cs, support, side="right") / nc
    gap = np.abs(cdf_r - cdf_c)
    out["ks"] = float(gap.max())
    std = float(rs.std())
    w = float(np.sum(gap[:-1] * np.diff(support)))
    out["wasserstein"] = w
    out["wasserstein_norm"] = w / std if std > 0 else (0.0 if w == 0 else float("inf"))
    out["mean_reference"] = float(rs.mean())
    out["mean_current"] = float(cs.mean())
    return out


def categorical_drift(ref: pd.Series, cur: pd.Series) -> dict[str, float]:
    """PSI over categories (missing and unseen ones included) and total variation distance."""
    r = ref.astype("object").fillna("(missing)").value_counts()
    c = cur.astype("object").fillna("(missing)").value_counts()
    cats = r.index.union(c.index)
    rc = r.reindex(cats, fill_value=0).to_numpy(float)
    cc = c.reindex(cats, fill_value=0).to_numpy(float)
    tvd = 0.5 * float(np.abs(rc / rc.sum() - cc / cc.sum()).sum())
    return {"psi": psi_from_counts(rc, cc), "tvd": tvd, "ks": float("nan")}


def level(psi: float, pol: DriftPolicy) -> str:
    if not np.isfinite(psi) or psi >= pol.psi_act:
        return "act"
    if psi >= pol.psi_watch:
        return "watch"
    return "stable"


def feature_table(data: DriftData, pol: DriftPolicy) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for col in data.numeric:
        stats_ = numeric_drift(
            data.reference[col].to_numpy(), data.current[col].to_numpy(), pol.n_bins
        )
        rows.append({"feature": col, "kind": "numeric", **stats_})
    for col in data.categorical:
        stats_ = categorical_drift(data.reference[col], data.current[col])
        rows.append({"feature": col, "kind": "categorical", **stats_})
    for row in rows:
        row["level"] = level(row["psi"], pol)
        row["drifted"] = row["level"] != "stable"
    return rows


def drift_gate(data: DriftData, policy: GatePolicy) -> GateResult:
    pol, samples = policy.drift, policy.samples
    features = data.numeric + data.categorical
    if not features:
        return GateResult.inconclusive(NAME, "no features to compare")
    missing = [
        f"{side}:{c}"
        for side, frame in (("reference", data.reference), ("current", data.current))
        for c in features
        if c not in frame.columns
    ]
    if missing:
        return GateResult.inconclusive(NAME, f"columns missing: {', '.join(missing)}")
    n_ref, n_cur = len(data.reference), len(data.current)
    if n_ref < samples.min_reference or n_cur < samples.min_current:
        return GateResult.inconclusive(
            NAME,
            f"too few rows: reference {n_ref} (min {samples.min_reference}), current {n_cur} "
            f"(min {samples.min_current})",
            n_reference=n_ref,
            n_current=n_cur,
        )
    rows = feature_table(data, pol)
    act = [r["feature"] for r in rows if r["level"] == "act"]
    watched = [r["feature"] for r in rows if r["drifted"]]
    share = len(watched) / len(rows)
    reasons: list[str] = []
    by_name = {r["feature"]: r for r in rows}
    for f in act:
        reasons.append(f"{f}: PSI {by_name[f]['psi']:.3f} >= {pol.psi_act} (act)")
    if share >= pol.drift_share:
        reasons.append(
            f"{len(watched)} of {len(rows)} features at PSI >= {pol.psi_watch} "
            f"(share {share:.2f} >= {pol.drift_share}): {', '.join(watched)}"
        )
    metrics: dict[str, Any] = {
        "n_reference": n_ref,
        "n_current": n_cur,
        "n_features": len(rows),
        "drifted_features": watched,
        "act_features": act,
        "drift_share": share,
        "max_psi": max(r["psi"] for r in rows),
    }
    score_row = None
    if data.reference_score is not None and data.current_score is not None:
        score_row = numeric_drift(data.reference_score, data.current_score, pol.n_bins)
        metrics["score_psi"] = score_row["psi"]
        metrics["score_ks"] = score_row["ks"]
        if not np.isfinite(score_row["psi"]) or score_row["psi"] >= pol.score_psi_act:
            reasons.append(f"score: PSI {score_row['psi']:.3f} >= {pol.score_psi_act}")
    status = GateStatus.FAIL if reasons else GateStatus.PASS
    if act:
        summary = f"significant drift in {', '.join(act)}"
    elif reasons:
        summary = reasons[0]
    else:
        summary = f"stable: max PSI {metrics['max_psi']:.3f}, drift share {share:.2f}"
    if watched and status == GateStatus.PASS:
        summary += f"; watch: {', '.join(watched)}"
    return GateResult(
        name=NAME,
        status=status,
        blocking=pol.blocking,
        summary=summary,
        reasons=reasons,
        metrics=metrics,
        details={"features": rows, "score": score_row},
    )
