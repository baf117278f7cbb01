"""GitHub as the PR host: branch ref, pull request, comment, and approvals from reviews.

With `gitops.github_repo` (owner/name) set, `open_pr` pushes the commit object with git to a
staging ref, then through the REST API (`gitops.github_api`) creates the branch ref
`refs/heads/<branch>`, opens the pull request whose body is the gate report, and comments the
lineage trailers. `pr merge` takes its approvers from the PR's reviews (latest review per
reviewer, state APPROVED). The token comes from `GITHUB_TOKEN` (never from a file in git).
"""

from __future__ import annotations

import os
from typing import Any

import requests

from mlgate.config import PlatformSettings
from mlgate.errors import ConfigError, ExternalServiceError
from mlgate.gitops.pr import Proposal

API_VERSION = "2022-11-28"
STAGING_PREFIX = "refs/mlgate/staging/"


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

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        url = f"{self.base}/repos/{self.owner}/{self.repo}{path}"
        try:
            resp = self.session.request(method, url, json=json, params=params, timeout=30)
        except requests.RequestException as exc:
            raise ExternalServiceError(f"GitHub API {method} {path}: {exc}") from exc
        if resp.status_code >= 300:
            raise ExternalServiceError(
                f"GitHub API {method} {path}: HTTP {resp.status_code}: {resp.text[:300]}"
            )
        return resp.json() if resp.content else None


def open_pull_request(settings: PlatformSettings, proposal: Proposal, sha: str) -> tuple[int, str]:
    """Create the branch ref, the PR and a lineage comment; returns (number, html_url)."""
    gh = _Client(settings)
    gh.call("POST", "/git/refs", json={"ref": f"refs/heads/{proposal.branch}", "sha": sha})
    created = gh.call(
        "POST",
        "/pulls",
        json={
            "title": proposal.subject,
            "head": proposal.branch,
            "base": settings.gitops.branch,
            "body": proposal.description or proposal.subject,
            "maintainer_can_modify": False,
        },
    )
    number, url = int(created["number"]), str(created.get("html_url", ""))
    lines = ["mlgate lineage of this change:", "", "| trailer | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in proposal.trailers.pairs()]
    gh.call("POST", f"/issues/{number}/comments", json={"body": "\n".join(lines)})
    return number, url


def approvers_for(settings: PlatformSettings, branch: str) -> list[str]:
    """Reviewers whose latest review of the open PR for `branch` is APPROVED."""
    gh = _Client(settings)
    pulls = gh.call("GET", "/pulls", params={"head": f"{gh.owner}:{branch}", "state": "open"})
    if not pulls:
        return []
    number = int(pulls[0]["number"])
    reviews = gh.call("GET", f"/pulls/{number}/reviews", params={"per_page": 100})
    latest: dict[str, str] = {}
    for r in reviews or []:
        login = (r.get("user") or {}).get("login")
        if login and r.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[login] = r["state"]
    return [login for login, state in latest.items() if state == "APPROVED"]
