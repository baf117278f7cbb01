"""`mlgate pr verify BRANCH --comment` on GitHub: the required check posts its verdict as ONE
PR comment, edited on re-runs, against the local server that validates every request against
GitHub's published OpenAPI description (`GET/POST /issues/{n}/comments`,
`PATCH /issues/comments/{id}`)."""

from __future__ import annotations

import json

import pytest

from mlgate.gitops.prcheck import MARKER, PrCheck, comment_body
from mlgate.gitops.promote import promote
from mlgate.gitops.report_store import local_dir, report_sha
from tests.fixtures.github_openapi import TOKEN_LOGIN
from tests.gitops_helpers import MODEL, cli

pytestmark = pytest.mark.slow


def _verify(branch: str, *extra: str) -> tuple[int, dict]:
    code, out, err = cli("pr", "verify", branch, "--comment", "--json", *extra)
    return code, json.loads(out) if out.strip() else {"err": err}


def _marked(state) -> list[dict]:
    return [c for c in state.comments if c["body"].startswith(MARKER)]


def test_rerun_updates_one_comment_and_a_refusal_fails_the_check(
    github_gitops, gate_report
) -> None:
    state, settings = github_gitops
    rep = gate_report("1", "dev")
    pr = promote(settings, MODEL, "1", "dev", rep)

    code, out = _verify(pr.branch)
    assert code == 0 and out["verdict"] == "verified", out
    assert state.errors == []
    [ours] = _marked(state)
    assert ours["issue"] == 1 and ours["user"]["login"] == TOKEN_LOGIN
    assert "mlgate gate evidence: verified" in ours["body"]
    assert "Gate report credit_risk 1 -> dev: PASS" in ours["body"]  # the report's Markdown
    assert report_sha(rep) in ours["body"]

    # Same evidence, re-run: the comment is found by its marker and left as it is.
    calls = len(state.calls)
    assert _verify(pr.branch)[0] == 0
    assert [c[2] for c in state.calls[calls:]][-1] == "issues/list-comments"
    assert len(_marked(state)) == 1

    # The stored report is edited after the PR was opened: the check fails (exit 1) and the
    # same comment now says so.
    stored = local_dir(settings, report_sha(rep)) / "report.json"
    stored.write_bytes(stored.read_bytes() + b" ")
    calls = len(state.calls)
    code, out = _verify(pr.branch)
    assert code == 1 and out["verdict"] == "refused", out
    assert state.errors == []
    assert "issues/update-comment" in [c[2] for c in state.calls[calls:]]
    [again] = _marked(state)
    assert again["id"] == ours["id"]
    assert "REFUSED" in again["body"] and "verified" not in again["body"].splitlines()[1]
    assert len(state.comments) == 2  # the lineage comment `promote` posts, and ours


def test_a_marked_comment_by_someone_else_is_never_edited(github_gitops, gate_report) -> None:
    state, settings = github_gitops
    pr = promote(settings, MODEL, "1", "dev", gate_report("1", "dev"))
    planted = f"{MARKER}\n### :white_check_mark: mlgate gate evidence: verified\n"
    state.comments.append(
        {"id": 99, "issue": 1, "body": planted, "user": {"login": "mallory", "type": "User"}}
    )
    assert _verify(pr.branch)[0] == 0
    assert state.errors == []
    assert next(c for c in state.comments if c["id"] == 99)["body"] == planted
    assert [c["user"]["login"] for c in _marked(state)] == ["mallory", TOKEN_LOGIN]


def test_unverifiable_pr_fails_and_the_embedded_host_has_no_comments(
    github_gitops, gate_report, monkeypatch
) -> None:
    state, _ = github_gitops
    code, out = _verify("promote/credit_risk-9-dev")  # no such branch: not evidence
    assert code == 2 and "no open pull request" in out.get("err", "")
    assert _marked(state) == []
    monkeypatch.delenv("MLGATE_GITOPS__GITHUB_REPO")
    code, out = _verify("promote/credit_risk-9-dev")
    assert code == 2 and "need gitops.github_repo" in out["err"]


def test_the_comment_cannot_be_formatted_by_text_from_the_pr() -> None:
    check = PrCheck(
        branch="promote/x",
        verdict="refused",
        exit_code=1,
        message="```\n### :white_check_mark: mlgate gate evidence: verified",
        problems=["```html <b>ok</b>"],
    )
    body = comment_body(check)
    assert body.splitlines()[0] == "### :x: mlgate gate evidence: REFUSED"
    inside = body.split("```text\n", 1)[1].split("\n```\n", 1)[0]
    assert "```" not in inside and "verified" in inside  # quoted, inside the one code block
