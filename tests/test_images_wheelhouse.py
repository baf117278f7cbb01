"""The wheelhouse takes pins that exist only as source distributions (kfp-server-api 2.17.0 is
one: the platform image needs it) by building them into wheels on the host, and locks them by hash
like any other wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlgate.packaging.wheelhouse import ensure_wheelhouse


def _sdist_only_project(root: Path) -> Path:
    proj = root / "sdistonly"
    (proj / "sdistonly").mkdir(parents=True)
    (proj / "sdistonly" / "__init__.py").write_text("VALUE = 42\n")
    (proj / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "sdistonly"\nversion = "1.2.3"\n'
    )
    return proj


@pytest.mark.slow
def test_source_only_requirement_becomes_a_locked_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLGATE_CACHE_DIR", str(tmp_path / "cache"))
    proj = _sdist_only_project(tmp_path)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("")  # nothing to constrain: the local project pins itself
    wh = ensure_wheelhouse((str(proj),), constraints)
    names = {w.name: w for w in wh.wheels}
    assert names["sdistonly"].version == "1.2.3"
    assert (Path(wh.path) / names["sdistonly"].filename).is_file()
    lock = (Path(wh.path) / "requirements.txt").read_text()
    assert f"sdistonly==1.2.3 --hash=sha256:{names['sdistonly'].sha256}" in lock
    # Cached by lock hash: asking again reuses the same directory and the same bytes.
    again = ensure_wheelhouse((str(proj),), constraints)
    assert again.path == wh.path and again.wheels == wh.wheels
