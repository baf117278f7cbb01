"""Shared test set-up.

Every test runs against its own workspace (MLGATE_WORKSPACE -> a temp dir), so no test writes to
the user's ./.mlgate. Fixture modules under tests/fixtures/ are loaded automatically, one per
capability, so capabilities add fixtures without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if not p.name.startswith("_")
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("MLGATE_WORKSPACE", str(ws))
    monkeypatch.delenv("MLGATE_CONFIG", raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "mlgate-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@mlgate.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "mlgate-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@mlgate.invalid")
    return ws


@pytest.fixture
def workspace(_isolated_workspace: Path) -> Path:
    return _isolated_workspace


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
