"""Sharing a task's volumes with the image's group (`container_run._share`) while sibling
tasks run: a ParallelFor's iterations start in threads, and one that ends removes its
workspace under the pipeline root while another's start walks that root (CI, stop 21: the
training pipeline failed in the gates' fan-out)."""

import os
import stat
from pathlib import Path

import pytest

from mlgate.packaging import container_run


def test_a_file_removed_during_the_walk_is_skipped_and_the_rest_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "kfp"
    (root / "tasks").mkdir(parents=True)
    kept = root / "artifact.json"
    kept.write_text("{}")
    kept.chmod(0o600)
    real_walk = os.walk

    def walk_racing_a_sibling(path: Path):  # type: ignore[no-untyped-def]
        for dirpath, dirnames, filenames in real_walk(path):
            if dirpath == str(root / "tasks"):
                # listed by the walk, removed by its task before it is shared
                dirnames = [*dirnames, "task-gone"]
                filenames = [*filenames, "gone.txt"]
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(container_run.os, "walk", walk_racing_a_sibling)
    container_run._share(root, os.getgid(), writable=True)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o660
    assert stat.S_IMODE((root / "tasks").stat().st_mode) & 0o070 == 0o070
