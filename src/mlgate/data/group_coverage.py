"""Do a window's protected groups cover the population the model was built on?

A fairness verdict compares the groups it can see. Rows whose protected attributes did not
join (a stale table, a key mismatch) could belong to anyone, and a group the reference
(training) population holds can be missing from a window altogether: the ratio is then taken
over the groups that remain and looks fine. `coverage_problems` names each such attribute and
group. The fairness gate turns them into INCONCLUSIVE and the model card prints them as its
warning, from this one function, with the same thresholds (the policy's defaults live here so
the card, which has no policy in hand, uses the gate's numbers).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

MISSING = "(missing)"
MAX_UNJOINED_SHARE = 0.01  # fairness.max_unjoined_share's default
MIN_GROUP_SIZE = 100  # fairness.min_group_size's default


class CoverageProblem(NamedTuple):
    """Why a window cannot show every protected group's decisions."""

    attribute: str
    group: str
    message: str


def encode(group: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and labels of a group column; missing values become "(missing)".

    Integral float codes are labelled as integers: a left join that misses a row turns an
    integer column into floats, and "1.0" must still be the reference population's group "1".
    """
    s = pd.Series(group)
    if pd.api.types.is_float_dtype(s.dtype):
        known = s.dropna().to_numpy()
        if len(known) and bool(np.all(known == np.round(known))):
            s = s.astype("Int64")
    codes, uniques = pd.factorize(s, sort=True)
    labels = np.array([str(u) for u in uniques] + [MISSING], dtype=object)
    return np.where(codes < 0, len(uniques), codes), labels


def _sizes(
    group: pd.Series | np.ndarray, encoded: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[dict[str, int], int]:
    """({group: rows}, rows without a value) of one protected attribute."""
    codes, labels = encoded if encoded is not None else encode(group)
    n = np.bincount(codes, minlength=len(labels))
    return {str(g): int(k) for g, k in zip(labels[:-1], n[:-1], strict=True)}, int(n[-1])


def group_counts(groups: pd.DataFrame | None) -> dict[str, dict[str, int]] | None:
    """Rows per group of each protected attribute (missing values left out): the reference
    population's side of `coverage_problems`, small enough to travel with a window."""
    if groups is None:
        return None
    return {str(attr): _sizes(groups[attr])[0] for attr in groups.columns}


def coverage_problems(
    groups: pd.DataFrame,
    attrs: list[str],
    reference: dict[str, dict[str, int]] | None,
    *,
    max_unjoined_share: float = MAX_UNJOINED_SHARE,
    min_group_size: int = MIN_GROUP_SIZE,
    where: str = "",
    encoded: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[CoverageProblem]:
    """What keeps a window from showing every group: more than `max_unjoined_share` of rows
    without a protected value, or a group of the reference population absent from the window
    or below `min_group_size` in it. The gate and the model card both report these."""
    out: list[CoverageProblem] = []
    n = len(groups)
    for attr in attrs:
        sizes, missing = _sizes(groups[attr], (encoded or {}).get(attr))
        if n and missing / n > max_unjoined_share:
            out.append(
                CoverageProblem(
                    attr,
                    MISSING,
                    f"{where}{attr}: {missing} of {n} rows ({missing / n:.1%}) have no value "
                    f"(not joined by the entity key, or missing in the protected table), more "
                    f"than the {max_unjoined_share:.1%} allowed",
                )
            )
        for g, ref_n in sorted((reference or {}).get(attr, {}).items()):
            k = sizes.get(g, 0)
            if ref_n <= 0 or k >= min_group_size:
                continue
            state = "absent (n=0)" if k == 0 else f"n={k}, below the floor {min_group_size}"
            out.append(
                CoverageProblem(
                    attr, g, f"{where}{attr}={g}: {state}; the reference population has {ref_n}"
                )
            )
    return out
