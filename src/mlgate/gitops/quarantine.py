"""Quarantined versions: rolled back or aborted, so automation must not bring them back.

Kept in git next to the model's overlays (`manifests/models/<model>/quarantine.yaml`), outside
every environment folder: it renders into nothing, so reverting an environment's change never
touches it, and it travels with the history like everything else.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml as pyyaml
from pydantic import BaseModel, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from mlgate.errors import BadInputError
from mlgate.gitops.overlay import Release, model_dir
from mlgate.records.values import canonical_version

_LOADER = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)

QUARANTINE_FILE = "quarantine.yaml"
_HEADER = (
    "# Versions of {model} that automation must not bring back (rolled back or aborted).\n"
    "# Written by `mlgate rollback` and `mlgate canary abort`; remove an entry only by a\n"
    "# reviewed pull request that says why the version is safe again.\n"
)


class QuarantineEntry(BaseModel):
    version: str
    reason: str
    env: str | None = None
    at: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _canonical(cls, v: object) -> str:
        """Compared in the registry's spelling: an entry `002` (or 2 unquoted) quarantines 2."""
        try:
            return canonical_version(v, "version")
        except BadInputError as exc:
            raise ValueError(exc.message) from None


def running_versions(release: Release | None) -> frozenset[str]:
    """Every version a release runs, in any role (stable, canary, shadow): a pod of it exists."""
    if release is None:
        return frozenset()
    roles = (release.stable_version, release.canary_version, release.shadow_version)
    return frozenset(v for v in roles if v is not None)


def quarantined_by_revert(before: Release | None, after: Release | None) -> tuple[str, ...]:
    """The one quarantine rule of a revert: exactly the versions that ran in the environment
    before it and run there in no role after it (numeric order).

    A pure function of the environment's release.yaml before and after, so `mlgate rollback`
    (which writes the entries) and `pr merge` (which checks them) cannot disagree. A version
    still running after the revert (a weight step undone, a canary promotion undone: the
    version is the canary again) is never quarantined: quarantine means "automation must not
    bring it back", and it has not gone. A version that stops running (a canary start or a
    stable promotion undone, a shadow start undone) is, so it cannot be promoted again
    without a reviewed removal of its entry.
    """
    gone = running_versions(before) - running_versions(after)
    return tuple(sorted(gone, key=int))


def quarantine_path(model: str) -> str:
    return f"{model_dir(model)}/{QUARANTINE_FILE}"


def parse_quarantine(text: str | None, source: str) -> list[QuarantineEntry]:
    if not text:
        return []
    try:
        doc = pyyaml.load(text, Loader=_LOADER) or {}
        return [QuarantineEntry.model_validate(e) for e in doc.get("versions") or []]
    except (pyyaml.YAMLError, ValueError, AttributeError) as exc:
        raise BadInputError(f"{source}: not a valid quarantine list: {exc}") from exc


def read_quarantine(root: Path, model: str) -> list[QuarantineEntry]:
    path = root / quarantine_path(model)
    return parse_quarantine(path.read_text(encoding="utf-8") if path.exists() else None, str(path))


def add_quarantine(root: Path, model: str, version: str, reason: str, env: str | None) -> bool:
    """Append `version` (round-trip edit); False when it was already quarantined."""
    path = root / quarantine_path(model)
    version = canonical_version(version, "version")
    if any(e.version == version for e in read_quarantine(root, model)):
        return False
    y = YAML()
    y.indent(mapping=2, sequence=4, offset=2)
    doc: Any
    if path.exists():
        doc = y.load(path.read_text(encoding="utf-8"))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = y.load(_HEADER.format(model=model) + "versions: []\n")
    if not isinstance(doc.get("versions"), list) or not doc["versions"]:
        doc["versions"] = CommentedSeq()
    entry = CommentedMap()
    entry["version"] = version
    entry["reason"] = reason
    if env:
        entry["env"] = env
    entry["at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc["versions"].append(entry)
    buf = io.StringIO()
    y.dump(doc, buf)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return True
