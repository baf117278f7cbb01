"""The synthetic credit world: a bank's application, bureau, transaction and outcome data.

Realistic enough that gates mean something, and deterministic by seed:

- every applicant has an unobserved credit quality; features are noisy, partly nonlinear views
  of it (plus age, income and chance), so a model can learn something but not everything;
- the true probability of default (PD) is a logistic model of the features with hinges and an
  interaction, plus an unobserved residual; the intercept is solved so the population default
  rate hits `target_default_rate`;
- the bank's historical decision comes from an older, noisier scorecard approving
  `approval_rate` of applicants, so outcomes exist only for the approved (selection bias, as in
  real lending data);
- outcomes appear only once their window has closed by `as_of`: the 3-month early-delinquency
  flag first, the 12-month default later;
- protected attributes sit in their own table, mildly correlated with some features;
- the oracle table keeps the truth for every application, declined ones included. Only
  benchmarks may read it: a real lender never sees it.

Everything is vectorised numpy and written with pyarrow into a new folder swapped in at the end,
only over an absent, empty or mlgate-written folder (`mlgate.outdir`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlgate.config import REPO_ROOT, load_yaml, validation_problems
from mlgate.data import schema
from mlgate.data.fingerprint import Fingerprint, fingerprint
from mlgate.data.scenarios import Scenario
from mlgate.errors import BadInputError, ConfigError
from mlgate.outdir import check_replaceable, new_folder

SCENARIO_DIR = REPO_ROOT / "config" / "scenarios"
Progress = Callable[[str, float], None]

US_PER_DAY = 86_400_000_000
AGE_BANDS = np.array(["18-25", "26-35", "36-50", "51-65", "65+"], dtype=object)
AGE_EDGES = np.array([26, 36, 51, 66])
SEXES = np.array(["F", "M"], dtype=object)
MARITAL = np.array(["single", "married", "divorced", "widowed"], dtype=object)
HOME = np.array(["rent", "mortgage", "own"], dtype=object)
PURPOSES = np.array(
    ["debt_consolidation", "credit_card", "home_improvement", "car", "personal", "business"],
    dtype=object,
)
PURPOSE_P = np.array([0.35, 0.15, 0.15, 0.15, 0.12, 0.08])
TERMS = np.array([12, 24, 36, 48, 60])
TERM_P = np.array([0.1, 0.2, 0.35, 0.15, 0.2])

# How each numeric feature is shifted: in SDs on its natural scale.
_SCALE = {
    "annual_income": "log",
    "loan_amount": "log",
    "loan_term_months": "log",
    "employment_years": "log1p",
    "debt_to_income_ratio": "log",
    "credit_utilization": "logit",
    "payment_score": "logit100",
    "num_open_accounts": "log1p",
    "num_delinquencies_24m": "log1p",
    "credit_history_months": "log1p",
    "txn_count_30d": "log1p",
    "avg_txn_amount_30d": "log",
    "online_spend_share_30d": "logit",
    "cash_withdrawal_share_30d": "logit",
    "balance_volatility_30d": "log",
}
_INTEGER = {
    "loan_term_months",
    "num_open_accounts",
    "num_delinquencies_24m",
    "credit_history_months",
    "txn_count_30d",
}


class WorldSpec(BaseModel):
    """What to generate. Defaults: 30 months from 2024-01, so 18 months have matured labels."""

    model_config = ConfigDict(extra="forbid")

    name: str = "baseline"
    n_applications: int = Field(100_000, ge=100)
    start: dt.date = dt.date(2024, 1, 1)
    months: int = Field(30, ge=2, le=240)
    seed: int = 7
    performance_window_months: int = Field(12, ge=1)
    early_window_months: int = Field(3, ge=1)
    approval_rate: float = Field(0.68, gt=0.05, lt=1.0)
    target_default_rate: float = Field(0.08, gt=0.001, lt=0.5)
    bureau_snapshots: int = Field(3, ge=1, le=12, description="monthly snapshots per applicant")
    transaction_days: int = Field(7, ge=1, le=60, description="daily aggregates per applicant")
    thin_file_share: float = Field(0.02, ge=0, le=0.5, description="no bureau history")
    no_transactions_share: float = Field(0.015, ge=0, le=0.5, description="no account history")
    scenarios: list[Scenario] = Field(default_factory=list)

    @model_validator(mode="after")
    def _scenarios_start_inside(self) -> WorldSpec:
        for sc in self.scenarios:
            begins = sc.start_date(self.start, self.months)
            if begins >= self.as_of:
                raise ValueError(
                    f"scenario {sc.name!r} starts {begins}, but the world ends {self.as_of} "
                    f"({self.start} + {self.months} months): it would change nothing"
                )
        return self

    @property
    def as_of(self) -> dt.date:
        """The day the data was pulled: the end of the last application month."""
        return _add_months(self.start, self.months)


class TableInfo(BaseModel):
    path: str
    rows: int
    fingerprint: str


class WorldManifest(BaseModel):
    """What was generated: where, how many rows, content fingerprints, and the spec."""

    out_dir: str
    as_of: dt.date
    spec: WorldSpec
    tables: dict[str, TableInfo]
    default_rate_observed: float | None = None
    approval_rate_observed: float
    seconds: float

    def table_path(self, table: str) -> Path:
        return Path(self.out_dir) / self.tables[table].path


def _add_months(d: dt.date, k: int) -> dt.date:
    total = d.year * 12 + (d.month - 1) + k
    return dt.date(total // 12, total % 12 + 1, 1)


# --- spec loading ----------------------------------------------------------------------


def scenario_file(name_or_path: str) -> Path:
    """A scenario file by name (config/scenarios/NAME.yaml) or path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise BadInputError(f"{p}: scenario file not found")
        return p
    cand = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not cand.is_file():
        known = sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml"))
        raise BadInputError(f"unknown scenario {name_or_path!r}; known: {known} or a YAML path")
    return cand


def load_world_spec(scenarios: list[str] | None = None, **overrides: Any) -> WorldSpec:
    """Merge scenario files (each a WorldSpec fragment) in order, then explicit overrides.

    World fields from later files win; their `scenarios` lists are concatenated, so
    `--scenario covariate_drift --scenario bias` stacks both changes on one world.
    """
    data: dict[str, Any] = {}
    stacked: list[Any] = []
    names: list[str] = []
    for item in scenarios or []:
        path = scenario_file(item)
        raw = load_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of WorldSpec fields")
        entries = raw.pop("scenarios", None) or []
        names.append(str(raw.pop("name", path.stem)))
        data.update(raw)
        try:  # name the file at fault; start dates are checked once the world is known
            WorldSpec.model_validate(data)
            stacked.extend(Scenario.model_validate(e) for e in entries)
        except ValidationError as exc:
            raise ConfigError(
                f"{path}: invalid scenario file", problems=validation_problems(exc)
            ) from exc
    if names:
        data["name"] = "+".join(names)
    data["scenarios"] = stacked
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return WorldSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid world spec", problems=validation_problems(exc)) from exc


# --- generation ------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _to_scale(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "log":
        return np.log(np.maximum(x, 1e-9))
    if kind == "log1p":
        return np.log1p(np.maximum(x, 0))
    if kind == "logit":
        c = np.clip(x, 1e-4, 1 - 1e-4)
        return np.log(c / (1 - c))
    if kind == "logit100":
        c = np.clip(x / 100.0, 1e-4, 1 - 1e-4)
        return np.log(c / (1 - c))
    raise ValueError(kind)


def _from_scale(t: np.ndarray, kind: str) -> np.ndarray:
    if kind == "log":
        return np.exp(t)
    if kind == "log1p":
        return np.expm1(t)
    if kind == "logit":
        return _sigmoid(t)
    if kind == "logit100":
        return 100.0 * _sigmoid(t)
    raise ValueError(kind)


def _shift(values: np.ndarray, feature: str, sds: float, mask: np.ndarray) -> None:
    """Move `feature` by `sds` standard deviations on its natural scale, rows in `mask` only."""
    if not mask.any() or sds == 0:
        return
    kind = _SCALE[feature]
    t = _to_scale(values.astype(float), kind)
    sd = float(np.std(t)) or 1.0
    moved = _from_scale(t[mask] + sds * sd, kind)
    if feature == "loan_term_months":
        moved = TERMS[np.abs(moved[:, None] - TERMS[None, :]).argmin(axis=1)]
    elif feature in _INTEGER:
        moved = np.round(moved)
    values[mask] = moved


def _scenario_masks(
    spec: WorldSpec, ts_us: np.ndarray, protected: dict[str, np.ndarray]
) -> list[tuple[Scenario, np.ndarray]]:
    out = []
    for sc in spec.scenarios:
        start = sc.start_date(spec.start, spec.months)
        start_us = _date_us(start)
        mask = ts_us >= start_us
        for attr, value in sc.group.items():
            mask &= protected[attr] == value
        out.append((sc, mask))
    return out


def _date_us(d: dt.date) -> int:
    return int(np.datetime64(d, "us").astype(np.int64))


def _add_months_us(ts_us: np.ndarray, k: int) -> np.ndarray:
    """Calendar month arithmetic on microsecond timestamps, clamping the day to the month's
    end like pandas' DateOffset (Jan 31 + 1 month = Feb 28/29)."""
    month = ts_us.astype("datetime64[us]").astype("datetime64[M]")
    within = ts_us - month.astype("datetime64[us]").astype(np.int64)
    day, tod = within // US_PER_DAY, within % US_PER_DAY
    target = month + k
    days_in = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64
    )
    day = np.minimum(day, days_in - 1)
    return target.astype("datetime64[us]").astype(np.int64) + day * US_PER_DAY + tod


def _ts_array(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype("datetime64[us]"), type=pa.timestamp("us", tz="UTC"))


def _hex_ids(seed: int, n: int, salt: int) -> pa.Array:
    """Pseudonymous, unique ids: splitmix64 is a bijection on uint64, so no collisions."""
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64((seed * 1_000_003 + salt) % 2**63)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    raw = x.astype(">u8").view("S8").reshape(n)
    return pa.array([b.hex() for b in raw.tolist()], type=pa.string())


def generate_world(
    spec: WorldSpec, out_dir: str | os.PathLike[str], progress: Progress | None = None
) -> WorldManifest:
    """Generate the world into `out_dir` (replaced atomically) and return its manifest."""
    t0 = time.perf_counter()
    report = progress or (lambda _msg, _frac: None)
    out = check_replaceable(out_dir)  # a user's folder: exit 2 before the work, not after
    if spec.as_of > dt.datetime.now(dt.UTC).date():
        raise BadInputError(
            f"world ends {spec.as_of} (start {spec.start} + {spec.months} months), "
            "after today: its timestamps would lie in the future"
        )
    rng = np.random.default_rng(spec.seed)
    n = spec.n_applications

    report("applicants", 0.02)
    # --- who applies ------------------------------------------------------------------
    z = rng.standard_normal(n)  # unobserved credit quality (higher is better)
    age = np.clip(18 + rng.gamma(2.2, 9.0, n), 18, 85)
    age_std = (age - 38.0) / 13.0
    sex = SEXES[(rng.random(n) < 0.49).astype(int)]  # "M" with p 0.49
    male = (sex == "M").astype(float)
    u = rng.random(n)
    p_single = _sigmoid(-(age - 31) / 5)
    p_married = (1 - p_single) * 0.7
    p_div = (1 - p_single) * 0.2
    marital = np.where(
        u < p_single,
        MARITAL[0],
        np.where(
            u < p_single + p_married,
            MARITAL[1],
            np.where(u < p_single + p_married + p_div, MARITAL[2], MARITAL[3]),
        ),
    ).astype(object)
    age_band = AGE_BANDS[np.searchsorted(AGE_EDGES, age, side="right")]
    protected = {"age_band": age_band, "sex": sex, "marital_status": marital}

    # --- when ---------------------------------------------------------------------------
    start_us = _date_us(spec.start)
    end_us = _date_us(spec.as_of)
    ts_us = np.sort(rng.integers(start_us + 1, end_us, n))
    masks = _scenario_masks(spec, ts_us, protected)

    report("features", 0.1)
    # --- features: noisy, partly nonlinear views of z, age and chance --------------------
    inc_lat = 0.45 * z + 0.3 * np.clip(age_std, -1.5, 1.5) + 0.12 * male
    annual_income = np.exp(10.85 + 0.45 * (inc_lat + 0.8 * rng.standard_normal(n)))
    f: dict[str, np.ndarray] = {}
    f["annual_income"] = annual_income
    f["employment_years"] = np.minimum(age - 18, rng.gamma(2.0, 2.2 + 1.2 * _sigmoid(z), n)).round(
        1
    )
    f["loan_amount"] = np.clip(
        annual_income * np.exp(np.log(0.22) + 0.5 * rng.standard_normal(n)), 1000, 150_000
    )
    f["loan_term_months"] = TERMS[rng.choice(5, n, p=TERM_P)].astype(float)
    f["debt_to_income_ratio"] = np.clip(
        np.exp(np.log(0.28) - 0.25 * z + 0.45 * rng.standard_normal(n)), 0.005, 3.0
    )
    f["credit_utilization"] = _sigmoid(-0.6 - 0.8 * z + 0.8 * rng.standard_normal(n))
    hist = np.round((age - 18) * 12 * rng.beta(4, 2, n)) + 3
    f["credit_history_months"] = hist
    p_on = _sigmoid(3.4 + 0.9 * z + 0.5 * rng.standard_normal(n))
    f["payment_score"] = 100 * p_on  # made integral through payment counts below
    f["num_open_accounts"] = rng.poisson(np.exp(1.1 + 0.1 * z + 0.15 * age_std)).astype(float)
    f["num_delinquencies_24m"] = rng.poisson(np.exp(-1.6 - 0.7 * z)).astype(float)
    f["txn_count_30d"] = rng.poisson(np.exp(3.5 + 0.3 * rng.standard_normal(n))).astype(float)
    f["avg_txn_amount_30d"] = np.exp(np.log(45) + 0.3 * inc_lat + 0.4 * rng.standard_normal(n))
    f["online_spend_share_30d"] = _sigmoid(
        -0.5 - 0.35 * np.clip(age_std, -2, 2) + 0.7 * rng.standard_normal(n)
    )
    f["cash_withdrawal_share_30d"] = _sigmoid(-2.0 - 0.45 * z + 0.6 * rng.standard_normal(n))
    f["balance_volatility_30d"] = np.exp(-1.2 - 0.35 * z + 0.5 * rng.standard_normal(n))
    home_score = 0.05 * (age - 35) + 0.6 * inc_lat + 0.6 * rng.standard_normal(n)
    home = HOME[np.where(home_score > 1.0, 2, np.where(home_score > -0.1, 1, 0))]
    purpose = PURPOSES[rng.choice(len(PURPOSES), n, p=PURPOSE_P)]

    # Scenario feature shifts (covariate drift, bias), before raw columns are derived.
    for sc, mask in masks:
        for feat, sds in sc.feature_shift.items():
            _shift(f[feat], feat, sds, mask)
    f["credit_utilization"] = np.clip(f["credit_utilization"], 0.0, 1.0)
    f["online_spend_share_30d"] = np.clip(f["online_spend_share_30d"], 0.0, 1.0)
    f["cash_withdrawal_share_30d"] = np.clip(f["cash_withdrawal_share_30d"], 0.0, 1.0)
    f["loan_amount"] = np.maximum(np.round(f["loan_amount"] / 50) * 50, 500.0)
    f["annual_income"] = np.maximum(np.round(f["annual_income"], -2), 5000.0)
    f["employment_years"] = np.round(np.maximum(f["employment_years"], 0.0), 1)

    # Raw bureau columns behind the ratio features.
    total_payments = (np.minimum(f["credit_history_months"], 120) + rng.poisson(12, n)).astype(
        np.int64
    )
    on_time = np.minimum(
        np.round(total_payments * np.clip(f["payment_score"] / 100, 0, 1)), total_payments
    ).astype(np.int64)
    f["payment_score"] = on_time / total_payments * 100
    credit_limit = np.round(
        f["annual_income"] * np.exp(np.log(0.25) + 0.4 * rng.standard_normal(n)), -2
    )
    credit_limit = np.maximum(credit_limit, 500.0)
    cc_balance = np.round(credit_limit * f["credit_utilization"], 2)
    f["credit_utilization"] = cc_balance / credit_limit
    total_debt = np.round(f["debt_to_income_ratio"] * f["annual_income"], 2)
    f["debt_to_income_ratio"] = total_debt / f["annual_income"]

    report("default model", 0.3)
    # --- the true PD: logistic in the features, with hinges and an interaction ------------
    terms = {
        "debt_to_income_ratio": 0.8 * np.log(f["debt_to_income_ratio"] / 0.28)
        + 1.5 * np.maximum(f["debt_to_income_ratio"] - 0.6, 0),
        "credit_utilization": 1.6 * (f["credit_utilization"] - 0.3)
        + 1.5 * np.maximum(f["credit_utilization"] - 0.8, 0),
        "payment_score": -0.06 * (f["payment_score"] - 95),
        "num_delinquencies_24m": 0.35 * np.minimum(f["num_delinquencies_24m"], 4),
        "credit_history_months": -0.25 * np.log((f["credit_history_months"] + 1) / 60),
        "annual_income": -0.35 * np.log(f["annual_income"] / 55_000),
        "loan_amount": 0.45 * np.log(f["loan_amount"] / f["annual_income"] / 0.22),
        "employment_years": -0.04 * np.minimum(f["employment_years"], 10),
        "cash_withdrawal_share_30d": 2.0 * (f["cash_withdrawal_share_30d"] - 0.13),
        "balance_volatility_30d": 0.35 * np.log(f["balance_volatility_30d"] / 0.3),
        "online_spend_share_30d": 0.3 * (f["online_spend_share_30d"] - 0.4),
    }
    interaction = 0.5 * ((f["credit_utilization"] > 0.8) & (f["num_delinquencies_24m"] > 0))
    residual = 0.75 * rng.standard_normal(n) - 0.35 * z  # what no feature shows
    base_logit = sum(terms.values()) + interaction + residual
    scaled = base_logit.copy()
    extra = np.zeros(n)
    for sc, mask in masks:
        for name, factor in sc.coefficient_scale.items():
            scaled[mask] += (factor - 1.0) * terms[name][mask]
        extra[mask] += sc.intercept_shift + sc.default_logit_shift
    # Intercept: the baseline world's population default rate equals the target.
    intercept = _solve_intercept(base_logit, spec.target_default_rate)
    true_pd = _sigmoid(intercept + scaled + extra)
    u_def = rng.random(n)
    true_default = (u_def < true_pd).astype(np.int8)
    # Early delinquency (30+ dpd in 3 months): most defaulters show it, few others do.
    p_early = np.where(true_default == 1, 0.6, 0.015 + 0.3 * true_pd)
    true_early = (rng.random(n) < p_early).astype(np.int8)

    # --- the bank's historical decision: an older, noisier scorecard -----------------------
    old = (
        0.6 * np.log(f["debt_to_income_ratio"] / 0.28)
        + 1.2 * f["credit_utilization"]
        - 0.05 * f["payment_score"]
        + 0.4 * np.minimum(f["num_delinquencies_24m"], 3)
        - 0.3 * np.log(f["annual_income"] / 55_000)
        + 0.8 * rng.standard_normal(n)
    )
    cut = float(np.quantile(old, spec.approval_rate))
    for sc, mask in masks:
        old[mask] += sc.decision_logit_shift
    approved = old <= cut

    report("writing tables", 0.45)
    scenario_label = np.full(n, "baseline", dtype=object)
    for sc, mask in masks:
        scenario_label[mask] = np.where(
            scenario_label[mask] == "baseline", sc.name, scenario_label[mask] + "+" + sc.name
        )

    applicant_ids = _hex_ids(spec.seed, n, salt=1)
    application_ids = pa.array(np.char.add("app-", np.arange(n).astype("U12")).tolist())
    tables: dict[str, pa.Table] = {}
    tables[schema.APPLICATIONS] = pa.table(
        {
            schema.APPLICATION_ID: application_ids,
            schema.APPLICANT_ID: applicant_ids,
            schema.APPLICATION_TS: _ts_array(ts_us),
            "loan_amount": f["loan_amount"],
            "loan_term_months": f["loan_term_months"].astype(np.int64),
            "employment_years": f["employment_years"],
            "home_ownership": pa.array(home.tolist(), type=pa.string()),
            "loan_purpose": pa.array(purpose.tolist(), type=pa.string()),
            schema.BANK_DECISION: pa.array(
                np.where(approved, schema.APPROVED, schema.DECLINED).tolist(), type=pa.string()
            ),
        }
    )
    tables[schema.PROTECTED] = pa.table(
        {
            schema.APPLICANT_ID: applicant_ids,
            **{k: pa.array(v.tolist(), type=pa.string()) for k, v in protected.items()},
        }
    )
    tables[schema.ORACLE] = pa.table(
        {
            schema.APPLICATION_ID: application_ids,
            "true_pd": true_pd,
            schema.ORACLE_TRUE_DEFAULT: true_default,
            schema.ORACLE_TRUE_EARLY: true_early,
            "scenario": pa.array(scenario_label.tolist(), type=pa.string()),
        }
    )

    # Outcomes: approved, early window closed; 12-month default NaN until its window closes.
    early_obs = _add_months_us(ts_us, spec.early_window_months)
    default_obs = _add_months_us(ts_us, spec.performance_window_months)
    has_outcome = approved & (early_obs <= end_us)
    matured = default_obs <= end_us
    idx = np.flatnonzero(has_outcome)
    label = np.where(matured[idx], true_default[idx], np.nan)
    tables[schema.OUTCOMES] = pa.table(
        {
            schema.APPLICATION_ID: application_ids.take(pa.array(idx)),
            schema.LABEL: label,
            schema.LABEL_OBSERVED_TS: pa.array(
                np.where(matured[idx], default_obs[idx], 0).astype("datetime64[us]"),
                type=pa.timestamp("us", tz="UTC"),
                mask=~matured[idx],
            ),
            schema.EARLY_LABEL: true_early[idx].astype(float),
            schema.EARLY_OBSERVED_TS: _ts_array(early_obs[idx]),
        }
    )

    report("bureau snapshots", 0.55)
    tables[schema.BUREAU] = _bureau_table(
        rng,
        spec,
        ts_us,
        applicant_ids,
        f,
        total_debt,
        cc_balance,
        credit_limit,
        on_time,
        total_payments,
    )
    report("daily transactions", 0.7)
    tables[schema.TRANSACTIONS] = _transactions_table(rng, spec, ts_us, applicant_ids, f)

    report("fingerprints", 0.85)
    matured_approved = approved & matured
    with new_folder(out, "mlgate data generate") as tmp:
        infos = _write_tables(tmp, tables)
        manifest = WorldManifest(
            out_dir=str(out),
            as_of=spec.as_of,
            spec=spec,
            tables=infos,
            default_rate_observed=(
                float(true_default[matured_approved].mean()) if matured_approved.any() else None
            ),
            approval_rate_observed=float(approved.mean()),
            seconds=round(time.perf_counter() - t0, 3),
        )
        (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
    report("done", 1.0)
    return manifest


def _solve_intercept(logit: np.ndarray, target: float) -> float:
    """Bisection: the intercept b with mean(sigmoid(b + logit)) == target."""
    sample = logit[:: max(1, logit.size // 200_000)]
    lo, hi = -20.0, 10.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if _sigmoid(mid + sample).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _history_mask(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) >= share


def _bureau_table(
    rng: np.random.Generator,
    spec: WorldSpec,
    ts_us: np.ndarray,
    applicant_ids: pa.Array,
    f: dict[str, np.ndarray],
    total_debt: np.ndarray,
    cc_balance: np.ndarray,
    credit_limit: np.ndarray,
    on_time: np.ndarray,
    total_payments: np.ndarray,
) -> pa.Table:
    """Monthly snapshots (1st of the month, 00:00 UTC) for the months up to each application.

    The newest snapshot holds the values the application sees; older ones are the same
    applicant a few months earlier (fewer payments, a slightly different balance).
    """
    n = ts_us.size
    k = spec.bureau_snapshots
    has = np.flatnonzero(_history_mask(rng, n, spec.thin_file_share))
    m = has.size
    rows = np.repeat(has, k)
    lag = np.tile(np.arange(k), m)  # 0 = newest
    month0 = ts_us.astype("datetime64[us]").astype("datetime64[M]")[rows]
    event = (month0 - lag).astype("datetime64[us]").astype(np.int64)
    created = event + rng.integers(60, 6 * 3600, rows.size) * 1_000_000
    older = lag > 0
    jitter = np.where(older, rng.normal(0, 0.04, rows.size), 0.0)
    tp = np.maximum(total_payments[rows] - lag, 1)
    ot = np.minimum(np.maximum(on_time[rows] - lag, 0), tp)
    income = f["annual_income"][rows]
    debt = np.round(total_debt[rows] * np.exp(jitter), 2)
    limit = credit_limit[rows]
    bal = np.round(np.clip(cc_balance[rows] * np.exp(jitter * 1.5), 0, limit), 2)
    cols: dict[str, Any] = {
        schema.APPLICANT_ID: applicant_ids.take(pa.array(rows)),
        schema.EVENT_TS: _ts_array(event),
        schema.CREATED_TS: _ts_array(created),
        "total_debt": debt,
        "credit_card_balance": bal,
        "credit_limit": limit,
        "on_time_payments": ot,
        "total_payments": tp,
        "annual_income": income,
        "debt_to_income_ratio": debt / income,
        "credit_utilization": bal / limit,
        "payment_score": ot / tp * 100,
        "num_open_accounts": f["num_open_accounts"][rows].astype(np.int64),
        "num_delinquencies_24m": f["num_delinquencies_24m"][rows].astype(np.int64),
        "credit_history_months": np.maximum(f["credit_history_months"][rows] - lag, 0).astype(
            np.int64
        ),
    }
    return pa.table(cols)


def _transactions_table(
    rng: np.random.Generator,
    spec: WorldSpec,
    ts_us: np.ndarray,
    applicant_ids: pa.Array,
    f: dict[str, np.ndarray],
) -> pa.Table:
    """Daily 30-day aggregates (00:00 UTC) for the days up to each application's day."""
    n = ts_us.size
    d = spec.transaction_days
    has = np.flatnonzero(_history_mask(rng, n, spec.no_transactions_share))
    rows = np.repeat(has, d)
    lag = np.tile(np.arange(d), has.size)
    day0 = (ts_us // US_PER_DAY) * US_PER_DAY
    event = day0[rows] - lag * US_PER_DAY
    created = event + rng.integers(60, 3 * 3600, rows.size) * 1_000_000
    older = lag > 0
    noise = np.where(older, rng.normal(0, 0.05, rows.size), 0.0)
    count = np.where(
        older,
        np.maximum(np.round(f["txn_count_30d"][rows] * np.exp(noise)), 0),
        f["txn_count_30d"][rows],
    )
    return pa.table(
        {
            schema.APPLICANT_ID: applicant_ids.take(pa.array(rows)),
            schema.EVENT_TS: _ts_array(event),
            schema.CREATED_TS: _ts_array(created),
            "txn_count_30d": count.astype(np.int64),
            "avg_txn_amount_30d": np.round(f["avg_txn_amount_30d"][rows] * np.exp(noise), 2),
            "online_spend_share_30d": np.clip(
                f["online_spend_share_30d"][rows] + noise * 0.2, 0, 1
            ),
            "cash_withdrawal_share_30d": np.clip(
                f["cash_withdrawal_share_30d"][rows] + noise * 0.1, 0, 1
            ),
            "balance_volatility_30d": f["balance_volatility_30d"][rows] * np.exp(noise),
        }
    )


def _write_tables(folder: Path, tables: dict[str, pa.Table]) -> dict[str, TableInfo]:
    """Write and fingerprint each table; two threads (Arrow's writer and hashing release the GIL)."""

    def one(name: str) -> TableInfo:
        table = tables[name]
        path = folder / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        fp: Fingerprint = fingerprint(table)
        return TableInfo(path=path.name, rows=table.num_rows, fingerprint=fp.sha256)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(tables, pool.map(one, tables), strict=True))
