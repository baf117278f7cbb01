"""Model configs: what to train, on which dataset, and how it is judged.

One YAML file per model (config/models/<name>.yaml). The name is the MLflow registered-model
name; the dataset is a dataset config (so a new dataset needs a YAML file, no code); the
algorithm and its parameters, the calibration map, the out-of-time windows, the seed, the
evaluation cut-off and the reason-code reference are all here so that a run is fully described
by the file it logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgate.config import REPO_ROOT, load_yaml, parse_model
from mlgate.governance import Governance

Algorithm = Literal["logistic_regression", "hist_gradient_boosting"]

# Parameters each algorithm accepts (a typo must fail at load time, not silently be ignored).
ALLOWED_PARAMS: dict[str, set[str]] = {
    "logistic_regression": {"C", "l1_ratio", "max_iter", "tol", "class_weight", "solver"},
    "hist_gradient_boosting": {
        "learning_rate",
        "max_iter",
        "max_leaf_nodes",
        "max_depth",
        "min_samples_leaf",
        "l2_regularization",
        "max_bins",
        "early_stopping",
        "class_weight",
    },
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(_Strict):
    """Out-of-time windows, counted back from the newest matured application."""

    # None: the dataset config's `windows`, else sized from the data (mlgate.data.windows):
    # 3 and 2 months, longer when that holds fewer than `min_rows`.
    holdout_months: int | None = Field(
        None, ge=1, description="newest matured window, never trained on"
    )
    validation_months: int | None = Field(
        None, ge=1, description="window before the holdout: fits the calibration map"
    )
    min_rows: int = Field(200, ge=10, description="per window; fewer -> bad input")


class ReasonCodeConfig(_Strict):
    """Reason codes compare an applicant with a reference applicant."""

    reference: Literal["mean", "median"] = "mean"
    top_k: int = Field(4, ge=1, le=20)
    # The adverse-action notice's wording (`mlgate audit explain`): a reason code (e.g.
    # `loan_purpose=debt_consolidation`, `payment_score:missing`) or else its feature -> the
    # principal reason in plain words. One home; a declined applicant's reason without an
    # entry stops the notice (exit 2) rather than showing a column name to a customer.
    plain_language: dict[str, str] = Field(default_factory=dict)


class ModelConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = "Probability of default (PD) within the performance window."
    intended_use: str = (
        "Rank and decline retail credit applications whose PD exceeds the credit policy's cut-off."
    )
    dataset: str  # path to a dataset config, relative to this file (or the repository)
    algorithm: Algorithm = "logistic_regression"
    params: dict[str, Any] = Field(default_factory=dict)
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    split: SplitConfig = Field(default_factory=SplitConfig)
    seed: int = 7
    cutoff: float = Field(0.15, gt=0, lt=1, description="decline when PD >= cutoff")
    reason_codes: ReasonCodeConfig = Field(default_factory=ReasonCodeConfig)
    # The gate policy of this model (relative to this file); default config/policies/<name>.yaml.
    policy: str | None = None
    # Owner, risk tier and review cadence (mlgate.governance; the inventory lists them). Every
    # config of the reviewed directory carries one (`mlgate inventory` refuses one without);
    # None only for configs recorded with older runs and ad-hoc test configs.
    governance: Governance | None = None
    source_file: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check_params(self) -> ModelConfig:
        unknown = set(self.params) - ALLOWED_PARAMS[self.algorithm]
        if unknown:
            raise ValueError(
                f"params: {sorted(unknown)} not accepted by {self.algorithm} "
                f"(allowed: {sorted(ALLOWED_PARAMS[self.algorithm])})"
            )
        return self

    def dataset_path(self) -> Path:
        p = Path(self.dataset).expanduser()
        if p.is_absolute():
            return p
        bases = [Path(self.source_file).resolve().parent] if self.source_file else []
        bases += [REPO_ROOT / "config" / "models", REPO_ROOT]
        for base in bases:
            if (base / p).exists():
                return (base / p).resolve()
        return (bases[0] / p).resolve()

    def policy_path(self) -> Path | None:
        """The policy this config names, resolved like `dataset`; None when it names none."""
        if not self.policy:
            return None
        p = Path(self.policy).expanduser()
        if not p.is_absolute() and self.source_file:
            p = Path(self.source_file).resolve().parent / p
        return p.resolve()


def load_model_config(path: str | Path) -> ModelConfig:
    """Read and validate a model config; errors name the file and the field."""
    cfg = parse_model(ModelConfig, load_yaml(path), str(path))
    return cfg.model_copy(update={"source_file": str(Path(path).resolve())})


def model_config_from_dict(data: dict[str, Any], source: str) -> ModelConfig:
    """A model config recorded with a run (reproduction reads it back from MLflow)."""
    return parse_model(ModelConfig, data, source)


DEFAULT_MODEL_CONFIG = REPO_ROOT / "config" / "models" / "credit_risk.yaml"
