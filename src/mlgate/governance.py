"""Model governance: who owns a model, how risky it is, and how often it must be re-validated.

One home for the `governance:` section of a model config (config/models/<model>.yaml). It lives
in the foundation layer because two layers that may not import each other read it: training
(the model config carries it) and the gates (a policy's strictness follows its model's risk
tier, `mlgate.gates.tiers`). The inventory (`mlgate inventory`) lists it for every model.

Risk tiers follow SR 11-7 / OCC 2011-12 practice: tier 1 is the highest risk (a model that
decides credit for customers on its own), tier 3 the lowest. The intended use is the model
config's `intended_use` (it is also printed on the model card): one home, not repeated here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgate.config import REPO_ROOT, load_yaml, parse_model
from mlgate.errors import ConfigError

MODEL_CONFIG_DIR_ENV = "MLGATE_MODEL_CONFIG_DIR"
DEFAULT_MODEL_CONFIG_DIR = REPO_ROOT / "config" / "models"
RiskTier = Literal[1, 2, 3]


class Governance(BaseModel):
    """`governance:` of a model config. Every field is required: an inventory entry without
    an owner or a review cadence is exactly what a model-risk review would flag."""

    model_config = ConfigDict(extra="forbid", strict=True)

    owner: str = Field(
        min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="team or person"
    )
    risk_tier: RiskTier = Field(description="1 highest risk (decides on its own) ... 3 lowest")
    review_every_months: int = Field(
        ge=1, le=36, description="re-validation cadence: next review = last validation + this"
    )


def model_config_dir() -> Path:
    """The reviewed model-config directory (the inventory's source): `MLGATE_MODEL_CONFIG_DIR`
    where the platform sets it, else the installation's config/models (like `policy_dir`)."""
    return Path(os.environ.get(MODEL_CONFIG_DIR_ENV) or DEFAULT_MODEL_CONFIG_DIR)


def model_config_files(directory: Path | None = None) -> list[Path]:
    folder = directory or model_config_dir()
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def read_governance(path: Path) -> tuple[str, Governance | None, str | None]:
    """(model name, governance or None, the `policy:` it names) of one model-config file;
    a bad `governance:` section is a ConfigError naming the file and each field."""
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a mapping (a model config)")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: name: missing (the registered model name)")
    section = raw.get("governance")
    if section is None:
        return name, None, raw.get("policy")
    gov = parse_model(Governance, section, f"{path}: governance")
    return name, gov, raw.get("policy")


def tier_for_policy(policy_file: Path, model: str | None) -> tuple[int, Path] | None:
    """The strictest risk tier among the model configs this policy governs: those named
    `model` (the policy's `model:` or its file name) or naming the file as `policy:`.
    None when no model config of the reviewed directory governs it (a test world's policy, or a
    model whose config lives elsewhere: the inventory lists every reviewed config)."""
    found: list[tuple[int, Path]] = []
    for path in model_config_files():
        name, gov, named = read_governance(path)
        if gov is None:
            continue
        if name == (model or policy_file.stem) or (named and Path(named).name == policy_file.name):
            found.append((gov.risk_tier, path))
    return min(found) if found else None
