"""The GitHub PR path against a local server that validates every request against GitHub's
published OpenAPI description: branch ref, pull request, comment, approvals from reviews."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.config import load_settings
from mlgate.gitops import pr as prmod
from mlgate.gitops.promote import promote
from mlgate.gitops.repo import seed_bare
from mlgate.gitops.status import stable_version
from tests.gitops_helpers import MODEL, main_message

pytestmark = pytest.mark.slow


def test_promotion_pr_on_github(fake_github, gitops_ws: Path, gate_report, monkeypatch) -> None:
    state, url, bare = fake_github
    seed_bare(bare)
    monkeypatch.setenv("MLGATE_GITOPS__REMOTE", str(bare))
    monkeypatch.setenv("MLGATE_GITOPS__GITHUB_REPO", "example-bank/mlgate")
    monkeypatch.setenv("MLGATE_GITOPS__GITHUB_API", url)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    settings = load_settings()

    pr = promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    assert state.errors == []
    assert [c[2] for c in state.calls] == [
        "git/create-ref",
        "pulls/create",
        "issues/create-comment",
    ]
    assert (pr.github_number, pr.github_url) == (1, "https://github.com/example-bank/mlgate/pull/1")
    assert state.pulls[0]["body"].startswith("## Promote credit_risk 1 to dev")
    assert "Gate report credit_risk 1 -> dev: PASS" in state.pulls[0]["body"]
    assert "| Model-Version | `1` |" in state.comments[0]["body"]
    assert state.comments[0]["issue"] == 1

    # no approving review yet: refused; then a CHANGES_REQUESTED superseded by APPROVED counts
    with pytest.raises(prmod.Refused, match="at least one"):
        prmod.merge_pr(settings, pr.branch, [])
    state.reviews[1] = [
        {"id": 1, "user": {"login": "dana"}, "state": "CHANGES_REQUESTED", "commit_id": pr.sha},
        {"id": 2, "user": {"login": "erin"}, "state": "COMMENTED", "commit_id": pr.sha},
        {"id": 3, "user": {"login": "dana"}, "state": "APPROVED", "commit_id": pr.sha},
    ]
    state.protect_base = True  # GitHub's own rule applies: the merge goes through its API
    res = prmod.merge_pr(settings, pr.branch, [])
    assert res.approvers == ["dana"]
    assert state.errors == []
    assert [c[2] for c in state.calls][-2:] == ["pulls/merge", "git/delete-ref"]
    assert stable_version(settings, MODEL, "dev") == "1"
    message = main_message(settings)
    assert message.splitlines()[0] == "Promote credit_risk 1 to dev"
    assert "\nChange: promote\n" in message and message.rstrip().endswith("Approved-by: dana")
    assert res.commit == _refs(bare).split("refs/heads/main")[0].split()[-2]


def test_github_failure_leaves_nothing(
    fake_github, gitops_ws: Path, gate_report, monkeypatch
) -> None:
    state, url, bare = fake_github
    seed_bare(bare)
    monkeypatch.setenv("MLGATE_GITOPS__REMOTE", str(bare))
    monkeypatch.setenv("MLGATE_GITOPS__GITHUB_REPO", "example-bank/mlgate")
    monkeypatch.setenv("MLGATE_GITOPS__GITHUB_API", url)
    monkeypatch.setenv("GITHUB_TOKEN", "test-token")
    settings = load_settings()
    from mlgate.errors import ExternalServiceError

    before = _refs(bare)
    with pytest.raises(ExternalServiceError):
        _break_after_ref(state)
        promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    assert state.errors == []
    assert [c[2] for c in state.calls] == ["git/create-ref", "pulls/create"]
    assert _refs(bare) == before  # the created branch ref and the staging ref are gone


def test_the_fake_rejects_what_github_would(fake_github) -> None:
    state, _, _ = fake_github
    headers = {"Authorization": "Bearer t", "X-GitHub-Api-Version": "2022-11-28"}
    code, _ = state.handle(
        "POST", "/repos/example-bank/mlgate/pulls", headers, b'{"title": "x", "base": 1}'
    )
    assert code == 422
    assert any("'head' is a required property" in e for e in state.errors)
    assert any("1 is not of type 'string'" in e for e in state.errors)
    state.errors.clear()
    code, _ = state.handle(
        "POST",
        "/repos/example-bank/mlgate/git/refs",
        headers,
        b'{"ref": "refs/heads/x", "sha": "a", "force": true}',
    )
    assert code == 422 and any("unknown field 'force'" in e for e in state.errors)
    state.errors.clear()
    code, _ = state.handle("GET", "/repos/example-bank/mlgate/pulls?colour=red", {}, b"")
    assert code == 422
    assert any("Authorization" in e for e in state.errors)
    assert any("unknown query parameter colour" in e for e in state.errors)
    state.errors.clear()
    code, _ = state.handle("POST", "/repos/example-bank/mlgate/nonsense", headers, b"{}")
    assert code == 404


def _refs(bare: Path) -> str:
    import subprocess

    return subprocess.run(
        ["git", f"--git-dir={bare}", "for-each-ref"], capture_output=True, text=True, check=True
    ).stdout


def _break_after_ref(state) -> None:
    """Make `pulls/create` fail (HTTP 422) after the ref was created."""
    original = state._act

    def act(op_id, pv, query, payload):
        if op_id == "pulls/create":
            return 422, {"message": "Validation Failed"}
        return original(op_id, pv, query, payload)

    state._act = act


def test_vendored_description_is_the_upstream_subset() -> None:
    """The vendored description is exactly the upstream package's operations mlgate calls
    (provenance in tests/fixtures/data/github-openapi/SOURCES.txt)."""
    import json

    from tests.fixtures.github_openapi import VENDORED, subset, upstream_description

    full = upstream_description()
    if full is None:
        pytest.skip("npm cannot fetch @octokit/openapi here: the vendored copy is used as is")
    assert json.loads(VENDORED.read_text()) == subset(full)
