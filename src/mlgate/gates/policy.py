"""The gate policy: one YAML file per model (config/policies/<model>.yaml), validated here.

Everything a gate decides with is in the policy, not in code: thresholds per environment (dev
warns, stage and prod block), minimum sample sizes, which gates apply, the absolute floors a
first version (no champion) must clear, the lending cost model and cut-off, drift and fairness
thresholds, the bootstrap, the swap-in limit and the canary schedule the rollout reads. The
defaults follow common credit-risk practice; docs/gates.md cites it field by field. A bad
policy stops with a ConfigError that names the file and the field (exit 2).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlgate.config import load_yaml, merge_sections, parse_model, policy_dir
from mlgate.data.group_coverage import MAX_UNJOINED_SHARE, MIN_GROUP_SIZE
from mlgate.errors import BadInputError, ConfigError
from mlgate.gates import registry
from mlgate.gates.tiers import check_tier
from mlgate.governance import tier_for_policy

# Environments whose gates always block: a policy that switches a gate off or turns
# enforcement off there is refused when it loads (change control, issue 12), not obeyed.
ENFORCED_ENVS = ("stage", "prod")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SampleSizes(_Strict):
    """Below these counts a gate says INCONCLUSIVE instead of guessing."""

    min_labelled: int = Field(500, ge=1, description="matured, labelled holdout rows")
    min_defaults: int = Field(30, ge=1, description="defaults among them")
    min_reference: int = Field(1000, ge=1, description="drift reference rows")
    min_current: int = Field(1000, ge=1, description="drift current-window rows")
    min_recent: int = Field(
        200, ge=1, description="recent applications judged for the fairness of next decisions"
    )


class Floors(_Strict):
    """Absolute floors: a first version is held to these (and every version must clear them)."""

    min_auc: float = Field(0.65, gt=0.5, lt=1)
    min_ks: float = Field(0.20, ge=0, lt=1)
    min_profit_per_application: float = Field(0.0, description="lower CI bound, currency units")


class PerformancePolicy(_Strict):
    blocking: bool = True
    auc_tolerance: float = Field(0.01, ge=0, lt=0.5, description="challenger AUC may be this worse")
    confidence: float = Field(0.95, gt=0.5, lt=1)


class CalibrationPolicy(_Strict):
    blocking: bool = True
    n_bands: int = Field(10, ge=2, le=50, description="score bands (quantiles of the PD)")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="family-wise, Bonferroni per band")
    min_abs_diff: float = Field(
        0.01, ge=0, description="a band fails only if also off by more than this (materiality)"
    )
    min_band_size: int = Field(50, ge=1)


class DriftPolicy(_Strict):
    blocking: bool = True
    psi_watch: float = Field(0.10, gt=0, description="PSI >= this: moderate shift, counted")
    psi_act: float = Field(0.25, gt=0, description="PSI >= this: significant shift, FAIL")
    drift_share: float = Field(0.30, gt=0, le=1, description="share of watched features -> FAIL")
    score_psi_act: float = Field(0.25, gt=0)
    wasserstein_threshold: float = Field(
        0.10, gt=0, description="Wasserstein / reference std: effect size, reported"
    )
    n_bins: int = Field(10, ge=2, le=100, description="PSI bins: reference deciles")
    evidently_sample: int = Field(50_000, ge=100, description="rows per side in the HTML report")
    current_days: int | None = Field(
        None,
        ge=1,
        description="current window: the newest N days of applications (None: the dataset "
        "config's windows.drift_days, else sized from the data: 30 days or longer)",
    )
    relative_to_champion: bool = Field(
        True,
        description="promotion: drift the champion shares (population drift) is reported, "
        "not held against the challenger",
    )
    champion_margin: float = Field(
        0.05, ge=0, description="challenger PSI above the champion's by more: its own drift"
    )

    @model_validator(mode="after")
    def _order(self) -> DriftPolicy:
        if self.psi_watch >= self.psi_act:
            raise ValueError("psi_watch must be below psi_act")
        return self


class FairnessPolicy(_Strict):
    blocking: bool = True
    attributes: list[str] | None = Field(None, description="None: the dataset's protected ones")
    four_fifths: float = Field(0.8, gt=0, le=1, description="min adverse impact ratio")
    champion_tolerance: float = Field(0.02, ge=0, le=1)
    min_group_size: int = Field(MIN_GROUP_SIZE, ge=1)
    max_unjoined_share: float = Field(
        MAX_UNJOINED_SHARE,
        ge=0,
        le=1,
        description="share of rows allowed without a protected value (failed join); above: "
        "INCONCLUSIVE, since the unjoined rows could hide any group's decisions",
    )
    recent_days: int | None = Field(
        None,
        ge=1,
        description="also judged on the newest N days of applications (approval rates need no "
        "outcome); long enough that a 2-point tolerance is not sampling noise in small groups. "
        "None: the dataset config's windows.recent_days, else sized from the data (>= 90 days)",
    )


class CostModel(_Strict):
    """A simple lending P&L per application (credit-risk-domain.md, expected loss)."""

    amount_column: str | None = "loan_amount"
    default_amount: float = Field(10_000.0, gt=0, description="when the column is missing")
    interest_margin: float = Field(0.12, ge=0, description="net interest over the term / amount")
    funding_cost: float = Field(0.03, ge=0, description="over the term / amount")
    operating_cost: float = Field(150.0, ge=0, description="per approved loan")
    lgd: float = Field(0.60, ge=0, le=1, description="loss given default, share of EAD")
    ead_share: float = Field(1.0, gt=0, le=1.5, description="exposure at default / amount")
    forgone_margin_weight: float = Field(
        1.0, ge=0, le=1, description="share of the margin counted as lost on a declined good"
    )


class CutoffPolicy(_Strict):
    """Decline when PD >= cut-off: the environment's served cut-off (its overlay in git),
    a fixed value, or chosen per model on a validation window."""

    method: Literal["overlay", "fixed", "max_profit"] = "overlay"
    value: float = Field(
        0.15, gt=0, lt=1, description="fixed; for overlay: used when git has no overlay"
    )
    validation_share: float = Field(
        0.3, gt=0, lt=1, description="max_profit: earliest share of the holdout used to choose"
    )


class PnlPolicy(_Strict):
    blocking: bool = True
    bootstrap_resamples: int = Field(1000, ge=100, le=100_000)
    seed: int = 7
    confidence: float = Field(0.95, gt=0.5, lt=1)
    tolerance_share: float = Field(
        0.02, ge=0, lt=1, description="uplift lower bound > -this x |champion profit|"
    )


class SwapPolicy(_Strict):
    blocking: bool = True
    max_swap_in_share: float = Field(
        0.30,
        ge=0,
        le=1,
        description="new approvals without outcome / challenger approvals above: INCONCLUSIVE",
    )
    valuation: Literal["parcelling", "worst_band"] = Field(
        "parcelling",
        description="parcelling: factor x the observed default rate of the applicant's score "
        "band (reject inference); worst_band: the worst band's observed rate for every swap-in",
    )
    parcelling_factor: float = Field(
        2.0, ge=1, description="declined applicants default more than approved ones alike"
    )


class SequentialPolicy(_Strict):
    """How the canary's re-run checks decide over hourly looks (mlgate.gates.sequential)."""

    alpha: float = Field(
        0.05, gt=0, lt=0.5, description="chance of a wrong verdict over the whole analysis"
    )
    method: Literal["mixture", "fixed_horizon"] = Field(
        "mixture",
        description="mixture: normal-mixture confidence sequence, valid at every look; "
        "fixed_horizon: one test once the planned sample is in (the classical baseline)",
    )
    mixture_scale: float = Field(
        1.0, gt=0, description="mixture spread tau = this x the check's margin"
    )
    power: float = Field(
        0.9, gt=0.5, lt=1, description="fixed_horizon: sample planned for this power at the margin"
    )


Phase = Literal["shadow", "canary", "full"]
# The checks each rollout phase is judged by (every one blocking): the shadow analysis
# (`canary.shadow`), the canary analysis (`canary.analysis`); `full` is the promoted version.
PHASE_CHECKS: dict[str, tuple[str, ...]] = {
    "shadow": ("volume", "score_drift", "decision_flips", "flip_pnl"),
    "canary": ("volume", "drift", "fairness", "early_delinquency", "pnl"),
    "full": (),
}


class ShadowPolicy(_Strict):
    """The shadow phase: the candidate answers a mirrored copy of every request, compared with
    stable's answer to the same request (mlgate.canary.shadow)."""

    min_requests: int = Field(1000, ge=1, description="paired requests (both answered)")
    score_psi_act: float = Field(
        0.10, gt=0, description="PSI between the two score distributions at or above: FAIL"
    )
    max_flip_rate: float = Field(
        0.10, gt=0, le=1, description="share of requests decided differently above: FAIL"
    )
    max_group_flip_gap: float = Field(
        0.03,
        ge=0,
        le=1,
        description="declines the shadow adds (net, per request) in any protected group "
        "beyond the overall rate by more: FAIL (flips concentrated in one group)",
    )
    min_group_size: int = Field(100, ge=1, description="groups judged once this many requests")
    pnl_tolerance: float = Field(
        10.0,
        gt=0,
        description="currency per request: the shadow's expected P&L on the requests it would "
        "decide differently may be this much below stable's",
    )


class CanaryPolicy(_Strict):
    """Read by the rollout (gitops/canary): how a prod canary starts and when it is judged."""

    phases: list[Phase] = Field(
        default_factory=lambda: list[Phase](["canary", "full"]),
        description="the rollout's phases in order: [shadow, canary, full] makes a verified "
        "PASS of the shadow analysis a precondition of `canary start`",
    )
    shadow: ShadowPolicy = Field(default_factory=ShadowPolicy)

    initial_weight: int = Field(10, ge=1, le=50, description="percent of traffic")
    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100])
    min_requests: int = Field(1000, ge=1)
    max_error_rate: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="the canary may fail this share of its requests more than stable does "
        "(no answer, 5xx); clearly more fails the volume check: abort",
    )
    min_early_labels: int = Field(200, ge=0)
    deadline_hours: int = Field(168, ge=1, description="no verdict by then: abort")
    analysis_interval_minutes: int = Field(60, ge=1)
    pnl_tolerance: float = Field(
        10.0,
        gt=0,
        description="currency per application: the canary's P&L may be this much below "
        "stable's on the same requests",
    )
    sequential: SequentialPolicy = Field(default_factory=SequentialPolicy)

    @model_validator(mode="after")
    def _steps(self) -> CanaryPolicy:
        if self.steps != sorted(self.steps) or any(not 0 < s <= 100 for s in self.steps):
            raise ValueError("steps must be increasing percentages in (0, 100]")
        if self.phases not in (["canary", "full"], ["shadow", "canary", "full"]):
            raise ValueError(
                f"phases {self.phases}: must be [canary, full] or [shadow, canary, full] "
                "(a version reaches applicants only through a canary)"
            )
        return self

    @property
    def shadow_first(self) -> bool:
        return "shadow" in self.phases

    def next_step(self, weight: int) -> int | None:
        """The next weight of the schedule after `weight` (None or 100: promote). One home: the
        canary judge decides with it and the evidence check re-derives that decision."""
        later = [s for s in self.steps if s > weight]
        return later[0] if later else None


class MonitorPolicy(_Strict):
    """Daily monitoring thresholds (mlgate monitor) and when to retrain (gates.retrain)."""

    max_model_age_days: int | None = Field(
        None,
        ge=1,
        description="scheduled retraining: retrain when the running version is older than "
        "this (None: only a monitor FAIL retrains; INCONCLUSIVE never does)",
    )

    auc_drop: float = Field(0.03, ge=0, description="alert if AUC < expected - this")
    early_delinquency_ratio: float = Field(
        1.3, gt=1, description="alert if observed / expected early-delinquency rate above"
    )
    window_days: int = Field(30, ge=1, description="recent applications: drift, fairness")
    matured_days: int = Field(90, ge=1, description="newest matured labels: AUC, calibration")
    early_days: int = Field(30, ge=1, description="newest early-delinquency outcomes")
    alert_on_watch: bool = Field(
        True, description="drift: alert when a feature reaches psi_watch (investigate), not act"
    )
    watch_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1,
        description="alert when the PSI's one-sided upper bound at this level reaches psi_watch "
        "(0.5: the estimate itself)",
    )


class EnvironmentPolicy(_Strict):
    enforce: bool = True  # False: warn-only (dev) -- results are reported, nothing blocks
    gates: list[str] | None = None  # None: every registered gate (mlgate.gates.registry)
    overrides: dict[str, Any] = Field(default_factory=dict)  # deep-merged into the sections

    @field_validator("gates")
    @classmethod
    def _registered(cls, value: list[str] | None) -> list[str] | None:
        known = registry.names()
        unknown = [g for g in value or [] if g not in known]
        if unknown:
            raise ValueError(f"unknown gate(s) {', '.join(unknown)} (known: {', '.join(known)})")
        return value


class GatePolicy(_Strict):
    model: str | None = None
    description: str = ""
    samples: SampleSizes = Field(default_factory=SampleSizes)
    floors: Floors = Field(default_factory=Floors)
    performance: PerformancePolicy = Field(default_factory=PerformancePolicy)
    calibration: CalibrationPolicy = Field(default_factory=CalibrationPolicy)
    drift: DriftPolicy = Field(default_factory=DriftPolicy)
    fairness: FairnessPolicy = Field(default_factory=FairnessPolicy)
    cost_model: CostModel = Field(default_factory=CostModel)
    cutoff: CutoffPolicy = Field(default_factory=CutoffPolicy)
    pnl: PnlPolicy = Field(default_factory=PnlPolicy)
    swap: SwapPolicy = Field(default_factory=SwapPolicy)
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)
    monitor: MonitorPolicy = Field(default_factory=MonitorPolicy)
    environments: dict[str, EnvironmentPolicy] = Field(
        default_factory=lambda: {
            "dev": EnvironmentPolicy(enforce=False),
            "stage": EnvironmentPolicy(),
            "prod": EnvironmentPolicy(),
        }
    )
    source_file: str | None = Field(None, exclude=True)
    # sha256 of the validated policy as loaded (load_policy): what a gate report records as
    # the policy it was judged under. Kept through for_env and served cut-offs, so a report is
    # tied to the signed-off file, not to the values resolved for one run.
    digest: str | None = Field(None, exclude=True)

    def for_env(self, env: str) -> GatePolicy:
        """The policy as it applies in `env`: its overrides merged in, validated again."""
        if env not in self.environments:
            raise BadInputError(
                f"{self.source_file or 'policy'}: environment {env!r} not in environments "
                f"(known: {', '.join(sorted(self.environments))})"
            )
        overrides = self.environments[env].overrides
        if not overrides:
            return self
        merged = merge_sections(self.model_dump(exclude={"environments"}), overrides)
        merged["environments"] = {k: v.model_dump() for k, v in self.environments.items()}
        src = f"{self.source_file or 'policy'} (environments.{env}.overrides)"
        out = parse_model(GatePolicy, merged, src)
        return out.model_copy(update={"source_file": self.source_file, "digest": self.digest})

    def gates_for(self, env: str) -> list[str]:
        chosen = self.environments[env].gates
        return list(chosen) if chosen is not None else list(registry.names())

    def enforced(self, env: str) -> bool:
        return self.environments[env].enforce


def policy_digest(policy: GatePolicy) -> str:
    """sha256 of the policy's validated values (sorted JSON): comments and key order in the
    file do not change it, any value does."""
    text = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_policy(path: str | Path) -> GatePolicy:
    """Read and validate a policy file; every override section is validated up front too, and
    stage/prod must keep every gate blocking (`check_enforced`) and the policy must meet its
    model's risk-tier minimum (`gates.tiers.check_tier`)."""
    policy = parse_model(GatePolicy, load_yaml(path), str(path))
    policy = policy.model_copy(update={"source_file": str(path)})
    policy = policy.model_copy(update={"digest": policy_digest(policy)})
    for env in policy.environments:
        policy.for_env(env)  # a bad override must fail now, not at the first prod run
    check_enforced(policy)
    tier = tier_for_policy(Path(path), policy.model)  # (risk tier, model config) or None
    if tier is not None:  # no laxer than the model's risk tier allows (gates.tiers)
        check_tier(policy, tier[0], ENFORCED_ENVS, str(tier[1]))
    return policy


def check_enforced(policy: GatePolicy) -> None:
    """Stage and prod judge with every gate, blocking: `enforce: false`, a gate list that leaves
    a gate out (or is empty) and `blocking: false` on a gate (in the base sections or the
    environment's overrides) are refused, naming the file and each field (exit 2). Otherwise
    a policy edit could make any report PASS for prod."""
    problems = []
    for env in ENFORCED_ENVS:
        section = policy.environments.get(env)
        if section is None:
            continue  # no such environment: promoting there is refused by for_env
        where = f"environments.{env}"
        if not section.enforce:
            problems.append(f"{where}.enforce: false is not allowed in {env} (gates must block)")
        if section.gates is not None:
            left_out = [g for g in registry.names() if g not in section.gates]
            if not section.gates:
                problems.append(f"{where}.gates: empty; {env} runs every gate")
            elif left_out:
                problems.append(
                    f"{where}.gates: leaves out {', '.join(left_out)}; {env} runs every gate"
                )
        eff = policy.for_env(env)
        for spec in registry.gates():
            if spec.blocks(eff) or spec.section is None:
                continue
            gate = spec.section
            over = section.overrides.get(gate)
            field = (
                f"{where}.overrides.{gate}.blocking"
                if isinstance(over, dict) and "blocking" in over
                else f"{gate}.blocking"
            )
            problems.append(f"{field}: false is not allowed in {env} (the gate must block)")
    if problems:
        raise ConfigError(
            f"{policy.source_file or 'policy'}: switches gates off in {'/'.join(ENFORCED_ENVS)}",
            problems=problems,
        )


def policy_path_for(
    model: str,
    explicit: str | Path | None = None,
    named: str | Path | None = None,
    named_by: str = "the model config's policy:",
) -> Path:
    """`--policy` if given, else the policy the model config names (`policy:`, recorded as the
    MLflow tag `gate_policy`), else config/policies/<model>.yaml. A model never borrows another
    model's policy: thresholds, floors and the cost model are signed off per model, so none
    found is bad input. The name comes from the model's author, so it only picks a file of the
    reviewed directory (`reviewed_policy`): never a path of their choosing."""
    if explicit:
        return Path(explicit)
    if named:
        return reviewed_policy(str(named), named_by)
    own = policy_dir() / f"{model}.yaml"
    if own.is_file():
        return own
    raise ConfigError(
        f"no gate policy for model {model!r}: {own} not found; pass --policy FILE or name one "
        "in the model config (policy: FILE); another model's policy is never used"
    )


def reviewed_policy(name: str, named_by: str) -> Path:
    """`config/policies/<name>`: a bare file name of the reviewed policies directory. A path
    (absolute, with a separator or `..`) is refused, naming where it came from (exit 2): an
    author could otherwise point the gates at a lax policy of their own."""
    bad = not name or name in (".", "..") or "/" in name or "\\" in name or Path(name).name != name
    path = policy_dir() / name
    if bad or not path.is_file():
        raise BadInputError(
            f"{named_by}: {name!r} is not a policy file of {policy_dir()} (only a file name "
            "there, e.g. credit_risk.yaml, is accepted): put the policy there through review, "
            "or judge with `gates run --policy FILE`"
        )
    return path


def named_columns(policy: GatePolicy) -> list[tuple[str, str, str]]:
    """(field, column, kind) for every dataset column the policy names, in every environment.

    kind "column": a column the dataset carries into training sets and holdouts;
    "protected": one of the dataset's protected attributes (derived ones included).
    A new policy field that names a column is registered here, so it is checked too.
    """

    def fields(p: GatePolicy) -> list[tuple[str, str, str]]:
        out = []
        if p.cost_model.amount_column:
            out.append(("cost_model.amount_column", p.cost_model.amount_column, "column"))
        out += [("fairness.attributes", a, "protected") for a in p.fairness.attributes or []]
        return out

    found = fields(policy)
    for env in policy.environments:  # an override may name another column
        prefix = f"environments.{env}.overrides."
        found += [
            (prefix + f, c, k) for f, c, k in fields(policy.for_env(env)) if (f, c, k) not in found
        ]
    return list(dict.fromkeys(found))


def check_policy_columns(
    policy: GatePolicy, columns: list[str], protected: list[str], dataset: str
) -> None:
    """Every column the policy names must exist in the dataset: a missing amount column would
    otherwise value every loan at `default_amount`, a missing attribute would drop a group
    check. Bad input naming the policy file, each field and column."""
    problems = []
    for field, column, kind in named_columns(policy):
        known = protected if kind == "protected" else columns
        if column not in known:
            what = "protected attribute" if kind == "protected" else "column"
            problems.append(
                f"{field}: {what} {column!r} is not in dataset {dataset!r} "
                f"(its {what}s: {', '.join(known) or 'none'})"
            )
    if problems:
        raise ConfigError(
            f"{policy.source_file or 'policy'}: names column(s) dataset {dataset!r} lacks",
            problems=problems,
        )
