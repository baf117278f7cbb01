"""Output folders: mlgate replaces only what it wrote itself.

Reports (`gates run --report DIR`, `canary analyze --report DIR`) and worlds
(`data generate --out DIR`) are whole folders that a new run replaces. A user may name any
folder there, including one full of their own files, or `.`; replacing it would delete them.
So every such folder is written into a new sibling folder and swapped in at the end (readers
see the old folder or the new one, a crash leaves the old one intact), and only when the target
is absent, empty, or carries the marker file (`.mlgate-output`, saying what wrote it) that
this module leaves in every folder it writes. Anything else is bad input naming the path (exit
2), checked before the work starts and again, on the renamed-away folder, at the swap. The
current directory, or a folder holding it, is never replaced: the shell would be left in a
deleted folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from mlgate.errors import BadInputError

MARKER = ".mlgate-output"


def written_by(folder: Path) -> str | None:
    """What wrote `folder` (its marker's `written_by`), or None if mlgate did not."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = doc.get("written_by") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None


def _refusal(folder: Path, shown: Path) -> str | None:
    """Why `folder` (shown to the user as `shown`) may not be replaced, or None if it may."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"{shown}: exists and is not a folder; not replaced"
    entries = sorted(p.name for p in folder.iterdir())
    if not entries or written_by(folder) is not None:
        return None
    listed = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    return (
        f"{shown}: not replaced: the folder holds files mlgate did not write ({listed}) and no "
        f"{MARKER} marker; name a new or empty folder, or one an earlier mlgate run wrote"
    )


def check_replaceable(target: str | os.PathLike[str]) -> Path:
    """The absolute target, if mlgate may write a folder there; BadInputError otherwise."""
    out = Path(target).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise BadInputError(
            f"{out}: is the current directory or holds it; not replaced (name a folder inside "
            "it, e.g. ./report)"
        )
    why = _refusal(out, out)
    if why:
        raise BadInputError(why)
    return out


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp`. The old folder is renamed away first and checked again under
    its private name, so what is deleted is exactly what was checked."""
    old = None
    if out.exists() or out.is_symlink():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{time.time_ns()}")
        os.rename(out, old)
        why = _refusal(old, out)
        if why:
            os.rename(old, out)
            raise BadInputError(why)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def new_folder(target: str | os.PathLike[str], what: str) -> Iterator[Path]:
    """A new folder next to `target` to write into; on success it is marked as written by
    `what` (e.g. "mlgate gates run") and swapped in. On any error it is removed and `target`
    is left as it was."""
    out = check_replaceable(target)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise BadInputError(f"{out}: cannot create the folder: {exc.strerror or exc}") from None
    try:
        yield tmp
        marker = {"written_by": what, "created": datetime.now(UTC).isoformat()}
        (tmp / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
