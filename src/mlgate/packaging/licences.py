"""Which licence each Python distribution declares, and whether the project's policy allows it.

A bank ships what it installs: every distribution in the venv `make` builds and in the images'
wheelhouses must carry a licence the policy (`config/licences.yaml`) allows. Distributions
declare licences unevenly, so the reader takes, in order: an explicit per-package exception
(pinned to a version, with the reason a reviewer accepted), the SPDX `License-Expression`
(metadata 2.4), a `License` field that is itself a valid SPDX expression, a `License` text the
policy maps to SPDX (`aliases`), and last the trove `License ::` classifiers the policy maps
(several mean a choice: joined with OR). Anything else is unknown, and unknown fails: a
distribution is never let through because its metadata said nothing.

The functions here are pure (metadata and policy in, result out); reading the installed
distributions or a wheel's METADATA is the callers' small I/O (`installed`, `wheel_metadata`).
The same reader fills the image SBOMs' licence fields.
"""

from __future__ import annotations

import zipfile
from email.message import Message
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Literal, Protocol

from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlgate.config import REPO_ROOT, load_yaml, parse_model
from mlgate.errors import ConfigError

Source = Literal["License-Expression", "License", "alias", "classifiers", "exception"]
_SHORT = 100  # a License field longer than this (or multi-line) is a licence text, not a name


class Metadata(Protocol):
    """What the reader needs of core metadata (importlib's PackageMetadata or an email
    Message parsed from a wheel's METADATA both have it)."""

    def get(self, name: str, failobj: None = None) -> str | None: ...

    def get_all(self, name: str, failobj: None = None) -> list[str] | None: ...


class ReviewedLicence(BaseModel):
    """A licence a reviewer established for one version of one distribution."""

    model_config = ConfigDict(extra="forbid")
    version: str  # the reviewed version: a new one is read from its metadata again
    licence: str  # SPDX expression
    reason: str = Field(min_length=10)  # what the reviewer checked (LICENSE file, upstream, ...)

    @field_validator("licence")
    @classmethod
    def _spdx(cls, v: str) -> str:
        return _canonical_or_raise(v)


class LicencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    allowed: list[str] = Field(min_length=1)  # SPDX ids (or "X WITH Y" terms)
    classifiers: dict[str, str] = {}  # trove classifier -> SPDX expression
    aliases: dict[str, str] = {}  # exact License field text -> SPDX expression
    exceptions: dict[str, ReviewedLicence] = {}  # distribution name -> reviewed licence

    @field_validator("allowed")
    @classmethod
    def _spdx_ids(cls, v: list[str]) -> list[str]:
        return [_canonical_or_raise(x) for x in v]

    @field_validator("classifiers", "aliases")
    @classmethod
    def _spdx_values(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: _canonical_or_raise(x) for k, x in v.items()}

    @field_validator("exceptions")
    @classmethod
    def _exception_names(cls, v: dict[str, ReviewedLicence]) -> dict[str, ReviewedLicence]:
        return {canonicalize_name(name): exc for name, exc in v.items()}


class DistLicence(BaseModel):
    name: str
    version: str
    licence: str | None  # canonical SPDX expression, None = unknown
    source: Source | None
    declared: str = ""  # what the metadata said, for the reader of a failure


class LicenceFinding(BaseModel):
    name: str
    version: str
    licence: str | None
    problem: str


class LicenceReport(BaseModel):
    checked: list[DistLicence]
    failures: list[LicenceFinding]

    @property
    def ok(self) -> bool:
        return not self.failures


def _canonical(expr: str) -> str | None:
    try:
        return canonicalize_license_expression(expr)
    except InvalidLicenseExpression:
        return None


def _canonical_or_raise(expr: str) -> str:
    canon = _canonical(expr)
    if canon is None:
        raise ValueError(f"not a valid SPDX licence expression: {expr!r}")
    return canon


def load_policy(path: Path | None = None) -> LicencePolicy:
    path = path or REPO_ROOT / "config" / "licences.yaml"
    return parse_model(LicencePolicy, load_yaml(path), str(path))


def read_licence(meta: Metadata, policy: LicencePolicy) -> DistLicence:
    """The licence a distribution declares, as one canonical SPDX expression (or unknown)."""
    name = canonicalize_name(meta.get("Name") or "")
    version = meta.get("Version") or ""

    def found(licence: str, source: Source, declared: str) -> DistLicence:
        return DistLicence(
            name=name, version=version, licence=licence, source=source, declared=declared
        )

    exc = policy.exceptions.get(name)
    if exc and exc.version == version:  # a reviewed decision beats what the metadata says
        return found(exc.licence, "exception", exc.reason)
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        canon = _canonical(expression)
        if canon:
            return found(canon, "License-Expression", expression)
    text = (meta.get("License") or "").strip()
    short = text if text and "\n" not in text and len(text) <= _SHORT else ""
    if short and (canon := _canonical(short)):
        return found(canon, "License", short)
    if short in policy.aliases:
        return found(policy.aliases[short], "alias", short)
    trove = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    mapped = sorted({policy.classifiers[c] for c in trove if c in policy.classifiers})
    if mapped:
        joined = " OR ".join(f"({m})" if " " in m else m for m in mapped)
        return found(_canonical_or_raise(joined), "classifiers", "; ".join(trove))
    declared = expression or short or "; ".join(trove) or "(no licence metadata)"
    return DistLicence(name=name, version=version, licence=None, source=None, declared=declared)


def _tokens(expr: str) -> list[str]:
    return expr.replace("(", " ( ").replace(")", " ) ").split()


def allowed(expr: str, policy: LicencePolicy) -> bool:
    """Whether an SPDX expression is satisfiable under the allow-list: every licence of an AND
    must be allowed, one of an OR suffices; `X WITH Y` must be allowed as written."""
    ok = set(policy.allowed)
    tokens = _tokens(expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def either() -> bool:
        result = both()
        while peek() == "OR":
            take()
            result = both() or result
        return result

    def both() -> bool:
        result = one()
        while peek() == "AND":
            take()
            result = one() and result
        return result

    def one() -> bool:
        if peek() == "(":
            take()
            result = either()
            take()  # ")" (the expression is canonical, so balanced)
            return result
        term = take()
        if peek() == "WITH":
            term = f"{term} {take()} {take()}"
        return term in ok

    return either()


def check_licences(dists: list[DistLicence], policy: LicencePolicy) -> LicenceReport:
    """Every distribution must have a known licence the policy allows; each failure names it."""
    failures = []
    for d in sorted(dists, key=lambda d: (d.name, d.version)):
        if d.licence is None:
            problem = (
                f"unknown licence (metadata: {d.declared}); add an alias or a reviewed exception"
            )
        elif not allowed(d.licence, policy):
            problem = f"licence {d.licence} is not allowed (allowed: {', '.join(policy.allowed)})"
        else:
            continue
        failures.append(
            LicenceFinding(name=d.name, version=d.version, licence=d.licence, problem=problem)
        )
    return LicenceReport(checked=dists, failures=failures)


def installed(policy: LicencePolicy, path: list[str] | None = None) -> list[DistLicence]:
    """The licence of every distribution importable from `path` (default: this interpreter)."""
    seen: dict[tuple[str, str], DistLicence] = {}
    for dist in metadata.distributions(path=path) if path else metadata.distributions():
        lic = read_licence(dist.metadata, policy)  # type: ignore[arg-type]
        if not lic.name:  # a broken install: say where, rather than check a nameless thing
            raise ConfigError(f"a distribution without a Name in {path or 'sys.path'}")
        seen.setdefault((lic.name, lic.version), lic)
    return list(seen.values())


def wheel_metadata(wheel: Path) -> Message:
    """The core metadata of a wheel file (its *.dist-info/METADATA), without installing it."""
    with zipfile.ZipFile(wheel) as zf:
        names = [
            n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        ]
        if len(names) != 1:
            raise ConfigError(
                f"{wheel.name}: expected one *.dist-info/METADATA, found {len(names)}"
            )
        return HeaderParser().parsestr(zf.read(names[0]).decode("utf-8", errors="replace"))
