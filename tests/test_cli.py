"""The CLI shell: help, version, exit codes for bad input, demo step discovery."""

from __future__ import annotations

import json
import os
import pty
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from typer.main import get_command
from typer.testing import CliRunner

from mlgate import cli
from mlgate.cli import app
from mlgate.config import load_settings
from mlgate.demo import discover

runner = CliRunner()
REPO_ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_console_script_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("mlgate ")


def test_unknown_command_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "no-such-verb"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2


def test_bad_platform_config_names_file_and_field(tmp_path) -> None:
    cfg = tmp_path / "mlgate.yaml"
    cfg.write_text("gitops:\n  branhc: main\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "--config", str(cfg), "demo", "--only", "nothing"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert str(cfg) in proc.stderr
    assert "branhc" in proc.stderr


def test_workspace_env_override(workspace) -> None:
    settings = load_settings()
    assert settings.ws().root == workspace
    assert settings.mlflow_tracking_uri().startswith("sqlite:///" + str(workspace))


def test_demo_steps_are_ordered_and_unique() -> None:
    steps = discover()
    names = [s.name for s in steps]
    assert len(names) == len(set(names))
    assert [s.order for s in steps] == sorted(s.order for s in steps)


def _surface_block() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    after = text.split("The CLI surface", 1)[1]
    return after.split("```", 2)[1].strip().splitlines()


def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")  # typer's own click: not click.Group


def _command(path: list[str]) -> Any:
    cmd: Any = get_command(app)
    for word in path:
        assert _is_group(cmd), f"`mlgate {' '.join(path)}`: {cmd.name} has no verbs"
        sub = cmd.commands.get(word)
        assert sub is not None, f"README names `mlgate {' '.join(path)}`, the CLI has no {word!r}"
        cmd = sub
    return cmd


def test_readme_cli_surface_names_only_verbs_that_exist() -> None:
    """Each line `mlgate HEAD a | b | c`: HEAD a group and a, b, c its verbs, or all top-level."""
    lines = _surface_block()
    assert len(lines) >= 10
    seen = set()
    for line in lines:
        words = line.split()
        assert words[0] == "mlgate", line
        alternatives = [a.split() for a in " ".join(words[1:]).split("|")]
        head = alternatives[0][0]
        if _is_group(_command([head])):
            for alt in [alternatives[0][1:], *alternatives[1:]]:
                _command([head, *alt])
                seen.add(f"{head} {alt[0]}")
        else:
            for alt in alternatives:
                _command(alt)
                seen.add(alt[0])
    assert {"monitor", "gates run", "canary replay", "pr merge"} <= seen
    assert "gates monitor" not in seen  # the daily check is `mlgate monitor`


def test_readme_walkthrough_uses_only_existing_verbs_and_options() -> None:
    """Fast twin of tests/test_readme.py: every verb and --option of the README's command
    block exists on that command (the slow test runs them)."""
    from tests.test_readme import readme_commands

    commands = readme_commands((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(commands) > 20
    for line in commands:
        for part in line.split("&&"):
            words = shlex.split(part)
            assert words[0] == "mlgate", part
            path = [w for w in words[1:3] if not w.startswith("-")]
            cmd = _command(path[:1])
            if _is_group(cmd):
                cmd = _command(path[:2])
            known = {o for p in cmd.params for o in p.opts}
            used = {w.split("=", 1)[0] for w in words if w.startswith("--")}
            assert used <= known, f"{part}: {sorted(used - known)} not options of {cmd.name}"
    assert not any("--version N" in c or "vN" in c for c in commands)  # no placeholder to guess


# Variables that make rich treat any stream as a terminal, or none: not the test's to inherit.
RICH_OVERRIDES = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM", "COLUMNS")


def _plain_env(workspace) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k not in RICH_OVERRIDES}
    return {**env, "MLGATE_WORKSPACE": str(workspace)}


def _on_terminal(args: list[str], workspace) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Run the console script with stderr on a pseudo-terminal (stdout a pipe, as `| jq`)."""
    master, slave = pty.openpty()
    env = {**_plain_env(workspace), "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlgate"), *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(), stdout, b"".join(chunks).decode(errors="replace")


def test_long_steps_show_progress_on_a_terminal_and_nothing_with_json(workspace) -> None:
    gen = ["data", "generate", "--n", "3000", "--months", "18"]
    code, stdout, tty = _on_terminal(gen, workspace)
    assert code == 0, tty
    assert "world baseline" in tty and "\x1b[" in tty  # the live progress line, drawn
    assert "applications" in stdout  # the result stays on stdout
    code, stdout, tty = _on_terminal([*gen, "--json"], workspace)
    assert code == 0 and tty == ""
    assert json.loads(stdout)["tables"]["applications"]["rows"] == 3000
    code, stdout, tty = _on_terminal(["features", "training-set"], workspace)
    assert code == 0, tty
    assert "point-in-time join" in tty
    code, stdout, tty = _on_terminal(["features", "training-set", "--json"], workspace)
    assert code == 0 and tty == "" and json.loads(stdout)["rows"] > 0


def test_long_steps_are_quiet_off_a_terminal(workspace) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mlgate.cli", "data", "generate", "--n", "3000", "--months", "18"],
        capture_output=True,
        text=True,
        env=_plain_env(workspace),
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _leaves(cmd: Any) -> Iterator[Any]:
    if _is_group(cmd):
        for sub in cmd.commands.values():
            yield from _leaves(sub)
    else:
        yield cmd


def test_each_command_module_declares_exactly_the_verbs_it_registers() -> None:
    """cli.py loads `mlgate VERB` from the modules whose COMMANDS name VERB: a module that adds
    a verb (or a subcommand under another module's group) without declaring it would be
    missing from that command line, one that declares a verb it does not add is loaded for
    nothing. Both fail here."""
    registered: dict[str, set[str]] = {}
    for verb, cmd in get_command(app).commands.items():
        for leaf in _leaves(cmd):
            module = leaf.callback.__module__
            assert module.startswith("mlgate.commands."), (verb, module)
            registered.setdefault(module.removeprefix("mlgate.commands."), set()).add(verb)
    declared = {m: set(names or ()) for m, names in cli.command_modules().items()}
    assert {m: v for m, v in declared.items() if v} == registered
    assert all(names is not None for names in cli.command_modules().values())


def test_verb_is_found_past_the_root_options() -> None:
    split = cli.split_root
    assert split(["-w", "manifests", "--config", "c.yaml", "manifests", "validate"]) == (
        ["-w", "--config"],
        "manifests",
    )
    assert split(["--workspace=ws", "--help", "pr", "verify", "-w"]) == (
        ["--workspace=ws", "--help"],
        "pr",
    )
    assert split(["--version"]) == (["--version"], None)
    assert cli.modules_for("canary") == ["canary_analyze", "gitops"]
    assert cli.modules_for("no-such-verb") == list(cli.command_modules())
    assert cli.modules_for(None) == list(cli.command_modules())


def test_manifests_validate_loads_neither_mlflow_nor_sklearn() -> None:
    """The pull-request check (`mlgate manifests validate --changed-since BASE`) starts without
    the heavy libraries other verbs need; its help is the full CLI's."""
    script = (
        "import sys\n"
        "sys.argv = ['mlgate', '-w', 'ws', 'manifests', 'validate', '--help']\n"
        "from mlgate.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    heavy = ('mlflow', 'sklearn', 'feast', 'kfp', 'mlgate.commands.gitops')\n"
        "    print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "--changed-since" in proc.stdout
    assert "LOADED []" in proc.stdout
    full = runner.invoke(app, ["manifests", "validate", "--help"])
    assert "--changed-since" in full.output


def _all_paths(cmd: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from _all_paths(sub, (*prefix, name))


def test_every_verb_renders_its_help() -> None:
    """Help text is rich markup: a literal `[/PATH]` in an option's help crashed `--help`."""
    broken = []
    for path in _all_paths(get_command(app)):
        res = runner.invoke(app, [*path, "--help"])
        if res.exit_code != 0:
            broken.append((" ".join(path), res.exit_code, repr(res.exception)))
    assert not broken, broken
