"""The workspace: where the embedded default keeps its state.

Default `./.mlgate/`, overridable with `--workspace` or `MLGATE_WORKSPACE`. Every capability
asks this module for its folder instead of building paths itself, so one flag moves everything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "MLGATE_WORKSPACE"
DEFAULT = ".mlgate"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        raw = path or os.environ.get(ENV_VAR) or DEFAULT
        return cls(Path(raw).expanduser().resolve())

    def ensure(self) -> Workspace:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def sub(self, *parts: str, create: bool = True) -> Path:
        p = self.root.joinpath(*parts)
        if create:
            p.mkdir(parents=True, exist_ok=True)
        return p

    # Well-known locations. Capabilities add their own through sub().
    @property
    def data_dir(self) -> Path:
        return self.sub("data")

    @property
    def feast_dir(self) -> Path:
        return self.sub("feast")

    @property
    def mlflow_dir(self) -> Path:
        return self.sub("mlflow")

    @property
    def reports_dir(self) -> Path:
        return self.sub("reports")
