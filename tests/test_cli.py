"""The CLI shell: help, version, exit codes for bad input, demo step discovery."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.config import load_settings
from mlgate.demo import discover

runner = CliRunner()


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
