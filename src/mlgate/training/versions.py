"""Version references: a registry number or an MLflow alias, turned into the number once.

Every command that takes a version also takes an alias (`challenger`, which `mlgate train`
moves to each new version, or `dev`, `stage`, `prod`, `champion`, which mirror git), so no one
copies a number from one command's output into the next. Whatever records a version (a
promotion commit, a gate report, an image label) records the number this returns: an alias
moves, the number it pointed at when the evidence was made does not.
"""

from __future__ import annotations

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.training.registry import connect, resolve_version


def version_number(settings: PlatformSettings, model: str, ref: str | int) -> str:
    """The registry's version number for `ref`: a number is returned as it is (callers that
    need it to exist look it up anyway), an alias is resolved in MLflow (unknown: exit 2)."""
    text = str(ref).strip()
    if not text:
        raise BadInputError("--version: empty (a version number or an alias like challenger)")
    if text.isdigit():
        return text
    return str(resolve_version(connect(settings), model, text).version)
