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

# Session fixtures too costly to build once per test worker: every file that uses one runs on
# the same worker (the platform image is a ~2 GB build and push).
ONE_WORKER_FIXTURES = ("platform_image_pushed",)
# The longest files (CI's `--durations` list), started first so the workers end together.
LONGEST_FIRST = ("test_readme", "test_pipeline_local", "test_demo", "test_canary_served_verdicts")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`make test` runs two workers (pytest-xdist, `--dist loadgroup`). A file's tests stay
    together on one worker, so its module fixtures (the README walk-through, the demo run) are
    built once; files sharing a fixture of ONE_WORKER_FIXTURES form one group. The groups run in
    this order (`--no-loadscope-reorder`): LONGEST_FIRST, then files whose tests are all `slow`,
    then those with some, then the rest, so that the two workers end together.
    """
    by_file: dict[Path, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.path, []).append(item)
    group: dict[Path, str] = {}
    for path, its in by_file.items():
        shared = [f for f in ONE_WORKER_FIXTURES if any(f in i.fixturenames for i in its)]
        group[path] = shared[0] if shared else path.stem
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group[item.path]))

    def weight(path: Path) -> int:
        if path.stem in LONGEST_FIRST:
            return LONGEST_FIRST.index(path.stem) - len(LONGEST_FIRST)
        slow = [i.get_closest_marker("slow") is not None for i in by_file[path]]
        return 0 if all(slow) else 1 if any(slow) else 2

    rank = {p: (weight(p), n) for n, p in enumerate(by_file)}
    items.sort(key=lambda i: rank[i.path])


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
