"""Scenarios: named, parameterised changes to the synthetic world from a given date.

A gate is only worth something if it can be shown to fire. Each scenario kind changes the world
the way a lender's world really changes, so the drift, performance and fairness gates have
something to catch:

- `covariate_drift`: feature distributions move (e.g. more online shopping); the
  feature -> default relationship stays the same. `feature_shift` names the features and how far
  they move, in standard deviations of the feature on its natural scale (log for amounts, logit
  for shares, log1p for counts).
- `concept_drift`: the relationship changes. `coefficient_scale` multiplies the true model's
  effect of the named features; `intercept_shift` moves every applicant's log-odds of default.
- `bias`: one protected group's features, outcomes or historical decisions shift
  (`group` = {attribute: value}; `feature_shift`, `default_logit_shift`, `decision_logit_shift`).

A scenario starts at `start` (a date) or `start_month` (months after the world's first month);
with neither it starts half-way through the world.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgate.data import schema

ScenarioKind = Literal["covariate_drift", "concept_drift", "bias"]

# Features the generator knows how to shift (every numeric model feature).
SHIFTABLE_FEATURES = tuple(schema.MODEL_NUMERIC_FEATURES)
# Effects of the true default model that concept drift may rescale.
COEFFICIENT_NAMES = (
    "debt_to_income_ratio",
    "credit_utilization",
    "payment_score",
    "num_delinquencies_24m",
    "credit_history_months",
    "annual_income",
    "loan_amount",
    "employment_years",
    "cash_withdrawal_share_30d",
    "balance_volatility_30d",
    "online_spend_share_30d",
)


class Scenario(BaseModel):
    """One named change to the world, active for applications at or after its start."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: ScenarioKind
    start: dt.date | None = None
    start_month: int | None = Field(None, ge=0)
    description: str = ""
    feature_shift: dict[str, float] = Field(default_factory=dict)
    coefficient_scale: dict[str, float] = Field(default_factory=dict)
    intercept_shift: float = 0.0
    group: dict[str, str] = Field(default_factory=dict)
    default_logit_shift: float = 0.0
    decision_logit_shift: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        unknown = sorted(set(self.feature_shift) - set(SHIFTABLE_FEATURES))
        if unknown:
            raise ValueError(
                f"feature_shift: unknown feature(s) {unknown}; known: {list(SHIFTABLE_FEATURES)}"
            )
        unknown = sorted(set(self.coefficient_scale) - set(COEFFICIENT_NAMES))
        if unknown:
            raise ValueError(
                f"coefficient_scale: unknown effect(s) {unknown}; known: {list(COEFFICIENT_NAMES)}"
            )
        bad_attr = sorted(set(self.group) - set(schema.PROTECTED_ATTRIBUTES))
        if bad_attr:
            raise ValueError(
                f"group: unknown protected attribute(s) {bad_attr}; "
                f"known: {schema.PROTECTED_ATTRIBUTES}"
            )
        if self.kind == "covariate_drift" and not self.feature_shift:
            raise ValueError("covariate_drift needs feature_shift (feature: shift in SDs)")
        if self.kind == "concept_drift" and not (self.coefficient_scale or self.intercept_shift):
            raise ValueError("concept_drift needs coefficient_scale and/or intercept_shift")
        if self.kind == "bias":
            if not self.group:
                raise ValueError("bias needs group, e.g. {sex: F}")
            if not (self.feature_shift or self.default_logit_shift or self.decision_logit_shift):
                raise ValueError(
                    "bias needs feature_shift, default_logit_shift or decision_logit_shift"
                )
        elif self.group:
            raise ValueError(f"group applies to bias scenarios only, not {self.kind}")
        if self.start is not None and self.start_month is not None:
            raise ValueError("give start or start_month, not both")
        return self

    def start_date(self, world_start: dt.date, months: int) -> dt.date:
        """The first day the scenario is active."""
        if self.start is not None:
            return self.start
        offset = self.start_month if self.start_month is not None else months // 2
        total = world_start.year * 12 + (world_start.month - 1) + offset
        return dt.date(total // 12, total % 12 + 1, 1)
