"""Fairness gate (fairlearn): who does the challenger approve, by protected group?

Protected attributes come from their own table, row-aligned with the holdout; they are never
model inputs. Per attribute, the approval rate of each group at the challenger's cut-off and
the adverse impact ratio (lowest group approval rate / highest), judged against the
four-fifths rule; the challenger may also not be worse than the champion on it by more than
the policy's tolerance. Demographic parity difference and, where outcomes exist, equalized
odds difference are reported. Groups below the minimum size are listed and make the result
INCONCLUSIVE: a small group is never silently skipped.

A window can also hide a group: rows whose protected attributes did not join (a stale table, a
key mismatch) could be anyone's, and a group the reference (training) population holds may be
missing from the window altogether, leaving the ratio computed over the groups that remain.
`coverage_problems` names both (attribute and group); they make the result INCONCLUSIVE, and the
model card reports the same warnings from the same function (`mlgate.data.group_coverage`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    selection_rate,
)

from mlgate.data.group_coverage import MISSING, CoverageProblem, coverage_problems, encode
from mlgate.gates.decisions import Cutoffs, approve
from mlgate.gates.inputs import HoldoutScores
from mlgate.gates.policy import GatePolicy
from mlgate.gates.registry import GateInputs, gate
from mlgate.gates.result import GateResult, GateStatus

NAME = "fairness"


def compress(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    group: pd.Series | np.ndarray,
    encoded: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (label, decision, group) rows with their counts as sample weights.

    Group rates and differences depend on the data only through these counts, so fairlearn
    gets the exact answer from a few dozen weighted rows instead of a million (MetricFrame
    handles rows one by one: about 3 minutes per million on two cores).
    """
    codes, labels = encoded if encoded is not None else encode(group)
    n_g = len(labels)
    t = np.asarray(y_true).astype(np.int64)
    p = np.asarray(y_pred).astype(np.int64)
    counts = np.bincount((t * 2 + p) * n_g + codes, minlength=4 * n_g)
    nz = np.flatnonzero(counts)
    return nz // (2 * n_g), (nz // n_g) % 2, labels[nz % n_g], counts[nz]


def approval_by_group(
    approved: np.ndarray,
    group: pd.Series | np.ndarray,
    encoded: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Approval rate and size of each group (fairlearn MetricFrame, weighted rows)."""
    t, p, g, w = compress(approved, approved, group, encoded)
    frame = MetricFrame(
        metrics={"approval_rate": selection_rate},
        y_true=t,
        y_pred=p,
        sensitive_features=g,
        sample_params={"approval_rate": {"sample_weight": w}},
    )
    table = frame.by_group.copy()
    table["n"] = pd.Series(w).groupby(g).sum().reindex(table.index).to_numpy()
    return table


def impact_ratio(rates: pd.Series) -> float:
    top = float(rates.max()) if len(rates) else 0.0
    return float(rates.min() / top) if top > 0 else float("nan")


def assess(
    data: HoldoutScores,
    attrs: list[str],
    policy: GatePolicy,
    cutoffs: Cutoffs,
    where: str,
    encoded: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[list[str], list[CoverageProblem], dict[str, Any], dict[str, float]]:
    """(failures, small groups, per-attribute tables, impact ratios) on one population.

    Rows without a protected value are reported as the "(missing)" row of the table but are
    no group: the four-fifths rule compares real groups, and how many rows are unjoined is
    `coverage_problems`' question (within the policy's share they are tolerated)."""
    pol = policy.fairness
    chal = approve(data.pd_challenger, cutoffs.challenger)
    champ = None
    if data.pd_champion is not None and cutoffs.champion is not None:
        champ = approve(data.pd_champion, cutoffs.champion)
    lab = data.labelled
    fails: list[str] = []
    small: list[CoverageProblem] = []
    per_attr: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    assert data.groups is not None
    for attr in attrs:
        group = data.groups[attr].reset_index(drop=True)
        enc = encoded[attr]
        table = approval_by_group(chal, group, enc).rename(columns={"approval_rate": "challenger"})
        if champ is not None:
            table["champion"] = approval_by_group(champ, group, enc)["approval_rate"]
        table["n"] = table["n"].astype(int)
        real = table.index != MISSING
        big = real & (table["n"] >= pol.min_group_size)
        for g in table.index[real & ~big]:
            n_g = int(table.loc[g, "n"])
            small.append(
                CoverageProblem(
                    attr,
                    str(g),
                    f"{where}{attr}={g}: n={n_g}, below the floor {pol.min_group_size}",
                )
            )
        di = impact_ratio(table.loc[big, "challenger"])
        t, p, g, w = compress(chal, chal, group, enc)
        entry: dict[str, Any] = {
            "impact_ratio_challenger": di,
            "demographic_parity_difference": float(
                demographic_parity_difference(t, p, sensitive_features=g, sample_weight=w)
            ),
        }
        if lab.sum() > 0 and len(np.unique(data.y[lab])) == 2:
            # positive class = default; the model "predicts default" when it declines.
            sub = (enc[0][lab], enc[1])
            t, p, g, w = compress(data.y[lab], ~chal[lab], group[lab], sub)
            entry["equalized_odds_difference"] = float(
                equalized_odds_difference(t, p, sensitive_features=g, sample_weight=w)
            )
        if big.sum() >= 2 and np.isfinite(di):
            if di < pol.four_fifths:
                worst_g = str(table.loc[big, "challenger"].idxmin())
                fails.append(
                    f"{where}{attr}: adverse impact ratio {di:.3f} < {pol.four_fifths} "
                    f"(group {worst_g} approved at {table.loc[worst_g, 'challenger']:.1%})"
                )
            if champ is not None:
                di_c = impact_ratio(table.loc[big, "champion"])
                entry["impact_ratio_champion"] = di_c
                if np.isfinite(di_c) and di < di_c - pol.champion_tolerance:
                    fails.append(
                        f"{where}{attr}: adverse impact ratio {di:.3f} worse than the "
                        f"champion's {di_c:.3f} by more than {pol.champion_tolerance}"
                    )
        n_rows = int(table["n"].sum())
        n_missing = int(table.loc[MISSING, "n"]) if MISSING in table.index else 0
        entry["unjoined_share"] = n_missing / n_rows if n_rows else 0.0
        per_attr[attr] = {**entry, "groups": table.reset_index(names="group").to_dict("records")}
        ratios[attr] = di
    return fails, small, per_attr, ratios


def _window_problems(
    data: HoldoutScores, attrs: list[str], policy: GatePolicy, where: str
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[CoverageProblem]]:
    """Each attribute encoded once, and the window's coverage problems."""
    assert data.groups is not None
    encoded = {a: encode(data.groups[a].reset_index(drop=True)) for a in attrs}
    problems = coverage_problems(
        data.groups,
        attrs,
        data.reference_groups,
        max_unjoined_share=policy.fairness.max_unjoined_share,
        min_group_size=policy.fairness.min_group_size,
        where=where,
        encoded=encoded,
    )
    return encoded, problems


def _unless_named(small: list[CoverageProblem], named: list[CoverageProblem]) -> list[str]:
    seen = {(p.attribute, p.group) for p in named}
    return [p.message for p in small if (p.attribute, p.group) not in seen]


def fairness_gate(
    data: HoldoutScores,
    policy: GatePolicy,
    cutoffs: Cutoffs,
    recent: HoldoutScores | None = None,
) -> GateResult:
    """Judged on the holdout (approval rates, and error rates where outcomes exist) and, when
    given, on the recent applications the challenger would decide next: approval rates need no
    outcome, and a disparity that appears only on the newer population is still a disparity.
    Small groups in the recent window are listed and left to the holdout's verdict, unless the
    reference population holds them: a group the model was built on must be seen in every
    window it is judged on, and so must most rows' protected attributes."""
    pol = policy.fairness
    if data.groups is None or data.groups.empty:
        return GateResult.inconclusive(NAME, "protected attributes not available for the holdout")
    attrs = pol.attributes if pol.attributes is not None else list(data.groups.columns)
    absent = [a for a in attrs if a not in data.groups.columns]
    if absent or not attrs:
        return GateResult.inconclusive(
            NAME, f"protected attributes missing: {', '.join(absent) or '(none configured)'}"
        )
    for population, what in ((data, "holdout"), (recent, "recent applications")):
        if population is None:
            continue
        if not np.isfinite(population.pd_challenger).all():
            return GateResult.inconclusive(NAME, f"{what} rows without a challenger PD")
        if population.pd_champion is not None and cutoffs.champion is not None:
            if not np.isfinite(population.pd_champion).all():
                return GateResult.inconclusive(NAME, f"{what} rows without a champion PD")
    encoded, problems = _window_problems(data, attrs, policy, "")
    fails, small, per_attr, ratios = assess(data, attrs, policy, cutoffs, "", encoded)
    unclear = [p.message for p in problems] + _unless_named(small, problems)
    metrics: dict[str, Any] = {f"impact_ratio_{a}": r for a, r in ratios.items()}
    details: dict[str, Any] = {"attributes": per_attr}
    if data.reference_groups is None:
        metrics["reference_note"] = "no reference population given: groups not checked against it"
    if recent is not None:
        usable = recent.groups is not None and all(a in recent.groups.columns for a in attrs)
        if usable and len(recent):
            r_enc, r_problems = _window_problems(recent, attrs, policy, "recent applications: ")
            r_fails, r_small, r_attr, r_ratios = assess(
                recent, attrs, policy, cutoffs, "recent applications: ", r_enc
            )
            fails += r_fails
            unclear += [p.message for p in r_problems]
            metrics["n_recent"] = len(recent)
            metrics["recent_small_groups"] = _unless_named(r_small, r_problems)
            metrics.update({f"recent_impact_ratio_{a}": r for a, r in r_ratios.items()})
            details["recent_attributes"] = r_attr
        else:
            metrics["n_recent"] = 0
            metrics["recent_note"] = "no recent applications with protected attributes"
    if fails:
        status, reasons = GateStatus.FAIL, fails + unclear
        summary = fails[0]
    elif unclear:
        status, reasons = GateStatus.INCONCLUSIVE, unclear
        more = f" (+{len(unclear) - 1} more)" if len(unclear) > 1 else ""
        summary = f"protected groups not all judgeable: {unclear[0]}{more}"
    else:
        status, reasons = GateStatus.PASS, []
        summary = "adverse impact ratios " + ", ".join(f"{a} {ratios[a]:.2f}" for a in attrs)
        if metrics.get("n_recent"):
            summary += "; recent applications " + ", ".join(
                f"{a} {metrics[f'recent_impact_ratio_{a}']:.2f}" for a in attrs
            )
    metrics["small_groups"] = [p.message for p in small]
    metrics["coverage_problems"] = unclear
    return GateResult(
        name=NAME,
        status=status,
        blocking=pol.blocking,
        summary=summary,
        reasons=reasons,
        metrics=metrics,
        details=details,
    )


@gate("fairness", needs=("holdout", "cutoff"), section="fairness", floors=("recent",), order=40)
def _run(inputs: GateInputs, policy: GatePolicy) -> GateResult:
    return fairness_gate(inputs.the_holdout(), policy, inputs.the_cutoffs(), inputs.recent)
