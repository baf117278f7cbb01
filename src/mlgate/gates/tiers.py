"""Tier minima: a model's gate policy may be stricter than its risk tier requires, never laxer.

The risk tier is the model config's `governance.risk_tier` (mlgate.governance; 1 = highest
risk). Each tier has a minimum strictness, defined here and nowhere else, as bounds on policy
fields: `max` for a threshold where a larger value lets more through (a PSI act line, a
tolerance, a materiality margin, a canary deadline), `min` where a smaller value does (an AUC
floor, the four-fifths ratio, a sample floor). They are checked on the effective policy of each
enforced environment (stage, prod: base sections with that environment's overrides merged), and
a tier's `required_gates` must run in every environment, dev included (warn-only there).

Provenance of the values (the shipped credit_risk policy meets tier 1 with no margin to spare
on purpose: it is the bank's reference policy, docs/gates.md explains each value):
- PSI 0.10 watch / 0.25 act: the industry convention for population stability (Siddiqi, Credit
  Risk Scorecards, 2006); tiers 2 and 3 allow the next customary bands (0.30, 0.50).
- four-fifths (0.8): the adverse-impact rule of the US Uniform Guidelines (29 CFR 1607.4(D)),
  a legal floor, so the same for every tier.
- AUC floor 0.65 (Gini 0.30) and KS 0.20: the usual floors for an application scorecard
  put into production on its own; a lower tier (challenger, scorecard support) may go lower.
- auc/P&L/fairness tolerances (0.01/0.02/0.02), swap-in share 0.30, canary deadline one week,
  minimum 500 labelled rows and 30 defaults: the shipped policy's values (docs/gates.md).
Raising a minimum is a change to model-risk policy: review it like a policy file.

Pure: a function of a policy and a tier. `gates.policy.load_policy` calls `check_tier`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from mlgate.errors import ConfigError

if TYPE_CHECKING:  # policy.py calls this module when a policy loads: no import cycle at runtime
    from mlgate.gates.policy import GatePolicy


class Bound(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str  # dotted path in GatePolicy, e.g. "drift.psi_act"
    op: Literal["max", "min"]
    value: float


class TierMinimum(BaseModel):
    model_config = ConfigDict(frozen=True)

    tier: int
    bounds: tuple[Bound, ...]
    required_gates: tuple[str, ...]  # must run in every environment (dev too, warn-only)


def _b(field: str, op: Literal["max", "min"], value: float) -> Bound:
    return Bound(field=field, op=op, value=value)


TIER_MINIMA: dict[int, TierMinimum] = {
    1: TierMinimum(
        tier=1,
        required_gates=("fairness", "pnl"),
        bounds=(
            _b("floors.min_auc", "min", 0.65),
            _b("floors.min_ks", "min", 0.20),
            _b("performance.auc_tolerance", "max", 0.01),
            _b("calibration.confidence", "max", 0.95),
            _b("calibration.min_abs_diff", "max", 0.10),
            _b("drift.psi_watch", "max", 0.10),
            _b("drift.psi_act", "max", 0.25),
            _b("drift.score_psi_act", "max", 0.25),
            _b("drift.drift_share", "max", 0.30),
            _b("fairness.four_fifths", "min", 0.80),
            _b("fairness.champion_tolerance", "max", 0.02),
            _b("fairness.max_unjoined_share", "max", 0.01),
            _b("pnl.tolerance_share", "max", 0.02),
            _b("swap.max_swap_in_share", "max", 0.30),
            _b("samples.min_labelled", "min", 500),
            _b("samples.min_defaults", "min", 30),
            _b("canary.deadline_hours", "max", 168),
            _b("monitor.auc_drop", "max", 0.03),
        ),
    ),
    2: TierMinimum(
        tier=2,
        required_gates=("fairness",),
        bounds=(
            _b("floors.min_auc", "min", 0.60),
            _b("performance.auc_tolerance", "max", 0.02),
            _b("drift.psi_act", "max", 0.30),
            _b("fairness.four_fifths", "min", 0.80),
            _b("fairness.champion_tolerance", "max", 0.05),
            _b("pnl.tolerance_share", "max", 0.05),
            _b("samples.min_labelled", "min", 200),
            _b("samples.min_defaults", "min", 20),
        ),
    ),
    3: TierMinimum(
        tier=3,
        required_gates=(),
        bounds=(
            _b("floors.min_auc", "min", 0.55),
            _b("drift.psi_act", "max", 0.50),
            _b("fairness.four_fifths", "min", 0.80),
        ),
    ),
}


def _value(policy: GatePolicy, field: str) -> float:
    obj: object = policy
    for part in field.split("."):
        obj = getattr(obj, part)
    return float(obj)  # type: ignore[arg-type]


def _overridden(policy: GatePolicy, env: str, field: str) -> bool:
    node: object = policy.environments[env].overrides
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def tier_problems(policy: GatePolicy, tier: int, enforced_envs: Sequence[str]) -> list[str]:
    """Each field where `policy` is laxer than tier `tier` allows in an enforced environment,
    naming the field (the environment override's path when the override sets it), the value
    and the minimum; and each environment whose gate list leaves out a required gate."""
    minimum = TIER_MINIMA[tier]
    problems: list[str] = []
    for env in enforced_envs:
        if env not in policy.environments:
            continue
        eff = policy.for_env(env)
        for b in minimum.bounds:
            value = _value(eff, b.field)
            lax = value > b.value if b.op == "max" else value < b.value
            if not lax:
                continue
            field = (
                f"environments.{env}.overrides.{b.field}"
                if _overridden(policy, env, b.field)
                else b.field
            )
            what = "at most" if b.op == "max" else "at least"
            problems.append(f"{field}: {value:g} in {env}; tier {tier} requires {what} {b.value:g}")
    for env, section in policy.environments.items():
        if section.gates is None:
            continue
        missing = [g for g in minimum.required_gates if g not in section.gates]
        if missing:
            problems.append(
                f"environments.{env}.gates: leaves out {', '.join(missing)}; tier {tier} "
                f"requires {', '.join(minimum.required_gates)} in every environment"
            )
    return list(dict.fromkeys(problems))


def check_tier(
    policy: GatePolicy, tier: int | None, enforced_envs: Sequence[str], tier_source: str = ""
) -> None:
    """ConfigError (exit 2) naming the policy file, each lax field, the tier and its minimum.
    `tier` None: no reviewed model config governs this policy, nothing to hold it to."""
    if tier is None:
        return
    if tier not in TIER_MINIMA:
        raise ConfigError(f"{tier_source or 'model config'}: governance.risk_tier: {tier} unknown")
    problems = tier_problems(policy, tier, enforced_envs)
    if problems:
        src = f" (risk tier from {tier_source})" if tier_source else ""
        raise ConfigError(
            f"{policy.source_file or 'policy'}: laxer than the minimum of risk tier {tier}{src}",
            problems=problems,
        )
