"""What the inventory says about each model (the JSON `mlgate inventory --json` prints)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from mlgate.gitops.status import EnvStatus


class Validation(BaseModel):
    """The newest promotion of the model on main: the evidence it went through and who let
    it through (its commit's trailers)."""

    commit: str
    date: date
    time: int  # commit time, epoch seconds
    env: str
    version: str | None
    change: str
    author: str
    approved_by: list[str] = Field(default_factory=list)
    gate_report: str | None = None  # sha256 of the stored gate report
    gate_result: str | None = None
    mlflow_run: str | None = None
    data_fingerprint: str | None = None


class Registered(BaseModel):
    """What the MLflow registry holds for the model (the candidates; git says what runs)."""

    versions: int = 0
    latest: str | None = None
    latest_created: str | None = None  # ISO time the newest version was registered
    aliases: dict[str, str] = Field(default_factory=dict)  # alias -> version
    error: str | None = None  # the registry could not be read: said, not hidden


class InventoryEntry(BaseModel):
    model: str
    config_file: str
    description: str
    owner: str
    risk_tier: int
    intended_use: str
    review_every_months: int
    environments: list[EnvStatus] = Field(default_factory=list)  # main's release.yaml files
    registered: Registered = Field(default_factory=Registered)
    last_validation: Validation | None = None
    next_review: date | None = None
    review_status: str = "not deployed"  # current | overdue | not deployed

    @property
    def deployed(self) -> bool:
        return bool(self.environments)

    @property
    def last_validated(self) -> date | None:
        return self.last_validation.date if self.last_validation else None


class Inventory(BaseModel):
    generated: date  # the day review status is judged on
    gitops_remote: str
    gitops_commit: str | None
    models: list[InventoryEntry] = Field(default_factory=list)
