"""Attacks on approvals, the champion lookup, settings and secrets, each performed end to end
on a real git remote (and the validating GitHub server), each asserting that nothing was
committed, pushed or merged.

The PRs here are canary weight steps opened through `open_pr` (a change that carries no gate
report), so what is judged is the approval alone."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlgate.config import load_settings
from mlgate.errors import BadInputError, install_log_redaction
from mlgate.gitops import pr as prmod
from mlgate.gitops.overlay import Release, write_release
from mlgate.gitops.repo import GitopsRepo, seed_bare
from mlgate.gitops.status import StateUnreadable, stable_version
from mlgate.records.trailers import make_trailers
from tests.gitops_helpers import MODEL, cli, main_message, remote_refs

AUTHOR_EMAIL = "test@mlgate.invalid"  # the conftest's git identity: the author of every PR


def _weight_pr(settings, env: str, weight: int = 20) -> prmod.PullRequest:
    """Open a real PR (commit on a branch of the remote) that changes MODEL in ENV."""

    def edit(root: Path) -> None:
        # release.yaml pins what the trailers say (merge checks the diff against them)
        image = "registry.invalid/credit_risk@sha256:" + "0" * 64
        write_release(
            root,
            Release(
                model=MODEL,
                env=env,
                stable_version="1",
                stable_image=image,
                canary_version="1",
                canary_image=image,
                canary_weight=weight,
            ),
        )

    branch = f"canary/{MODEL}-1-{env}-weight-{weight}"
    subject = f"Canary {MODEL} 1 in {env}: -> {weight}%"
    proposal = prmod.Proposal(
        model=MODEL,
        env=env,
        change="canary-set-weight",
        version="1",
        branch=branch,
        subject=subject,
        trailers=make_trailers(
            model=MODEL,
            model_version="1",
            environment=env,
            change="canary-set-weight",
            canary_weight=weight,
        ),
        description=f"## {subject}\n",
    )
    return prmod.open_pr(settings, proposal, edit)


def _set_reviewers(bare: Path, text: str, tmp: Path) -> None:
    """Change reviewers.yaml on main as a reviewed commit would."""
    clone = tmp / "reviewers-change"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    (clone / "reviewers.yaml").write_text(text, encoding="utf-8")
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "Reviewers"], check=True)
    subprocess.run(["git", "-C", str(clone), "push", "-q", "origin", "HEAD:main"], check=True)


@pytest.fixture
def local(workspace: Path):
    settings = load_settings()
    GitopsRepo.open(settings)  # seeds the embedded remote, reviewers.yaml included
    return settings, Path(GitopsRepo.locate(settings).remote)


@pytest.fixture
def on_github(fake_github, workspace: Path, monkeypatch: pytest.MonkeyPatch):
    state, url, bare = fake_github
    seed_bare(bare)
    monkeypatch.setenv("MLGATE_GITOPS__REMOTE", str(bare))
    monkeypatch.setenv("MLGATE_GITOPS__GITHUB_REPO", "example-bank/mlgate")
    monkeypatch.setenv("MLGATE_GITOPS__GITHUB_API", url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_testtoken0123456789")
    state.protect_base = True
    return state, load_settings(), bare


# --- local approvals ---------------------------------------------------------------------
def test_approver_not_on_the_reviewers_list_is_refused(local) -> None:
    settings, _ = local
    pr = _weight_pr(settings, "dev")
    before = remote_refs(settings)
    with pytest.raises(BadInputError, match="'mallory': not on the reviewers list"):
        prmod.merge_pr(settings, pr.branch, ["mallory"])
    assert remote_refs(settings) == before
    # a listed reviewer merges the same PR, and the trailer names them
    assert prmod.merge_pr(settings, pr.branch, ["bob"]).approvers == ["bob"]
    assert main_message(settings).rstrip().endswith("Approved-by: bob")


def test_self_approval_is_refused_in_every_environment(local, tmp_path: Path) -> None:
    settings, bare = local
    _set_reviewers(
        bare,
        "reviewers:\n"
        "  - {name: tess, email: test@mlgate.invalid, roles: [ml-engineer, model-risk]}\n"
        "  - {name: mlgate-test, roles: [ml-engineer]}\n"
        "  - {name: bob, roles: [ml-engineer]}\n",
        tmp_path,
    )
    pr = _weight_pr(settings, "dev")
    assert pr.author_email == AUTHOR_EMAIL
    before = remote_refs(settings)
    for names in (["tess"], ["mlgate-test"], ["TESS", "mlgate-test"]):
        with pytest.raises(prmod.Refused, match="cannot approve it"):
            prmod.merge_pr(settings, pr.branch, names)
    # one of two approvers being the author is refused too (not silently dropped)
    with pytest.raises(prmod.Refused, match="cannot approve it"):
        prmod.merge_pr(settings, pr.branch, ["bob", "tess"])
    assert remote_refs(settings) == before


def test_prod_needs_a_model_risk_approver(local) -> None:
    settings, _ = local
    pr = _weight_pr(settings, "prod")
    before = remote_refs(settings)
    with pytest.raises(prmod.Refused, match="role 'model-risk'"):
        prmod.merge_pr(settings, pr.branch, ["bob", "dana"])  # two ml-engineers
    assert remote_refs(settings) == before
    assert prmod.merge_pr(settings, pr.branch, ["carol"]).approvers == ["carol"]


def test_a_pr_cannot_add_its_author_to_the_reviewers_list(local) -> None:
    """The list is read from main: a PR that edits reviewers.yaml approves nothing."""
    settings, bare = local
    pr = _weight_pr(settings, "dev")
    repo = GitopsRepo.locate(settings)
    text = subprocess.run(
        ["git", f"--git-dir={repo.remote}", "show", f"refs/heads/{pr.branch}:reviewers.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mallory" not in text
    with pytest.raises(BadInputError, match="mallory"):
        prmod.merge_pr(settings, pr.branch, ["mallory"])


# --- GitHub approvals ----------------------------------------------------------------------
def _approve(state, number: int, login: str, sha: str) -> None:
    reviews = state.reviews.setdefault(number, [])
    reviews.append(
        {"id": len(reviews) + 1, "user": {"login": login}, "state": "APPROVED", "commit_id": sha}
    )


@pytest.mark.slow
def test_cli_approver_in_github_mode_is_refused(on_github) -> None:
    state, settings, bare = on_github
    pr = _weight_pr(settings, "dev")
    before = _bare_refs(bare)
    env = {**os.environ, "MLGATE_WORKSPACE": str(settings.ws().root)}
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "pr", "merge", pr.branch, "--approver", "alice"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "never names given here" in proc.stderr
    assert "ghp_testtoken0123456789" not in proc.stderr + proc.stdout
    assert "pulls/merge" not in [c[2] for c in state.calls]
    assert _bare_refs(bare) == before
    assert state.errors == []


@pytest.mark.slow
def test_github_pr_without_approval_is_not_merged(on_github) -> None:
    state, settings, bare = on_github
    pr = _weight_pr(settings, "dev")
    before = _bare_refs(bare)
    # a review by someone not on reviewers.yaml, and a comment, are no approvals
    _approve(state, pr.github_number, "mallory", pr.sha)
    state.reviews[pr.github_number].append(
        {"id": 9, "user": {"login": "bob"}, "state": "COMMENTED", "commit_id": pr.sha}
    )
    with pytest.raises(prmod.Refused, match="not on reviewers.yaml: mallory"):
        prmod.merge_pr(settings, pr.branch, [])
    assert "pulls/merge" not in [c[2] for c in state.calls]
    assert _bare_refs(bare) == before
    assert state.errors == []


@pytest.mark.slow
def test_github_approval_of_an_older_commit_does_not_count(on_github) -> None:
    state, settings, bare = on_github
    pr = _weight_pr(settings, "dev")
    _approve(state, pr.github_number, "bob", pr.sha)
    # the author pushes another commit after the approval: the PR's head moves
    git = ["git", f"--git-dir={bare}"]
    tree = subprocess.run(
        [*git, "rev-parse", f"{pr.sha}^{{tree}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    message = subprocess.run(
        [*git, "log", "-1", "--format=%B", pr.sha], capture_output=True, text=True, check=True
    ).stdout.replace("Canary", "Canary (pushed again)", 1)
    moved = subprocess.run(
        [*git, "commit-tree", tree, "-p", pr.base, "-m", message.strip()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([*git, "update-ref", f"refs/heads/{pr.branch}", moved], check=True)
    before = _bare_refs(bare)
    with pytest.raises(prmod.Refused, match="at least one approval"):
        prmod.merge_pr(settings, pr.branch, [])
    assert "pulls/merge" not in [c[2] for c in state.calls]
    assert _bare_refs(bare) == before
    # approving the new head merges it, through GitHub's merge API, pinned to that head
    _approve(state, pr.github_number, "bob", moved)
    res = prmod.merge_pr(settings, pr.branch, [])
    assert res.approvers == ["bob"]
    assert "pulls/merge" in [c[2] for c in state.calls]
    assert main_message(settings, "refs/heads/main").rstrip().endswith("Approved-by: bob")
    assert state.errors == []


# --- the champion fails closed --------------------------------------------------------------
def test_unreadable_champion_is_never_a_first_version(local, monkeypatch) -> None:
    settings, bare = local
    assert stable_version(settings, MODEL, "dev") is None  # git proves nothing runs there
    monkeypatch.setenv("MLGATE_GITOPS__REMOTE", str(bare))
    monkeypatch.setenv("MLGATE_GITOPS__BRANCH", "mian")
    with pytest.raises(StateUnreadable, match="no branch 'mian'"):
        stable_version(load_settings(), MODEL, "dev")
    monkeypatch.setenv("MLGATE_GITOPS__BRANCH", "main")
    monkeypatch.setenv("MLGATE_GITOPS__REMOTE", str(bare.parent / "moved-away.git"))
    with pytest.raises(StateUnreadable, match="moved-away.git"):
        stable_version(load_settings(), MODEL, "dev")


def test_gates_with_an_unreadable_champion_are_inconclusive(
    registered_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same challenger judged as a first version (its gates decide) and with git pointing
    at a branch or remote that cannot be read: exit 3, the reason names what was unreadable.
    In-process (the console script's error handling, the settings from the environment as a
    deployment sets them): three subprocesses cost two minutes of imports."""
    bare = tmp_path / "gitops.git"
    seed_bare(bare)
    results = {}
    for case, extra in {
        "readable": {"MLGATE_GITOPS__REMOTE": str(bare)},
        "wrong branch": {"MLGATE_GITOPS__REMOTE": str(bare), "MLGATE_GITOPS__BRANCH": "mian"},
        "missing remote": {"MLGATE_GITOPS__REMOTE": str(tmp_path / "gone.git")},
    }.items():
        with monkeypatch.context() as m:
            m.delenv("MLGATE_GITOPS__BRANCH", raising=False)
            for key, value in extra.items():
                m.setenv(key, value)
            code, out, err = cli(
                "--workspace", str(registered_model.workspace), "gates", "run",
                "--model", registered_model.model, "--challenger", registered_model.version,
                "--env", "stage", "--report", str(tmp_path / case.replace(" ", "-")),
                "--no-evidently", "--json",
            )  # fmt: skip
        results[case] = (code, json.loads(out) if out else {}, err)
    code, data, proc = results["readable"]
    assert data["champion"] is None and data["data"]["champion_source"].startswith("none"), proc
    for case, needle in (("wrong branch", "no branch 'mian'"), ("missing remote", "gone.git")):
        code, data, proc = results[case]
        assert code == 3, (case, proc)
        assert data["overall"] == "INCONCLUSIVE"
        assert data["data"]["champion_source"] == "unreadable"
        perf = next(g for g in data["gates"] if g["name"] == "performance")
        assert perf["status"] == "INCONCLUSIVE"
        assert needle in json.dumps(data), case


def test_the_pipeline_evaluate_step_gets_the_git_settings() -> None:
    from mlgate.pipelines import compiling
    from mlgate.pipelines.catalog import compiled_path

    _, platform = compiling.normalise(compiled_path("training").read_text())
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    git = next(
        s for s in k8s["exec-evaluate-model"]["secretAsEnv"] if s["secretName"] == "mlgate-git"
    )
    envs = {m["envVar"] for m in git["keyToEnv"]}
    assert {"MLGATE_GITOPS__REMOTE", "MLGATE_GITOPS__BRANCH", "GITHUB_TOKEN"} <= envs


# --- settings and secrets ---------------------------------------------------------------------
def test_an_env_override_keeps_the_rest_of_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "platform.git"
    seed_bare(bare, branch="release")
    cfg = tmp_path / "mlgate.yaml"
    cfg.write_text(f"gitops:\n  remote: {bare}\n  github_api: https://ghe.example/api/v3\n")
    monkeypatch.setenv("MLGATE_GITOPS__BRANCH", "release")
    settings = load_settings(str(cfg))
    assert settings.gitops.remote == str(bare)
    assert settings.gitops.branch == "release"
    assert settings.gitops.github_api == "https://ghe.example/api/v3"
    # end to end: status reads the file's remote on the overridden branch
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "--config", str(cfg), "status", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MLGATE_GITOPS__BRANCH": "release"},
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert (status["remote"], status["branch"]) == (str(bare), "release")


def test_a_token_in_the_remote_url_never_prints(tmp_path: Path) -> None:
    secret = "s3cr3t-T0KEN-value"
    remote = f"https://deploy:{secret}@127.0.0.1:9/bank/gitops.git"
    env = {**os.environ, "MLGATE_GITOPS__REMOTE": remote, "GIT_TERMINAL_PROMPT": "0"}
    for args in (["status"], ["pr", "list"]):
        proc = subprocess.run(
            [sys.executable, "-m", "mlgate.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert secret not in proc.stderr + proc.stdout
        assert "deploy:***@127.0.0.1" in proc.stderr  # still says which remote failed


def test_secrets_are_redacted_in_log_lines(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_logtoken987654321")
    load_settings()
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("mlgate.test").info(
            "pushing to %s with %s",
            "https://x:pw123456@h/r.git?token=abcdef",
            "ghp_logtoken987654321",
        )
    text = caplog.text
    assert "pw123456" not in text and "abcdef" not in text and "ghp_logtoken" not in text
    assert "https://x:***@h/r.git?token=***" in text


def _bare_refs(bare: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={bare}", "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# --- one read, one act ---------------------------------------------------------------------
def _merge_release(settings, release, weight: int) -> None:
    """Put `release` on main as a reviewed weight change (what a concurrent user merges)."""
    from mlgate.gitops.overlay import write_release

    subject = f"Canary {MODEL} in {release.env}: {weight}%"
    proposal = prmod.Proposal(
        model=MODEL,
        env=release.env,
        change="canary-set-weight",
        version=release.canary_version,
        branch=f"canary/{MODEL}-{release.canary_version}-{release.env}-weight-{weight}",
        subject=subject,
        trailers=make_trailers(
            model=MODEL,
            model_version=release.canary_version,
            environment=release.env,
            change="canary-set-weight",
            canary_weight=weight,
        ),
    )
    pr = prmod.open_pr(settings, proposal, lambda root: write_release(root, release))
    prmod.merge_pr(settings, pr.branch, ["carol"])


def test_a_change_landing_between_plan_and_apply_is_refused(local, monkeypatch) -> None:
    """set-weight plans its subject ("20% -> 30%") from one read; another weight change merged
    before the edit runs under the lock makes that plan wrong: refused, nothing written."""
    from mlgate.gitops import canary
    from mlgate.gitops.overlay import Release

    settings, _ = local
    image = "127.0.0.1:5555/mlgate/credit-risk@sha256:" + "1" * 64
    running = Release(
        model=MODEL,
        env="prod",
        stable_version="1",
        stable_image=image,
        canary_version="2",
        canary_image=image.replace("1" * 64, "2" * 64),
        canary_weight=20,
    )
    _merge_release(settings, running, 20)
    real_open_pr = canary.open_pr

    def racing_open_pr(settings_, proposal, edit):
        _merge_release(settings_, running.model_copy(update={"canary_weight": 40}), 40)
        racing_open_pr.refs = remote_refs(settings_)
        return real_open_pr(settings_, proposal, edit)

    monkeypatch.setattr(canary, "open_pr", racing_open_pr)
    with pytest.raises(prmod.Refused, match="changed meanwhile"):
        canary.set_weight(settings, MODEL, "prod", 30)
    assert remote_refs(settings) == racing_open_pr.refs  # no branch, no commit


@pytest.mark.slow
def test_github_review_by_the_changes_author_is_refused(on_github, tmp_path: Path) -> None:
    """The bot opens the PR, the commit's author approves it on GitHub: refused."""
    state, settings, bare = on_github
    _set_reviewers(
        bare,
        "reviewers:\n"
        "  - {name: tess, github: tess-gh, email: test@mlgate.invalid, roles: [ml-engineer]}\n",
        tmp_path,
    )
    pr = _weight_pr(settings, "dev")
    _approve(state, pr.github_number, "tess-gh", pr.sha)
    before = _bare_refs(bare)
    with pytest.raises(prmod.Refused, match="cannot approve it"):
        prmod.merge_pr(settings, pr.branch, [])
    assert "pulls/merge" not in [c[2] for c in state.calls]
    assert _bare_refs(bare) == before
    assert state.errors == []
