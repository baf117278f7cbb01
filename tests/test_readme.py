"""README.md's "A model's life, command by command" runs as written.

The fenced block under that heading is extracted (comments stripped, backslash continuations
joined) and each command is run literally by bash in an empty folder, with the venv's `mlgate`
first on PATH and the workspace in MLGATE_WORKSPACE. The only other settings are what a user's
machine would have: a loopback registry port of this test's own and the git identity. A README
that names a verb, an option or a value the CLI does not take fails here, so the README cannot
drift from the CLI again. The assertions then read what the walk-through left behind (git, the
workspace) rather than its console text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The walk-through (~40 commands, two image builds) is the first test's setup: ~11 min serially
# on a loaded 2-core machine, more beside the other test worker; the default 900 s cut it short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## A model's life, command by command"
VENV_BIN = Path(sys.executable).parent


def _strip_comment(line: str) -> str:
    """The line without a shell comment: a `#` at the start of a word, outside quotes."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands(text: str) -> list[str]:
    """The commands of the first fenced block under HEADING, one per logical line."""
    if HEADING not in text:
        raise AssertionError(f"README.md has no heading {HEADING!r}")
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```[a-z]*\n(.*?)^```", section, flags=re.S | re.M)
    if match is None:
        raise AssertionError(f"no fenced command block under {HEADING!r}")
    commands, pending = [], ""
    for raw in match.group(1).splitlines():
        line = _strip_comment(raw)
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line.strip()).strip()
        pending = ""
        if line:
            commands.append(line)
    return commands


def test_extraction_strips_comments_and_joins_continuations() -> None:
    text = (
        f"intro\n{HEADING}\n\n```bash\n# a comment line\n"
        'mlgate a --x 1   # trailing comment\nmlgate b --reason "no # here" \\\n'
        "    --y 2\n\nmlgate c#notacomment\n```\n## Next\n```\nmlgate later\n```\n"
    )
    assert readme_commands(text) == [
        "mlgate a --x 1",
        'mlgate b --reason "no # here" --y 2',
        "mlgate c#notacomment",
    ]


@dataclass
class Walkthrough:
    cwd: Path
    workspace: Path
    env: dict[str, str]
    ran: list[tuple[str, subprocess.CompletedProcess[str]]]
    seconds: list[float] = field(default_factory=list)  # per command, for the failure message
    # `canary analyze` without --act while the canary runs, on a policy the log cannot
    # satisfy (run right after the README's replay; it changes nothing in git)
    waiting: subprocess.CompletedProcess[str] | None = None
    waiting_report: Path | None = None


def _unsatisfiable_policy(folder: Path) -> Path:
    """The model's policy with sample floors no data reaches (JSON is YAML)."""
    from mlgate.config import DEFAULT_POLICY_DIR
    from mlgate.gates.policy import load_policy

    policy = load_policy(DEFAULT_POLICY_DIR / "credit_risk.yaml").model_dump(mode="json")
    policy["samples"].update(min_labelled=10**9, min_current=10**9)
    policy["canary"].update(min_requests=10**9, min_early_labels=10**9)
    path = folder / "unsatisfiable-policy.yaml"
    path.write_text(json.dumps(policy))
    return path


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Walkthrough:
    from mlgate.packaging import tools
    from mlgate.serving.server import free_port

    for tool in ("buildah", "skopeo", "docker-registry", "debootstrap"):
        tools.require(tool)  # make debs installs them: missing is a failure, never a skip
    root = tmp_path_factory.mktemp("readme")
    cwd, ws = root / "cwd", root / "ws"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLGATE_") and k != "COLUMNS"}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        MLGATE_WORKSPACE=str(ws),
        MLGATE_REGISTRY__ADDRESS=f"127.0.0.1:{free_port()}",
        GIT_AUTHOR_NAME="mlgate-readme",
        GIT_AUTHOR_EMAIL="readme@mlgate.invalid",
        GIT_COMMITTER_NAME="mlgate-readme",
        GIT_COMMITTER_EMAIL="readme@mlgate.invalid",
    )
    commands = readme_commands(README.read_text(encoding="utf-8"))
    w = Walkthrough(cwd=cwd, workspace=ws, env=env, ran=[])
    try:
        for cmd in commands:
            t0 = time.monotonic()
            proc = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", cmd],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            w.ran.append((cmd, proc))
            w.seconds.append(round(time.monotonic() - t0, 1))
            if proc.returncode != 0:
                break
            if cmd.startswith("mlgate canary replay"):
                w.waiting_report = root / "waiting"
                w.waiting = subprocess.run(
                    [str(VENV_BIN / "mlgate"), "canary", "analyze", "--model", "credit_risk",
                     "--requests", str(cwd / "requests.parquet"), "--report",
                     str(w.waiting_report), "--policy", str(_unsatisfiable_policy(root))],
                    cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False,
                )  # fmt: skip
        yield w
    finally:
        subprocess.run(
            [str(VENV_BIN / "mlgate"), "registry", "down"],
            env=env,
            cwd=cwd,
            capture_output=True,
            check=False,
        )


def test_every_readme_command_is_mlgate() -> None:
    for cmd in readme_commands(README.read_text(encoding="utf-8")):
        for part in cmd.split("&&"):
            assert part.split()[0] == "mlgate", f"README command is not an mlgate verb: {cmd}"


def test_readme_walkthrough_runs_as_written(walkthrough: Walkthrough) -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    for cmd, proc in walkthrough.ran:
        assert proc.returncode == 0, (
            f"README command failed (exit {proc.returncode}): {cmd}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    assert [c for c, _ in walkthrough.ran] == commands
    timings = [(s, c) for s, (c, _) in zip(walkthrough.seconds, walkthrough.ran, strict=True)]
    (walkthrough.workspace / "readme-timings.json").write_text(json.dumps(timings, indent=1))


def _mlgate(w: Walkthrough, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [str(VENV_BIN / "mlgate"), *args],
        cwd=cwd or w.cwd,
        env=env or w.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_walkthrough_ends_where_the_readme_says(walkthrough: Walkthrough) -> None:
    """dev and stage run v2, prod runs v1 after the rollback and the abort, v2 is quarantined;
    the canary was promoted on the analysis of the replayed requests."""
    assert all(p.returncode == 0 for _, p in walkthrough.ran)
    proc = _mlgate(walkthrough, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    (model,) = json.loads(proc.stdout)["models"]
    envs = model["envs"]
    assert envs["dev"]["stable_version"] == envs["stage"]["stable_version"] == "2"
    assert envs["prod"]["stable_version"] == "1" and envs["prod"]["canary_version"] is None
    assert [q["version"] for q in model["quarantined"]] == ["2"]
    # The request log came from the README's replay, in the folder it was run from.
    assert (walkthrough.cwd / "requests.parquet").is_file()
    (analysis,) = (walkthrough.workspace / "reports" / "canary").glob("credit_risk-v2-prod-*")
    report = json.loads((analysis / "report.json").read_text())
    assert report["overall"] == "PASS" and report["data"]["canary_requests"] > 0
    # Every path defaulted into the workspace: nothing but the named log in the folder run from.
    assert sorted(p.name for p in walkthrough.cwd.iterdir()) == ["requests.parquet"]
    gates = walkthrough.workspace / "reports" / "gates"
    assert {p.name for p in gates.iterdir()} >= {
        f"credit_risk-v{v}-{e}" for v in "12" for e in ("dev", "stage", "prod")
    }


def test_promotion_commits_record_numbers_never_aliases(walkthrough: Walkthrough) -> None:
    from mlgate.gitops.history import parse_trailers

    assert all(p.returncode == 0 for _, p in walkthrough.ran)
    remote = walkthrough.workspace / "gitops.git"
    bodies = subprocess.run(
        ["git", f"--git-dir={remote}", "log", "--format=%B%x00", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\x00")
    versions = [v for b in bodies for v in parse_trailers(b).get("model-version", [])]
    assert versions and set(versions) == {"1", "2"}, versions
    images = [v for b in bodies for v in parse_trailers(b).get("image", [])]
    assert images and all("@sha256:" in i for i in images)


def test_workspace_flag_is_honoured_by_default_paths(
    walkthrough: Walkthrough, tmp_path: Path
) -> None:
    """`--workspace` (no MLGATE_WORKSPACE) from another folder: the gate report, the training
    set and the status all come from and go to that workspace, nothing to ./.mlgate."""
    assert all(p.returncode == 0 for _, p in walkthrough.ran)
    env = {k: v for k, v in walkthrough.env.items() if k != "MLGATE_WORKSPACE"}
    ws = str(walkthrough.workspace)
    report = walkthrough.workspace / "reports" / "gates" / "credit_risk-v1-dev"
    shutil.rmtree(report)
    training_set = walkthrough.workspace / "features" / "credit_world_training_set.parquet"
    training_set.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (
        ("gates", "run", "--model", "credit_risk", "--challenger", "1", "--env", "dev"),
        ("features", "training-set", "--json"),
        ("status", "--json"),
    ):
        proc = _mlgate(walkthrough, "--workspace", ws, *args, env=env, cwd=elsewhere)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
    assert (report / "report.json").is_file() and (report / "report.html").is_file()
    assert training_set.is_file()
    assert list(elsewhere.iterdir()) == []
    assert "credit_risk" in proc.stdout


def test_inconclusive_reasons_reach_the_console(walkthrough: Walkthrough, tmp_path: Path) -> None:
    """A policy the data cannot satisfy: every reason of every inconclusive gate is printed, in
    the enforced environments and in warn-only dev alike, not only written to report.json."""
    assert all(p.returncode == 0 for _, p in walkthrough.ran)
    path = _unsatisfiable_policy(tmp_path)
    for env_name, code in (("stage", 3), ("dev", 0)):
        args = ("gates", "run", "--model", "credit_risk", "--challenger", "1", "--env", env_name,
                "--policy", str(path), "--no-evidently", "--report")  # fmt: skip
        proc = _mlgate(walkthrough, *args, str(tmp_path / env_name), cwd=tmp_path)
        assert proc.returncode == code, proc.stderr[-2000:]
        doc = json.loads((tmp_path / env_name / "report.json").read_text())
        reasons = [r for g in doc["gates"] if g["status"] == "INCONCLUSIVE" for r in g["reasons"]]
        assert len(reasons) >= 2
        for reason in reasons:
            assert reason in proc.stdout, (reason, proc.stdout[-3000:])
    # promote refuses it: it was judged under a policy that is not the one in force (exit 1)
    promote = ("promote", "--model", "credit_risk", "--version", "1", "--to", "stage",
               "--report", str(tmp_path / "stage"))  # fmt: skip
    proc = _mlgate(walkthrough, *promote)
    assert proc.returncode == 1 and "policy_sha256" in proc.stderr, proc.stderr[-2000:]
    # nor can the author put it in force by naming its path in the MLflow tag gate_policy: only
    # a file of the reviewed config/policies is accepted (exit 2, naming the tag and version)
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{walkthrough.workspace / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_model_version_tag("credit_risk", "1", "gate_policy", str(path))
    try:
        proc = _mlgate(walkthrough, *promote)
    finally:
        client.delete_model_version_tag("credit_risk", "1", "gate_policy")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "gate_policy of credit_risk version 1" in " ".join(proc.stderr.split())


def test_canary_analyze_lists_every_reason_it_waits(walkthrough: Walkthrough) -> None:
    assert all(p.returncode == 0 for _, p in walkthrough.ran)
    proc, folder = walkthrough.waiting, walkthrough.waiting_report
    assert proc is not None and folder is not None, "the README never replayed a request log"
    assert proc.returncode == 3, proc.stderr[-2000:]  # WAIT
    doc = json.loads((folder / "report.json").read_text())
    reasons = [r for g in doc["gates"] if g["status"] == "INCONCLUSIVE" for r in g["reasons"]]
    assert {g["name"] for g in doc["gates"] if g["status"] == "INCONCLUSIVE"} >= {
        "volume",
        "early_delinquency",
    }
    for reason in reasons:
        assert reason in proc.stdout, (reason, proc.stdout[-3000:])
    assert "decision: WAIT" in proc.stdout
