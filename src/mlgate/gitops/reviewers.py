"""Who may approve a change, in which role: `reviewers.yaml` at the root of the GitOps repo.

Approvals are only as good as the list they are checked against, so the list lives where every
other change lives, in git, read from main (a pull request cannot approve itself by editing
it): a name not on it is refused, the author of a change never approves it, and prod needs a
`model-risk` approver. The embedded repository is seeded from this project's
`config/reviewers.yaml` (the walk-through's example names).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlgate.config import parse_model
from mlgate.errors import BadInputError, ConfigError

REVIEWERS_FILE = "reviewers.yaml"
MODEL_RISK = "model-risk"
# The role an environment needs among its approvers (at least one of them).
# `platform` (`mlgate init`): where every environment's Argo CD syncs from and which image runs.
REQUIRED_ROLE = {"prod": MODEL_RISK, "platform": MODEL_RISK}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
_ROLE = re.compile(r"[a-z][a-z0-9-]{0,49}")


class Reviewer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    roles: list[str] = Field(min_length=1)
    github: str | None = None  # the GitHub login, when it differs from `name`
    email: str | None = None

    @field_validator("name", "github")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.fullmatch(v):
            raise ValueError(f"{v!r} is not a plain reviewer name or login")
        return v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        for role in v:
            if not _ROLE.fullmatch(role):
                raise ValueError(f"{role!r} is not a role name (lower-case-with-dashes)")
        return v

    @property
    def login(self) -> str:
        return self.github or self.name

    def ids(self) -> set[str]:
        """Every spelling that identifies this person (to recognise a commit's author)."""
        return {x.lower() for x in (self.name, self.github, self.email) if x}


class Reviewers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reviewers: list[Reviewer] = Field(default_factory=list)

    def by_name(self, name: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.name.lower() == name.lower()), None)

    def by_login(self, login: str) -> Reviewer | None:
        return next((r for r in self.reviewers if r.login.lower() == login.lower()), None)


def parse_reviewers(text: str, source: str) -> Reviewers:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    parsed = parse_model(Reviewers, data, source)
    seen: set[str] = set()
    for r in parsed.reviewers:
        for key in {r.name.lower(), r.login.lower()}:
            if key in seen:
                raise ConfigError(f"{source}: reviewer {key!r} is listed twice")
            seen.add(key)
    return parsed


def read_reviewers(root: Path) -> Reviewers:
    """The list in a checkout of main; without one nobody may approve (exit 2 saying so)."""
    path = root / REVIEWERS_FILE
    if not path.is_file():
        raise BadInputError(
            f"{REVIEWERS_FILE}: the GitOps repository has no list of reviewers on main, so no "
            "approval can be checked; add one (name, roles) by a reviewed commit"
        )
    return parse_reviewers(path.read_text(encoding="utf-8"), REVIEWERS_FILE)
