"""Commit trailers and change kinds: the lineage every mlgate commit carries, one writer and
one parser.

A commit message is `subject`, a blank line, optional body lines, a blank line, and one trailer
block (`Key: value` per line) as its last paragraph. That is exactly where git looks for
trailers (`git log --format=%(trailers)`, `git interpret-trailers`): only the last paragraph,
and only when it is all trailers. So a value can change the lineage only by getting a line of
its own into that paragraph, or by making the body the last paragraph; the writer refuses both
(every value is one safe line, `values.check_text`; no subject or body line reads as a trailer),
and the parser refuses what the writer never produces (unknown keys, a single-valued key twice,
a value that fails the same checks, continuation lines) instead of taking the last one.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlgate.errors import BadInputError
from mlgate.records.values import TRAILER_LIKE, canonical_version, check_text, unsafe_char


class ChangeKind(StrEnum):
    """What a commit does to an environment (`Change:`). A canary start is a `promote` into an
    environment that already runs a stable version."""

    PROMOTE = "promote"
    CANARY_SET_WEIGHT = "canary-set-weight"
    CANARY_PROMOTE = "canary-promote"
    CANARY_ABORT = "canary-abort"
    ROLLBACK = "rollback"
    # `mlgate shadow start|stop`: a version mirrored every request, answering nobody.
    SHADOW_START = "shadow-start"
    SHADOW_STOP = "shadow-stop"
    # `mlgate init`: repository URLs, registry and platform image (no model's overlay).
    PLATFORM_INIT = "platform-init"


# The Model trailer of a platform change (`PLATFORM_INIT`): no registered model has this name.
PLATFORM_MODEL = "mlgate_platform"


# Changes after which the version runs stable (or as canary) in the environment: the promotion
# order is read from these.
ENTERING = frozenset({ChangeKind.PROMOTE, ChangeKind.CANARY_PROMOTE})
# Changes that put back a reviewed earlier state: never blocked, never themselves reverted.
RESTORING = frozenset({ChangeKind.CANARY_ABORT, ChangeKind.ROLLBACK, ChangeKind.SHADOW_STOP})
# Changes that only add or remove the shadow: nothing an applicant sees changes (no version
# enters, no canary starts), so the canary's start and the promotion order skip them.
SHADOW = frozenset({ChangeKind.SHADOW_START, ChangeKind.SHADOW_STOP})
# The kind of gate report (`Gate-Report:`) a change rests on, verified at the change, at the
# merge and by the audit; a change not listed carries none.
REPORT_KINDS: dict[ChangeKind, str] = {
    ChangeKind.PROMOTE: "promotion",
    ChangeKind.CANARY_PROMOTE: "canary-analysis",
    ChangeKind.SHADOW_START: "promotion",
}

_INT_RE = re.compile(r"[1-9][0-9]*")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# Trailer values that are version numbers: written and read in canonical form only.
_VERSION_KEYS = ("model_version", "champion", "replaces", "quarantined")


class Trailers(BaseModel):
    """The trailer block of an mlgate commit. Field order is the order written; the alias is the
    trailer key. A new trailer is a new field here, nowhere else."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, protected_namespaces=()
    )

    model: str = Field(alias="Model")
    model_version: str | None = Field(None, alias="Model-Version")
    environment: str = Field(alias="Environment")
    change: ChangeKind = Field(alias="Change")
    image_digest: str | None = Field(None, alias="Image-Digest")
    image: str | None = Field(None, alias="Image")
    mlflow_run: str | None = Field(None, alias="MLflow-Run")
    data_fingerprint: str | None = Field(None, alias="Data-Fingerprint")
    feature_service: str | None = Field(None, alias="Feature-Service")
    training_commit: str | None = Field(None, alias="Training-Commit")
    canary_weight: int | None = Field(None, alias="Canary-Weight", ge=1, le=99)
    replaces: str | None = Field(None, alias="Replaces")
    reverts: str | None = Field(None, alias="Reverts")
    quarantined: str | None = Field(None, alias="Quarantined")
    gate_report: str | None = Field(None, alias="Gate-Report")
    # written by `pr merge` only: the digest of the policy it verified the report under
    gate_policy: str | None = Field(None, alias="Gate-Policy")
    gate_result: str | None = Field(None, alias="Gate-Result")
    champion: str | None = Field(None, alias="Champion")
    # sha256 of the shadow analysis a canary start rests on (policy phases [shadow, canary, ...])
    shadow_report: str | None = Field(None, alias="Shadow-Report")
    override_reason: str | None = Field(None, alias="Override-Reason")
    approved_by: tuple[str, ...] = Field((), alias="Approved-by")

    @field_validator("*", mode="before")
    @classmethod
    def _safe(cls, v: Any, info: Any) -> Any:
        key = _ALIASES.get(info.field_name, info.field_name)
        if isinstance(v, list | tuple):
            return tuple(check_text(x, f"trailer {key}") for x in v)
        if isinstance(v, str):
            check_text(v, f"trailer {key}")
            if info.field_name in _VERSION_KEYS:
                return canonical_version(v, f"trailer {key}")
            if info.field_name == "canary_weight" and not _INT_RE.fullmatch(v):
                raise BadInputError(f"trailer {key}: {v!r} is not a weight in percent")
            if info.field_name == "gate_policy" and not _SHA256_RE.fullmatch(v):
                raise BadInputError(f"trailer {key}: {v!r} is not a sha256 (64 lowercase hex)")
        return v

    @property
    def overridden(self) -> bool:
        return self.override_reason is not None

    def pairs(self) -> list[tuple[str, str]]:
        """(key, value) in writing order, unset fields left out."""
        out: list[tuple[str, str]] = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            key = info.alias or name
            if value is None:
                continue
            for v in value if isinstance(value, tuple) else (value,):
                out.append((key, str(v.value if isinstance(v, StrEnum) else v)))
        return out

    def as_dict(self) -> dict[str, list[str]]:
        """Lower-cased key -> values: the shape `mlgate pr show --json` prints."""
        out: dict[str, list[str]] = {}
        for k, v in self.pairs():
            out.setdefault(k.lower(), []).append(v)
        return out


_ALIASES = {n: f.alias or n for n, f in Trailers.model_fields.items()}
_BY_KEY = {f.alias: n for n, f in Trailers.model_fields.items() if f.alias}
_MULTI = {"Approved-by"}


def make_trailers(**values: Any) -> Trailers:
    """Build trailers from field names; a bad value is BadInputError naming the trailer."""
    clean = {k: v for k, v in values.items() if v is not None and v != ""}
    try:
        return Trailers.model_validate(clean)
    except ValidationError as exc:
        raise BadInputError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"trailer {_ALIASES.get(loc, loc)}: {err['msg']}"


def _check_free_line(line: str, field: str) -> None:
    if line and unsafe_char(line) is not None:
        check_text(line, field)  # raises, naming the character
    if TRAILER_LIKE.match(line):
        raise BadInputError(
            f"{field}: the line {line!r} reads as a commit trailer; nothing was written"
        )


def render_block(trailers: Trailers) -> str:
    return "".join(f"{k}: {v}\n" for k, v in trailers.pairs())


def commit_message(subject: str, trailers: Trailers, body: list[str] | None = None) -> str:
    """The one writer of mlgate commit messages."""
    check_text(subject, "commit subject")
    _check_free_line(subject, "commit subject")
    text = subject + "\n\n"
    lines = [line for line in body or []]
    for line in lines:
        if line:
            check_text(line, "commit body")
        _check_free_line(line, "commit body")
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if lines:
        text += "\n".join(lines) + "\n\n"
    return text + render_block(trailers)


def split_message(text: str) -> tuple[str, str | None]:
    """(everything before the last paragraph, the last paragraph) of a commit message; blank
    lines are lines of whitespace only, as git counts them."""
    lines = text.rstrip("\n").split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].strip():
            head = "\n".join(lines[:i]).rstrip("\n")
            return head, "\n".join(lines[i + 1 :])
    return text.rstrip("\n"), None


def _canonical(value: str) -> bool:
    try:
        return canonical_version(value) == value
    except BadInputError:
        return False


def parse_message(text: str, source: str) -> Trailers | None:
    """The one parser: the trailers of an mlgate commit, None for a commit mlgate did not write
    (its last paragraph has no `Change:` line). Anything the writer would not produce is
    BadInputError naming `source` (the commit) and the line."""
    _, block = split_message(text)
    if block is None:
        return None
    lines = block.split("\n")
    if not any(line.startswith("Change:") for line in lines):
        return None
    values: dict[str, list[str]] = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep or key not in _BY_KEY:
            raise BadInputError(f"{source}: {line!r} is not an mlgate trailer")
        if key in values and key not in _MULTI:
            raise BadInputError(f"{source}: trailer {key} appears more than once")
        if _BY_KEY[key] in _VERSION_KEYS and not _canonical(value):
            raise BadInputError(
                f"{source}: trailer {key}: {value!r} is not a version number as mlgate writes it"
            )
        values.setdefault(key, []).append(value)
    data: dict[str, Any] = {k: (v if k in _MULTI else v[0]) for k, v in values.items()}
    try:
        return Trailers.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"{source}: {_first_error(exc)}") from None
    except BadInputError as exc:
        raise BadInputError(f"{source}: {exc.message}") from None


def with_approvals(
    text: str, approvers: list[str], source: str, field: str, gate_policy: str | None = None
) -> str:
    """The merged commit's message: the PR commit's, its `Approved-by:` trailers set to
    `approvers` (each name checked like any value, the error naming `field`, e.g.
    `--approver`) and `Gate-Policy:` to the digest of the policy the merge verified the report
    under (None: no report verified, none written). Set, never appended: a name already in the
    commit was written by whoever pushed it, not given by an approver or the merge's check."""
    names = [check_text(a, field) for a in approvers]
    trailers = parse_message(text, source)
    if trailers is None:
        raise BadInputError(f"{source}: not an mlgate commit (no Change trailer)")
    head, _ = split_message(text)
    merged = trailers.model_copy(update={"approved_by": tuple(names), "gate_policy": gate_policy})
    return head + "\n\n" + render_block(merged)
