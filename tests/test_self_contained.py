"""A fresh clone stands on its own: nothing in it points at a sibling folder users do not have.

The needles are built so that this file does not match itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlgate.config import REPO_ROOT

SCOPE = ["src", "tests", "scripts", "docs", "Makefile", "README.md"]
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SIBLING = "shared"
NEEDLES = [
    re.compile(re.escape(".." + "/" + SIBLING)),
    # A path joined from the checkout's parent and that name: reading the sibling without
    # spelling the relative path.
    re.compile(r"parent\s*/\s*[\"']" + SIBLING + r"[\"']"),
]


def _files() -> list[Path]:
    out: list[Path] = []
    for name in SCOPE:
        top = REPO_ROOT / name
        if top.is_file():
            out.append(top)
            continue
        for p in top.rglob("*"):
            rel = p.relative_to(REPO_ROOT).parts
            if p.is_file() and not any(d in SKIP_DIRS or d.endswith(".egg-info") for d in rel):
                out.append(p)
    return out


def test_nothing_refers_to_the_sibling_shared_folder() -> None:
    files = _files()
    assert any(p.name == "Makefile" for p in files) and len(files) > 50
    hits = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        for n, line in enumerate(text.splitlines(), 1):
            if any(rx.search(line) for rx in NEEDLES):
                hits.append(f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
