"""GitHub's REST API for pull requests: the calls `prhost.GitHubHost` makes, nothing more.

With `gitops.github_repo` (owner/name) set, a PR is opened on GitHub (branch ref, pull request
whose body is the gate report, a comment with the lineage trailers), its approvals are the
reviews GitHub reports, and it is merged by GitHub's merge API, so branch protection and
required checks apply to mlgate's merges exactly as to a click on the button. The token comes
from `GITHUB_TOKEN` (never from a file in git); API errors are redacted like every error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import requests
from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import ConfigError, ExternalServiceError

API_VERSION = "2022-11-28"
STAGING_PREFIX = "refs/mlgate/staging/"
# GitHub rejects a comment body over 65,536 characters.
MAX_COMMENT = 65_000


class Review(BaseModel):
    """One review as GitHub reports it: who, what verdict, on which commit."""

    login: str
    state: str
    commit_id: str | None = None


class Comment(BaseModel):
    """One issue (or pull request) comment: its id, author and text."""

    id: int
    login: str
    body: str


class OpenPull(BaseModel):
    number: int
    url: str
    head_sha: str


class _Client:
    def __init__(self, settings: PlatformSettings) -> None:
        repo = settings.gitops.github_repo
        if not repo or "/" not in repo:
            raise ConfigError(f"gitops.github_repo: want owner/name, got {repo!r}")
        token = os.environ.get("GITHUB_TOKEN")
        if not token:
            raise ConfigError("GITHUB_TOKEN is not set: it is needed with gitops.github_repo")
        self.owner, self.repo = repo.split("/", 1)
        self.base = settings.gitops.github_api.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
            }
        )

    def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, ok: tuple = ()
    ) -> Any:
        url = f"{self.base}/repos/{self.owner}/{self.repo}{path}"
        try:
            resp = self.session.request(method, url, json=json, params=params, timeout=30)
        except requests.RequestException as exc:
            raise ExternalServiceError(f"GitHub API {method} {path}: {exc}") from exc
        if resp.status_code >= 300 and resp.status_code not in ok:
            raise ExternalServiceError(
                f"GitHub API {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}"
            )
        return resp.json() if resp.content else None

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list (all pages, 100 a page), oldest first."""
        page = 1
        while True:
            batch = self.call("GET", path, params={"per_page": 100, "page": page}) or []
            yield from batch
            if len(batch) < 100:
                return
            page += 1


def open_pull_request(
    settings: PlatformSettings,
    branch: str,
    sha: str,
    title: str,
    body: str,
    lineage: list[tuple[str, str]],
) -> tuple[int, str]:
    """Create the branch ref, the PR and a lineage comment; returns (number, html_url)."""
    gh = _Client(settings)
    gh.call("POST", "/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha})
    created = gh.call(
        "POST",
        "/pulls",
        json={
            "title": title,
            "head": branch,
            "base": settings.gitops.branch,
            "body": body or title,
            "maintainer_can_modify": False,
        },
    )
    number, url = int(created["number"]), str(created.get("html_url", ""))
    lines = ["mlgate lineage of this change:", "", "| trailer | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in lineage]
    gh.call("POST", f"/issues/{number}/comments", json={"body": "\n".join(lines)})
    return number, url


def find_pull(settings: PlatformSettings, branch: str) -> OpenPull | None:
    """The open PR whose head is `branch`, with the head commit GitHub holds for it."""
    gh = _Client(settings)
    pulls = gh.call("GET", "/pulls", params={"head": f"{gh.owner}:{branch}", "state": "open"})
    if not pulls:
        return None
    p = pulls[0]
    return OpenPull(
        number=int(p["number"]), url=str(p.get("html_url", "")), head_sha=str(p["head"]["sha"])
    )


def reviews(settings: PlatformSettings, number: int) -> list[Review]:
    """Every review of PR `number`, oldest first, as GitHub reports them (all pages)."""
    return [
        Review(login=r["user"]["login"], state=r["state"], commit_id=r.get("commit_id"))
        for r in _Client(settings).pages(f"/pulls/{number}/reviews")
        if (r.get("user") or {}).get("login")
    ]


def merge_pull(settings: PlatformSettings, number: int, sha: str, title: str, message: str) -> str:
    """Squash-merge PR `number` through GitHub's merge API, only if its head is still `sha`;
    the one commit on main gets `title` and `message` (the lineage trailers with Approved-by).
    GitHub refuses (405 not mergeable: protection, checks; 409 head moved): nothing merged."""
    gh = _Client(settings)
    done = gh.call(
        "PUT",
        f"/pulls/{number}/merge",
        json={
            "commit_title": title,
            "commit_message": message,
            "sha": sha,
            "merge_method": "squash",
        },
    )
    if not done or not done.get("merged"):
        raise ExternalServiceError(f"GitHub did not merge pull request #{number}: {done}")
    return str(done["sha"])


def delete_branch(settings: PlatformSettings, branch: str) -> None:
    _Client(settings).call("DELETE", f"/git/refs/heads/{branch}", ok=(404, 422))


def close_pull(settings: PlatformSettings, number: int) -> None:
    _Client(settings).call("PATCH", f"/pulls/{number}", json={"state": "closed"})


def comments(settings: PlatformSettings, number: int) -> list[Comment]:
    """Every comment on issue or PR `number`, oldest first (all pages)."""
    return [
        Comment(
            id=int(c["id"]),
            login=(c.get("user") or {}).get("login") or "",
            body=str(c.get("body") or ""),
        )
        for c in _Client(settings).pages(f"/issues/{number}/comments")
    ]


def upsert_comment(
    settings: PlatformSettings, number: int, marker: str, body: str, author: str
) -> tuple[int, str]:
    """Keep ONE comment on PR `number` that starts with `marker`: edit it if `author` (the
    token's own login) wrote one, else post it. Returns (comment id, "created" | "updated" |
    "unchanged"). A comment by anyone else is never edited, even if it carries the marker:
    whoever can comment could otherwise get the report published under their name, or have
    theirs taken for it."""
    text = f"{marker}\n{body}"
    if len(text) > MAX_COMMENT:
        text = text[:MAX_COMMENT] + "\n\n(truncated: the full report is in the report store)"
    mine = [
        c for c in comments(settings, number) if c.login == author and c.body.startswith(marker)
    ]
    gh = _Client(settings)
    if not mine:
        created = gh.call("POST", f"/issues/{number}/comments", json={"body": text})
        return int(created["id"]), "created"
    current = mine[-1]
    if current.body == text:
        return current.id, "unchanged"
    gh.call("PATCH", f"/issues/comments/{current.id}", json={"body": text})
    return current.id, "updated"
