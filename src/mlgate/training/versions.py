"""Version references: a registry number or an MLflow alias, turned into the number once.

Every command that takes a version also takes an alias (`challenger`, which `mlgate train`
moves to each new version, or `dev`, `stage`, `prod`, `champion`, which mirror git), so no one
copies a number from one command's output into the next. Whatever records a version (a
promotion commit, a gate report, an image label) records the number this returns: an alias
moves, the number it pointed at when the evidence was made does not.
"""

from __future__ import annotations

import re

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.records.values import canonical_version
from mlgate.training.registry import connect, resolve_version

_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def version_number(
    settings: PlatformSettings, model: str, ref: str | int, field: str = "--version"
) -> str:
    """The registry's version number for `ref`, in its one spelling: a number is canonicalized
    (`002` -> `2`; callers that need it to exist look it up anyway), an alias is resolved in
    MLflow (unknown: exit 2). Anything else (`+2`, ` 2`, `2.0`) is refused naming `field`."""
    text = ref if isinstance(ref, str) else str(ref)
    if not text:
        raise BadInputError(f"{field}: empty (a version number or an alias like challenger)")
    if _ALIAS_RE.fullmatch(text):
        return canonical_version(resolve_version(connect(settings), model, text).version, field)
    return canonical_version(text, field)
