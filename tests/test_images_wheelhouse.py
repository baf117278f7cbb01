"""The wheelhouse takes pins that exist only as source distributions (kfp-server-api 2.17.0 is
one: the platform image needs it) by building them into wheels on the host from the sdist whose
sha256 the lock names, and locks the built wheel by hash like any other wheel."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlgate.packaging.lockfile import read_lock
from mlgate.packaging.wheelhouse import ensure_wheelhouse

SDIST_ONLY = "kfp-server-api"


@pytest.mark.slow
def test_source_only_requirement_becomes_a_locked_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGATE_CACHE_DIR", str(tmp_path / "cache"))
    entry = read_lock()[SDIST_ONLY]
    assert len(entry.hashes) == 1  # PyPI has only its sdist: the lock names that file
    wh = ensure_wheelhouse((f"{SDIST_ONLY}=={entry.version}",))
    names = {w.name: w for w in wh.wheels}
    built = names[SDIST_ONLY]
    assert built.version == entry.version and built.licence == "Apache-2.0"
    data = (Path(wh.path) / built.filename).read_bytes()
    assert hashlib.sha256(data).hexdigest() == built.sha256
    lock = (Path(wh.path) / "requirements.txt").read_text()
    assert f"{SDIST_ONLY}=={entry.version} --hash=sha256:{built.sha256}" in lock
    # its dependencies come from the lock, at the lock's versions
    locked = read_lock()
    assert {"six", "urllib3", "certifi", "python-dateutil"} <= set(names)
    assert all(w.version == locked[w.name].version for w in wh.wheels)
    # Cached by lock hash: asking again reuses the same directory and the same bytes.
    again = ensure_wheelhouse((f"{SDIST_ONLY}=={entry.version}",))
    assert again.path == wh.path and again.wheels == wh.wheels
