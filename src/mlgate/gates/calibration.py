"""Calibration gate: is the PD a probability? (It feeds pricing and provisions.)

Predicted vs observed default rate by score band (quantiles of the challenger's PD on the
labelled holdout). Per band, the Jeffreys interval of the observed rate (the Beta(k+1/2,
n-k+1/2) posterior, the test supervisors use for PD back-testing) at a Bonferroni-corrected
level; a band fails when its mean PD lies outside that interval AND differs from the observed
rate by more than the policy's materiality margin (huge samples make tiny, harmless gaps
significant). Overall: a normal test of total defaults against the sum of PDs. FAIL names the
bands. Only labelled (bank-approved, matured) rows exist to test on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import GateInputs, gate
from mlgate.gates.result import GateResult, GateStatus

NAME = "calibration"


def band_edges(pd_values: np.ndarray, n_bands: int) -> np.ndarray:
    """Interior quantile edges of the PD; ties collapse bands rather than make empty ones."""
    qs = np.quantile(pd_values, np.linspace(0, 1, n_bands + 1)[1:-1])
    return np.unique(qs)


def calibration_table(
    y: np.ndarray, pd_values: np.ndarray, n_bands: int, confidence: float
) -> pd.DataFrame:
    """One row per score band: n, defaults, mean PD, observed rate, Jeffreys interval."""
    edges = band_edges(pd_values, n_bands)
    band = np.searchsorted(edges, pd_values, side="right")
    n_b = len(edges) + 1
    n = np.bincount(band, minlength=n_b)
    k = np.bincount(band, weights=y, minlength=n_b)
    s = np.bincount(band, weights=pd_values, minlength=n_b)
    lo_pd = np.concatenate([[pd_values.min()], edges])
    hi_pd = np.concatenate([edges, [pd_values.max()]])
    keep = n > 0
    alpha = (1 - confidence) / max(int(keep.sum()), 1)  # Bonferroni over the bands
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = stats.beta.ppf(alpha / 2, k + 0.5, n - k + 0.5)
        hi = stats.beta.ppf(1 - alpha / 2, k + 0.5, n - k + 0.5)
        table = pd.DataFrame(
            {
                "band": np.arange(1, n_b + 1),
                "pd_from": lo_pd,
                "pd_to": hi_pd,
                "n": n,
                "defaults": k.astype(int),
                "mean_pd": s / n,
                "observed_rate": k / n,
                "jeffreys_lower": lo,
                "jeffreys_upper": hi,
            }
        )
    return table[keep].reset_index(drop=True)


def calibration_gate(data: HoldoutScores, policy: GatePolicy) -> GateResult:
    pol, samples = policy.calibration, policy.samples
    mask = data.labelled
    if not mask.any():
        return GateResult.inconclusive(NAME, "no labelled holdout rows (no matured outcomes)")
    y, p = data.y[mask], data.pd_challenger[mask]
    if not np.isfinite(p).all():
        return GateResult.inconclusive(NAME, f"{int((~np.isfinite(p)).sum())} rows without a PD")
    n_lab, n_def = len(y), int(y.sum())
    if n_lab < samples.min_labelled or n_def < samples.min_defaults:
        return GateResult.inconclusive(
            NAME,
            f"too few labelled rows: {n_lab} (min {samples.min_labelled}) with {n_def} "
            f"defaults (min {samples.min_defaults})",
        )
    table = calibration_table(y, p, pol.n_bands, pol.confidence)
    gap = (table["mean_pd"] - table["observed_rate"]).abs()
    outside = (table["mean_pd"] < table["jeffreys_lower"]) | (
        table["mean_pd"] > table["jeffreys_upper"]
    )
    big = (table["n"] >= pol.min_band_size) & outside & (gap > pol.min_abs_diff)
    table["fails"] = big
    expected = float(p.sum())
    var = float((p * (1 - p)).sum())
    z_overall = (n_def - expected) / np.sqrt(var) if var > 0 else 0.0
    p_overall = float(2 * stats.norm.sf(abs(z_overall)))
    overall_gap = abs(n_def - expected) / n_lab
    overall_fails = p_overall < (1 - pol.confidence) and overall_gap > pol.min_abs_diff
    failed = [int(b) for b in table.loc[big, "band"]]
    reasons = []
    for _, row in table[big].iterrows():
        reasons.append(
            f"band {int(row.band)} (PD {row.pd_from:.3f}-{row.pd_to:.3f}, n={int(row.n)}): "
            f"mean PD {row.mean_pd:.4f} vs observed {row.observed_rate:.4f} "
            f"(Jeffreys [{row.jeffreys_lower:.4f}, {row.jeffreys_upper:.4f}])"
        )
    if overall_fails:
        reasons.append(
            f"overall: {n_def} defaults observed vs {expected:.1f} predicted (p={p_overall:.2g})"
        )
    status = GateStatus.FAIL if (failed or overall_fails) else GateStatus.PASS
    if failed:
        summary = f"miscalibrated in band(s) {', '.join(map(str, failed))} of {len(table)}"
    elif overall_fails:
        summary = "miscalibrated overall"
    else:
        summary = (
            f"calibrated in all {len(table)} bands; {n_def} defaults vs {expected:.1f} predicted"
        )
    brier = float(np.mean((p - y) ** 2))
    return GateResult(
        name=NAME,
        status=status,
        blocking=pol.blocking,
        summary=summary,
        reasons=reasons,
        metrics={
            "n_labelled": n_lab,
            "observed_defaults": n_def,
            "expected_defaults": expected,
            "overall_p_value": p_overall,
            "brier": brier,
            "failed_bands": failed,
        },
        details={"bands": table.to_dict(orient="records")},
    )


@gate(
    "calibration",
    needs=("holdout",),
    section="calibration",
    floors=("labelled", "defaults"),
    order=20,
)
def _run(inputs: GateInputs, policy: GatePolicy) -> GateResult:
    return calibration_gate(inputs.the_holdout(), policy)
