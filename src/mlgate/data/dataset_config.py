"""Dataset configs: how mlgate reads a dataset it did not generate.

Training must not be tied to the synthetic world. A dataset config (YAML) names the file, the
entity key, the event timestamp, the label, the feature columns and the protected-attribute
columns; validation and the training-set builder read only this, so a new dataset needs a new
YAML file and no code. The synthetic world is described by the same model (`format: synthetic`,
`path` = the world folder), see config/datasets/credit_world.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgate.config import load_yaml, parse_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnRange(_Strict):
    """Allowed values of a numeric column (e.g. loan amounts must be positive)."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False


class ValidationRules(_Strict):
    max_missing_share: float = Field(0.05, ge=0, le=1, description="per column and overall")
    ranges: dict[str, ColumnRange] = Field(default_factory=dict)
    # Timestamp columns that may not lie in the future (the event timestamp is always checked).
    no_future: list[str] = Field(default_factory=list)


class DatasetConfig(_Strict):
    name: str
    format: Literal["synthetic", "csv", "parquet"] | None = None  # None: from the file extension
    path: str  # file (csv/parquet) or, for synthetic, the world folder; relative to the YAML
    entity_key: str  # the applicant/customer key: Feast's entity join key
    row_key: str | None = None  # unique per row (e.g. application_id); duplicates are errors
    event_timestamp: str
    label: str
    early_label: str | None = None  # fast proxy (e.g. 30+ dpd within 3 months)
    decision_column: str | None = None  # the bank's historical decision, if recorded
    approved_value: str = "approved"
    numeric_features: list[str] = Field(default_factory=list)
    categorical_features: list[str] = Field(default_factory=list)
    protected_attributes: list[str] = Field(default_factory=list)
    # Protected attributes kept apart from the features: a separate file keyed by entity_key.
    protected_path: str | None = None
    validation: ValidationRules = Field(default_factory=ValidationRules)
    source_file: str | None = Field(None, exclude=True)  # where this config was read from

    @model_validator(mode="after")
    def _checks(self) -> DatasetConfig:
        feats = self.numeric_features + self.categorical_features
        if not feats:
            raise ValueError("numeric_features/categorical_features: at least one feature needed")
        overlap = set(feats) & set(self.protected_attributes)
        if overlap:
            raise ValueError(
                f"protected_attributes {sorted(overlap)} are also features: protected attributes "
                "are used to measure fairness, never as model inputs"
            )
        if self.label in feats:
            raise ValueError(f"label {self.label!r} is also listed as a feature")
        return self

    @property
    def features(self) -> list[str]:
        return self.numeric_features + self.categorical_features

    @property
    def resolved_format(self) -> str:
        if self.format:
            return self.format
        suffix = Path(self.path).suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in (".parquet", ".pq"):
            return "parquet"
        return "synthetic"

    def resolve_path(self, value: str | None = None) -> Path:
        """Paths in a config are relative to the config file; `{workspace}` expands."""
        raw = value if value is not None else self.path
        if "{workspace}" in raw:
            from mlgate.workspace import Workspace

            raw = raw.replace("{workspace}", str(Workspace.resolve().root))
        p = Path(raw).expanduser()
        if not p.is_absolute() and self.source_file:
            p = Path(self.source_file).resolve().parent / p
        return p.resolve()


def load_dataset_config(path: str | Path) -> DatasetConfig:
    cfg = parse_model(DatasetConfig, load_yaml(path), str(path))
    return cfg.model_copy(update={"source_file": str(Path(path).resolve())})
