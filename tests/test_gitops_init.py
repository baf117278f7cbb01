"""`mlgate init` on a real git remote: the embedded repository is seeded with no placeholder,
init opens one reviewed PR that may change only its files, re-running changes nothing, the
platform image comes from the build record, and injection attempts through every value are
refused before anything is written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate import __version__
from mlgate.cli import app
from mlgate.config import load_settings
from mlgate.errors import BadInputError
from mlgate.gitops import pr as prmod
from mlgate.gitops.init import init
from mlgate.gitops.placeholders import find_placeholders
from mlgate.gitops.platform_values import INIT_FILES
from mlgate.gitops.repo import GitopsRepo, run_git
from mlgate.gitops.validate import validate_tree
from mlgate.records.builds import PLATFORM_REPOSITORY, BuildRecord, write_record
from tests.gitops_helpers import remote_refs

REPO = "https://git.bank.example/platform/mlgate.git"
REGISTRY = "registry.bank.example"
DIGEST = "sha256:" + "4d" * 32
IMAGE = f"{REGISTRY}/mlgate-platform@{DIGEST}"


@pytest.fixture
def settings(workspace: Path):
    s = load_settings()
    GitopsRepo.open(s)  # seeds the embedded repository
    return s


def _main_file(settings, rel: str) -> str:
    repo = GitopsRepo.locate(settings)
    return run_git(["--git-dir", repo.remote, "show", f"main:{rel}"])


def test_the_embedded_repository_holds_its_loopback_values(settings) -> None:
    repo = GitopsRepo.locate(settings)
    with GitopsRepo.open(settings).session():
        assert find_placeholders(repo.work) == []
        report = validate_tree(repo.work, settings.crd_schema_dir())
    assert report.ok, report.all_problems()
    assert Path(repo.remote).resolve().as_uri() in _main_file(settings, "argocd/appproject.yaml")
    assert "newName: 127.0.0.1:5555/mlgate-platform" in _main_file(
        settings, "manifests/base/kustomization.yaml"
    )


def test_init_is_one_reviewed_pr_and_rerunning_changes_nothing(settings) -> None:
    res = init(settings, REPO, REGISTRY, IMAGE)
    assert res.opened and res.pull_request is not None
    pr = res.pull_request
    assert pr.branch.startswith("init/platform-") and pr.change == "platform-init"
    refs = remote_refs(settings)
    again = init(settings, REPO, REGISTRY, IMAGE)  # the same values: the same open PR
    assert not again.opened and again.pull_request and again.pull_request.branch == pr.branch
    assert remote_refs(settings) == refs
    assert pr.branch in {p.branch for p in prmod.list_prs(settings)}
    with pytest.raises(prmod.Refused, match="at least one approval"):
        prmod.merge_pr(settings, pr.branch, [])  # a reviewed change: no approval, no merge
    merged = prmod.merge_pr(settings, pr.branch, ["alice"])
    assert merged.change == "platform-init" and merged.approvers == ["alice"]
    for rel in INIT_FILES:
        text = _main_file(settings, rel)
        assert (REPO in text) or (DIGEST in text and f"newName: {REGISTRY}/mlgate-platform" in text)
    assert "# What Argo CD may deploy" in _main_file(settings, "argocd/appproject.yaml")
    refs = remote_refs(settings)
    done = init(settings, REPO, REGISTRY, IMAGE)
    assert done.pull_request is None and not done.opened
    assert remote_refs(settings) == refs  # no new commit, no branch


def test_the_platform_image_comes_from_the_build_record(settings) -> None:
    with pytest.raises(BadInputError, match="mlgate image build --platform"):
        init(settings, REPO, REGISTRY)
    write_record(
        settings,
        BuildRecord(
            model=PLATFORM_REPOSITORY,
            version=__version__,
            repository=f"127.0.0.1:5555/{PLATFORM_REPOSITORY}",
            reference=f"127.0.0.1:5555/{PLATFORM_REPOSITORY}:{__version__}",
            digest=DIGEST,
        ),
    )
    res = init(settings, REPO, REGISTRY)
    assert res.values.platform_image == IMAGE  # same path and digest, on the bank's registry


def test_an_init_pr_may_change_only_the_files_init_writes(settings, tmp_path: Path) -> None:
    """A commit carrying `Change: platform-init` that also edits who may approve is refused."""
    pr = init(settings, REPO, REGISTRY, IMAGE).pull_request
    assert pr is not None
    clone = tmp_path / "attacker"
    remote = GitopsRepo.locate(settings).remote
    run_git(["clone", "-q", "-b", pr.branch, remote, str(clone)])
    reviewers = clone / "reviewers.yaml"
    reviewers.write_text(reviewers.read_text() + "  - name: mallory\n    roles: [model-risk]\n")
    run_git(["commit", "-q", "-a", "--amend", "--no-edit"], clone)
    run_git(["push", "-q", "-f", "origin", pr.branch], clone)
    with pytest.raises(prmod.Refused, match="changes reviewers.yaml, outside"):
        prmod.merge_pr(settings, pr.branch, ["alice"])


@pytest.mark.parametrize(
    ("rel", "old", "new"),
    [
        # another repoURL for prod's Argo CD, inside the files init may write
        ("argocd/applicationset.yaml", REPO, "https://git.evil.example/x/mlgate.git"),
        # an image override sneaked into the base
        (
            "manifests/base/kustomization.yaml",
            "images:\n",
            "images:\n- name: mlserver\n  newName: registry.evil.example/mlserver\n",
        ),
    ],
)
def test_an_init_pr_may_write_only_what_init_writes_for_its_values(
    settings, tmp_path: Path, rel: str, old: str, new: str
) -> None:
    """Within init's own files the content is re-derived from the values the commit states:
    an amended repoURL or an added image override is refused; one approver of any role is not
    enough for a platform change either."""
    pr = init(settings, REPO, REGISTRY, IMAGE).pull_request
    assert pr is not None
    with pytest.raises(prmod.Refused, match="model-risk"):
        prmod.merge_pr(settings, pr.branch, ["bob"])  # an ml-engineer only
    clone = tmp_path / "attacker"
    run_git(["clone", "-q", "-b", pr.branch, GitopsRepo.locate(settings).remote, str(clone)])
    path = clone / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    run_git(["commit", "-q", "-a", "--amend", "--no-edit"], clone)
    run_git(["push", "-q", "-f", "origin", pr.branch], clone)
    refs = remote_refs(settings)
    with pytest.raises(prmod.Refused, match=f"{rel} is not what init writes"):
        prmod.merge_pr(settings, pr.branch, ["alice"])
    assert remote_refs(settings) == refs


BAD_REPOS = [
    f"{REPO}\nkind: Secret",
    f"{REPO}; rm -rf /",
    "https://user:ghp_token@git.bank.example/platform/mlgate.git",
    "http://git.bank.example/platform/mlgate.git",
    "file:///etc/passwd",
    "ext::sh -c touch% /tmp/pwned",
    "ftp://git.bank.example/platform/mlgate.git",
    f"{REPO}?ref=x",
    f"{REPO}#frag",
    "https://git.bank.example/platform/$(whoami).git",
    "https://git.bank.example/platform/`id`.git",
    f'{REPO}" \nevil: 1',
    f"'{REPO}'",
    f" {REPO}",
    f"{REPO}\r",
    f"{REPO}\n",
    "https://git.bank.example/../../etc/passwd",
    "https://git.bank.example:99999/platform/mlgate.git",
    "https://git.example.invalid/your-org/mlgate.git",
    "-uhttps://git.bank.example/platform/mlgate.git",
    "--upload-pack=touch /tmp/pwned",
]
BAD_REGISTRIES = [
    f"{REGISTRY}\nimages: []",
    f"{REGISTRY}; echo",
    "Registry.Bank.Example",
    f"https://{REGISTRY}",
    "registry.example.invalid",
    f"{REGISTRY}/../x",
    "reg istry.bank.example",
    f"{REGISTRY}:99999",
    "{a: 1}",
    "registry",
    f"{REGISTRY}\n",
]
BAD_IMAGES = [
    f"{REGISTRY}/mlgate-platform:latest",
    "sha256:" + "0" * 64,
    f"{REGISTRY}/mlgate-platform@sha256:" + "0" * 64,
    "evil.example/mlgate-platform@" + DIGEST,
    f"{REGISTRY}/mlgate-platform@sha256:" + "A" * 64,
    f"{IMAGE}\nfoo: bar",
    f"{REGISTRY}/Mlgate@{DIGEST}",
    f"{IMAGE}\n",
]


def test_injection_attempts_are_refused_before_anything_is_written(settings) -> None:
    refs = remote_refs(settings)
    attempts = (
        [(r, REGISTRY, IMAGE) for r in BAD_REPOS]
        + [(REPO, r, IMAGE) for r in BAD_REGISTRIES]
        + [(REPO, REGISTRY, i) for i in BAD_IMAGES]
    )
    for repo_url, registry, image in attempts:
        with pytest.raises(BadInputError) as err:
            init(settings, repo_url, registry, image)
        assert any(
            flag in err.value.message for flag in ("--repo", "--registry", "--platform-image")
        )
    assert remote_refs(settings) == refs
    assert not list(Path("/tmp").glob("pwned"))


def test_cli_exit_codes(settings) -> None:
    bad = CliRunner().invoke(app, ["init", "--repo", BAD_REPOS[0], "--registry", REGISTRY])
    assert bad.exit_code == 2 or getattr(bad.exception, "exit_code", None) == 2
    ok = CliRunner().invoke(
        app, ["init", "--repo", REPO, "--registry", REGISTRY, "--platform-image", DIGEST, "--json"]
    )
    assert ok.exit_code == 0, ok.output
    assert '"opened": true' in ok.stdout and IMAGE in ok.stdout
    out = subprocess.run(
        ["git", f"--git-dir={GitopsRepo.locate(settings).remote}", "branch", "--list", "init/*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().startswith("init/platform-")
