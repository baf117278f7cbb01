"""Where the pipeline definitions live and how they are imported.

The definitions are part of the mlgate package (`mlgate.kubeflow.pipelines.<name>` defines
`PIPELINE`; its steps are `mlgate.kubeflow.components`), and their compiled YAML is package
data (`mlgate/kubeflow/pipelines/compiled/<name>.yaml`). So the CLI on a laptop, the local
runner and a step running in the platform image (the monitoring pipeline's retrain trigger)
import them by name: no project checkout, no `sys.path` edit.
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import Any

from mlgate.errors import BadInputError, ConfigError

PACKAGE = "mlgate.kubeflow.pipelines"


def pipelines_dir() -> Path:
    return Path(str(resources.files(PACKAGE)))


def compiled_dir() -> Path:
    """The committed compiled YAML (package data), what `submit` sends and the UI uploads."""
    return pipelines_dir() / "compiled"


def compiled_path(name: str, folder: Path | None = None) -> Path:
    return (folder or compiled_dir()) / f"{name}.yaml"


def names() -> list[str]:
    """Every pipeline module (not private), sorted."""
    return sorted(
        p.stem
        for p in pipelines_dir().glob("*.py")
        if not p.name.startswith("_") and p.stem != "__init__"
    )


def load(name: str) -> Any:
    """Import `mlgate.kubeflow.pipelines.<name>` and return its `PIPELINE` (a GraphComponent)."""
    known = names()
    if name not in known:
        raise BadInputError(f"unknown pipeline {name!r} (known: {', '.join(known) or 'none'})")
    module = importlib.import_module(f"mlgate.kubeflow.pipelines.{name}")
    pipeline = getattr(module, "PIPELINE", None)
    if pipeline is None:
        raise ConfigError(f"{module.__file__}: defines no PIPELINE")
    return pipeline
