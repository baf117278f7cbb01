"""What every step shares: the settings a task loads, config paths resolved where the
platform image puts them, atomic artifact writes, and the StepOutput a component returns
(its value, the metrics shown on the step, the metadata on its output artifact)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mlgate.config import REPO_ROOT, PlatformSettings, load_settings
from mlgate.errors import install_log_redaction


class StepOutput(BaseModel):
    value: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


def settings() -> PlatformSettings:
    """Settings from the environment the runner gives the step (MLGATE_* variables); the
    step's log lines are redacted like the CLI's (no credential in a URL or token printed)."""
    install_log_redaction()
    return load_settings()


def resolve(path: str) -> Path:
    """A config path from a pipeline parameter: absolute, or relative to the project files
    (`config/` ships in the platform image; `mlgate.config.REPO_ROOT`). Never the working
    directory: a pod's is empty."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


def write_text(path: str | Path, text: str) -> None:
    """Write an output file atomically (a crashed step leaves no half-written artifact)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, target)


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalar numbers of a dict (what KFP Metrics can show)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            out[prefix + key] = float(value)
        elif isinstance(value, int | float) and value == value:  # skip NaN
            out[prefix + key] = float(value)
    return out


def model_cfg(model_config: str) -> Any:
    """The model config a pipeline parameter names (resolved like every config path)."""
    from mlgate.training.model_config import load_model_config

    return load_model_config(resolve(model_config))


def dataset_cfg(model_cfg: Any, st: PlatformSettings, data_path: str | None = None) -> Any:
    """The model's dataset config; with `data_path` (the `data` artifact a step received),
    reading that copy of the data instead of the configured source."""
    from mlgate.data.dataset_config import load_dataset_config
    from mlgate.data.sources import rebind, with_workspace

    cfg = with_workspace(load_dataset_config(model_cfg.dataset_path()), st)
    return rebind(cfg, data_path) if data_path else cfg


def policy_for(policy: str, model: str) -> Any:
    """The gate policy a pipeline parameter names, or the model's reviewed one when empty."""
    from mlgate.gates.policy import load_policy, policy_path_for

    return load_policy(policy_path_for(model, resolve(policy) if policy else None))
