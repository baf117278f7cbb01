"""`packaging.tools.build` retries a build only when the kernel refused buildah's memfd seal
(EBUSY, a transient state of the kernel, seen once in the full demo); any other failure and
the last attempt fail at once with buildah's own words. A fake `buildah` on PATH plays each
case and counts its calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.errors import ExternalServiceError
from mlgate.packaging import tools

SEAL = "error: buildah build failed (exit 1): Close_Fd sealing memfd copy: Device or resource busy"
FAKE = """#!/bin/sh
echo call >> "$FAKE_CALLS"
n=$(wc -l < "$FAKE_CALLS")
if [ "$FAKE_MODE" = other ]; then echo "Error: building at STEP RUN: exit status 1" >&2; exit 1; fi
if [ "$FAKE_MODE" = always ] || [ "$n" -le 1 ]; then echo "$FAKE_SEAL" >&2; exit 1; fi
exit 0
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "buildah").write_text(FAKE)
    (bin_dir / "buildah").chmod(0o755)
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", f"{bin_dir}:{tools.os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.setenv("FAKE_SEAL", SEAL)
    monkeypatch.setattr(tools.time, "sleep", lambda _s: None)
    return calls


def _calls(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_a_refused_seal_is_built_again(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "once")
    tools.build(fake.parent, "localhost/x:1")
    assert _calls(fake) == 2


def test_any_other_failure_fails_at_once(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "other")
    with pytest.raises(ExternalServiceError, match="buildah build failed .*STEP RUN"):
        tools.build(fake.parent, "localhost/x:1")
    assert _calls(fake) == 1


def test_the_retries_end(fake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_MODE", "always")
    with pytest.raises(ExternalServiceError, match="sealing memfd copy"):
        tools.build(fake.parent, "localhost/x:1")
    assert _calls(fake) == tools.BUILD_ATTEMPTS
