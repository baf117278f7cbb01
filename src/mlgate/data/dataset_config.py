"""Dataset configs: how mlgate reads a dataset it did not generate.

Training must not be tied to the synthetic world. A dataset config (YAML) names the file, the
entity key, the event timestamp, the label, the feature columns and the protected-attribute
columns; validation and the training-set builder read only this, so a new dataset needs a new
YAML file and no code. The synthetic world is described by the same model (`format: synthetic`,
`path` = the world folder), see config/datasets/credit_world.yaml.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class Bands(_Strict):
    """Numeric bands: band i is [edges[i], edges[i+1]); `.inf` / `-.inf` leave an end open."""

    edges: list[float] = Field(min_length=2)
    labels: list[str]

    @field_validator("labels", mode="before")
    @classmethod
    def _text_labels(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _sorted(self) -> Bands:
        if any(math.isnan(e) for e in self.edges):
            raise ValueError("edges: NaN is not an edge")
        bad = [
            f"{a:g} >= {b:g}" for a, b in zip(self.edges, self.edges[1:], strict=False) if a >= b
        ]
        if bad:
            raise ValueError(
                f"edges must be strictly increasing ({', '.join(bad)}): bands would overlap "
                "or be out of order"
            )
        if len(self.labels) != len(self.edges) - 1:
            raise ValueError(
                f"labels: {len(self.labels)} label(s) for {len(self.edges) - 1} band(s) "
                f"({len(self.edges)} edges)"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels: each band needs its own label")
        return self


class DerivedAttribute(_Strict):
    """A protected attribute computed from a column: a value map or numeric bands.

    Public credit tables rarely hold `sex` or `age_band` as such: sex hides in a combined
    personal-status code, age is a number. Deriving the group here (one place, the data layer)
    means training's fairness table, the gates and monitoring all see the same groups.
    """

    source: str = Field(min_length=1, description="the column the attribute is derived from")
    map: dict[str, str] | None = Field(None, description="source value -> group")
    bands: Bands | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        # YAML reads 1: or true: as numbers/booleans; data values are compared as text.
        if isinstance(value, dict):
            return {as_text(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> DerivedAttribute:
        if (self.map is None) == (self.bands is None):
            raise ValueError("give exactly one of map (value -> group) or bands (edges, labels)")
        if self.map is not None and not self.map:
            raise ValueError("map: empty")
        return self


def as_text(value: Any) -> str:
    """A value as the text a map key is compared with (1.0 and 1 are both "1")."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Windows(_Strict):
    """Time windows of this dataset; unset ones are sized from the data (mlgate.data.windows).

    A table of 1,000 loans over two years cannot be judged with windows made for 100,000
    applications: a 30-day drift window would hold 40 rows. Explicit values here win over the
    sizing; a model config's `split` and a policy's `drift.current_days`/`fairness.recent_days`
    win over these.
    """

    holdout_months: int | None = Field(None, ge=1, description="out-of-time holdout")
    calibration_months: int | None = Field(None, ge=1, description="before the holdout")
    drift_days: int | None = Field(None, ge=1, description="drift's current window")
    recent_days: int | None = Field(None, ge=1, description="recent applications (fairness)")


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
    # Protected attributes computed from a column (a value map or numeric bands), by name.
    # Each is a protected attribute (added to `protected_attributes` if not listed there).
    derived_attributes: dict[str, DerivedAttribute] = Field(default_factory=dict)
    windows: Windows = Field(default_factory=Windows)
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
        for name, rule in self.derived_attributes.items():
            if rule.source in feats:
                raise ValueError(
                    f"derived_attributes.{name}.source: {rule.source!r} is a feature: the model "
                    "would see the protected attribute through it"
                )
            if name in feats:
                raise ValueError(f"derived_attributes.{name}: {name!r} is also a feature")
        listed = list(self.protected_attributes)
        listed += [n for n in self.derived_attributes if n not in listed]
        self.protected_attributes = listed
        return self

    @property
    def features(self) -> list[str]:
        return self.numeric_features + self.categorical_features

    @property
    def where(self) -> str:
        """How errors name this config: its file, or its name when built in memory."""
        return self.source_file or f"dataset {self.name!r}"

    def protected_columns(self) -> list[str]:
        """Columns the protected table must hold: attributes as is, and derivation sources."""
        cols = [
            self.derived_attributes[a].source if a in self.derived_attributes else a
            for a in self.protected_attributes
        ]
        return list(dict.fromkeys(cols))

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
