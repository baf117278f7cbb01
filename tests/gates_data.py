"""Constructed gate inputs whose right answers are known (probit world, exact PDs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mlgate.gates.inputs import DriftData, HoldoutScores

A, B1, B2 = -1.9, 0.9, 0.7  # ~7% defaults


def world(n: int = 20_000, seed: int = 0) -> dict[str, np.ndarray]:
    """y = 1{A + B1 x1 + B2 x2 + e > 0}: the true PD is Phi(A + B1 x1 + B2 x2) exactly, and a
    model that sees only x1 has the exact calibrated PD Phi((A + B1 x1) / sqrt(1 + B2^2))."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = (A + B1 * x1 + B2 * x2 + rng.normal(size=n) > 0).astype(float)
    true_pd = stats.norm.cdf(A + B1 * x1 + B2 * x2)
    weak_pd = stats.norm.cdf((A + B1 * x1) / np.sqrt(1 + B2**2))
    return {"x1": x1, "x2": x2, "y": y, "true_pd": true_pd, "weak_pd": weak_pd, "rng": rng}  # type: ignore[dict-item]


def holdout(
    challenger: str = "true",
    champion: str | None = "weak",
    n: int = 20_000,
    seed: int = 0,
    bank_cutoff: float = 0.15,
    group_sizes: dict[str, int] | None = None,
) -> HoldoutScores:
    """Bank decisions come from the weak (champion) score; outcomes only for approvals."""
    w = world(n, seed)
    rng: np.random.Generator = w["rng"]  # type: ignore[assignment]
    pds = {"true": w["true_pd"], "weak": w["weak_pd"]}
    bank = w["weak_pd"] < bank_cutoff
    y = np.where(bank, w["y"], np.nan)
    sizes = group_sizes or {"A": n // 2, "B": n - n // 2}
    sex = np.repeat(list(sizes), list(sizes.values()))
    rng.shuffle(sex)
    return HoldoutScores(
        y=y,
        pd_challenger=pds[challenger] if isinstance(challenger, str) else challenger,
        pd_champion=pds[champion] if isinstance(champion, str) else champion,
        bank_approved=bank,
        amount=rng.uniform(2_000, 20_000, size=n),
        order=np.arange(n),
        groups=pd.DataFrame({"sex": sex}),
    )


def drift_data(
    n_ref: int = 20_000, n_cur: int = 10_000, shift: dict[str, float] | None = None, seed: int = 0
) -> DriftData:
    rng = np.random.default_rng(seed)
    cols = [f"f{i}" for i in range(8)]
    ref = pd.DataFrame(rng.normal(size=(n_ref, 8)), columns=cols)
    cur = pd.DataFrame(rng.normal(size=(n_cur, 8)), columns=cols)
    for c, s in (shift or {}).items():
        cur[c] = cur[c] + s
    ref["cat"] = rng.choice(["a", "b", "c"], size=n_ref, p=[0.5, 0.3, 0.2])
    cur["cat"] = rng.choice(["a", "b", "c"], size=n_cur, p=[0.5, 0.3, 0.2])
    score_ref = stats.norm.cdf(-1.5 + 0.5 * ref["f0"].to_numpy())
    score_cur = stats.norm.cdf(-1.5 + 0.5 * cur["f0"].to_numpy())
    return DriftData(ref, cur, cols, ["cat"], score_ref, score_cur)
