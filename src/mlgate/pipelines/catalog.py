"""Where the pipeline definitions live and how they are imported.

`components/` and `pipelines/` are top-level packages of the project (next to `src/`), as the
architecture lays out: they are what users read and what the Kubeflow UI shows, not library
code. The library locates them from the project root (`MLGATE_PROJECT_ROOT`, default: the
checkout this package was installed from) and puts that root on `sys.path` before importing,
so `pipelines/*.py` can `import components` wherever the CLI is started. A pipeline is a module
`pipelines/<name>.py` that defines `PIPELINE` (the `@dsl.pipeline` function); its compiled form
is `pipelines/compiled/<name>.yaml`.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from mlgate.config import REPO_ROOT
from mlgate.errors import BadInputError, ConfigError

ROOT_ENV = "MLGATE_PROJECT_ROOT"


def project_root() -> Path:
    """The folder holding `pipelines/` and `components/` (checked, so errors are clear)."""
    root = Path(os.environ.get(ROOT_ENV) or REPO_ROOT).expanduser().resolve()
    if not (root / "pipelines" / "__init__.py").is_file():
        raise ConfigError(
            f"{root}: no pipelines/ package here; set {ROOT_ENV} to the mlgate project checkout"
        )
    return root


def pipelines_dir() -> Path:
    return project_root() / "pipelines"


def compiled_dir() -> Path:
    return pipelines_dir() / "compiled"


def compiled_path(name: str) -> Path:
    return compiled_dir() / f"{name}.yaml"


def _ensure_importable() -> None:
    """Put the project root first on sys.path; forget `pipelines`/`components` imported from
    another root (MLGATE_PROJECT_ROOT changed within this process)."""
    root = project_root()
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    for mod_name in [m for m in sys.modules if m.split(".")[0] in ("pipelines", "components")]:
        file = getattr(sys.modules[mod_name], "__file__", None)
        if file is None or not Path(file).resolve().is_relative_to(root):
            del sys.modules[mod_name]


def names() -> list[str]:
    """Every pipeline module (pipelines/<name>.py that is not private), sorted."""
    return sorted(
        p.stem
        for p in pipelines_dir().glob("*.py")
        if not p.name.startswith("_") and p.stem != "__init__"
    )


def load(name: str) -> Any:
    """Import pipelines/<name>.py and return its `PIPELINE` (a kfp GraphComponent)."""
    known = names()
    if name not in known:
        raise BadInputError(f"unknown pipeline {name!r} (known: {', '.join(known) or 'none'})")
    _ensure_importable()
    module = importlib.import_module(f"pipelines.{name}")
    pipeline = getattr(module, "PIPELINE", None)
    if pipeline is None:
        raise ConfigError(f"{pipelines_dir() / (name + '.py')}: defines no PIPELINE")
    return pipeline
