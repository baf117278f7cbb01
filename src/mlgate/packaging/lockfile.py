"""The hashed requirement locks (`requirements.lock`, `requirements-bootstrap.txt`) read as data.

They are pip requirement files as `scripts/lock.sh` writes them: one `name==version` per
distribution followed by a `--hash=sha256:...` for every file of that version. This is their one
parser: the image wheelhouse takes its subset (with the hashes) from here and the platform image
its whole pin list, so an install anywhere is held to the same bytes as `make venv`.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name
from pydantic import BaseModel

from mlgate.config import REPO_ROOT
from mlgate.errors import ConfigError

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)$")
_HASH = re.compile(r"^--hash=sha256:(?P<digest>[0-9a-f]{64})$")


class LockEntry(BaseModel):
    name: str  # canonical (PEP 503) name
    version: str
    hashes: list[str]  # sha256 hex of every file the lock accepts for this version

    def requirement(self) -> str:
        """The entry as a hash-checked requirement line."""
        hashes = "".join(f" \\\n    --hash=sha256:{h}" for h in self.hashes)
        return f"{self.name}=={self.version}{hashes}"


def lock_file() -> Path:
    return REPO_ROOT / "requirements.lock"


def bootstrap_file() -> Path:
    return REPO_ROOT / "requirements-bootstrap.txt"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each requirement, continuations joined, comments dropped."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def read_lock(path: Path | None = None) -> dict[str, LockEntry]:
    """Every entry of a hashed lock by canonical name. A line that is not `name==version` with
    at least one sha256 is a ConfigError naming the file and line: an unhashed pin would let
    `--require-hashes` installs fail late, or a hand edit slip in unchecked."""
    path = path or lock_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    entries: dict[str, LockEntry] = {}
    for number, line in _logical_lines(text):
        spec, *options = line.split()
        pin = _PIN.match(spec)
        if not pin:
            raise ConfigError(f"{path}:{number}: not a `name==version` pin: {spec!r}")
        hashes = []
        for opt in options:
            h = _HASH.match(opt)
            if not h:
                raise ConfigError(f"{path}:{number}: unexpected option {opt!r} (only --hash)")
            hashes.append(h.group("digest"))
        name = canonicalize_name(pin.group("name"))
        if not hashes:
            raise ConfigError(f"{path}:{number}: {name} has no --hash=sha256 (run scripts/lock.sh)")
        if name in entries:
            raise ConfigError(f"{path}:{number}: {name} is pinned twice")
        entries[name] = LockEntry(name=name, version=pin.group("version"), hashes=hashes)
    return entries
