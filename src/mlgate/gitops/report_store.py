"""Gate reports stored by content: where a promotion finds its evidence again, by sha256.

A commit names its report by the sha256 of report.json (`Gate-Report:`), so whoever checks
the commit later (`promote`, `pr merge`, a CI check) fetches those exact bytes, not whatever
file sits in a folder now. Two places, both from the platform settings:
- the MLflow run of the judged model version, `gate-reports/<sha256>/` (`mlflow.tracking_uri`):
  every machine that can promote reaches it (CLI, pipeline, CI);
- the workspace, `<workspace>/reports/by-hash/<sha256>/`: the embedded default's copy, and
  the one a run without an MLflow run (or with MLflow down) still has.
`put` writes both; `get` reads the workspace copy, else MLflow, and hands back the bytes only if
they hash to the name asked for (an edited copy is refused as tampered, never trusted).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, GateFailed
from mlgate.training.registry import connect

log = logging.getLogger(__name__)

SHA256 = re.compile(r"[0-9a-f]{64}")
FILES = ("report.json", "report.md")
MLFLOW_DIR = "gate-reports"


class StoredReport(BaseModel):
    sha256: str
    folder: Path  # the workspace copy
    mlflow_uri: str | None  # runs:/<run>/gate-reports/<sha256>, None if not logged


class FetchedReport(BaseModel):
    sha256: str
    raw: bytes
    markdown: str
    where: str  # which copy answered


def report_file(report: Path) -> Path:
    """report.json of a report folder (or the file itself); missing is bad input."""
    path = report / "report.json" if report.is_dir() else report
    if not path.is_file():
        raise BadInputError(f"{path}: gate report not found")
    return path


def report_sha(report: Path) -> str:
    return hashlib.sha256(report_file(report).read_bytes()).hexdigest()


def check_sha(sha: str, field: str = "Gate-Report") -> str:
    """A sha256 as 64 lowercase hex digits: it becomes a path, so nothing else is accepted."""
    if not SHA256.fullmatch(sha):
        raise BadInputError(f"{field}: {sha!r} is not a sha256 (64 lowercase hex digits)")
    return sha


def local_dir(settings: PlatformSettings, sha: str) -> Path:
    return settings.ws().reports_dir / "by-hash" / check_sha(sha)


def put(settings: PlatformSettings, report: Path, run_id: str | None) -> StoredReport:
    """Store a written report folder under its sha256 (workspace always, MLflow when the
    version's run is known); returns where. Storing the same report again is a no-op."""
    src = report_file(report).parent
    sha = report_sha(src)
    dest = local_dir(settings, sha)
    if not _intact(dest / "report.json", sha):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=dest.parent))
        for name in FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, tmp / name)
        shutil.rmtree(dest, ignore_errors=True)  # a tampered copy is replaced by the real one
        tmp.rename(dest)
    uri = None
    if run_id:
        try:
            connect(settings).log_artifacts(run_id, str(dest), artifact_path=f"{MLFLOW_DIR}/{sha}")
            uri = f"runs:/{run_id}/{MLFLOW_DIR}/{sha}"
        except Exception as exc:  # noqa: BLE001 - the workspace copy still serves this machine
            log.warning("gate report %s not stored in MLflow run %s: %s", sha, run_id, exc)
    return StoredReport(sha256=sha, folder=dest, mlflow_uri=uri)


def get(settings: PlatformSettings, sha: str, run_id: str | None) -> FetchedReport:
    """The stored report named `sha`: refused if no copy exists or a copy's bytes do not hash
    to `sha` (tampered after it was stored)."""
    check_sha(sha)
    where = local_dir(settings, sha)
    copies: list[tuple[str, Path]] = []
    if (where / "report.json").is_file():
        copies.append((str(where), where))
    elif run_id:
        fetched = _from_mlflow(settings, sha, run_id)
        if fetched is not None:
            copies.append((f"runs:/{run_id}/{MLFLOW_DIR}/{sha}", fetched))
    if not copies:
        raise GateFailed(
            f"gate report {sha}: not in the report store ({where}"
            + (f", runs:/{run_id}/{MLFLOW_DIR}/{sha}" if run_id else "")
            + "): only reports written by `mlgate gates run` / `canary analyze` are evidence; "
            "nothing was committed"
        )
    name, folder = copies[0]
    raw = (folder / "report.json").read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != sha:
        raise GateFailed(
            f"gate report {name}: its bytes hash to {got}, not {sha}: edited after it was "
            "stored; nothing was committed"
        )
    md = folder / "report.md"
    return FetchedReport(
        sha256=sha,
        raw=raw,
        markdown=md.read_text(encoding="utf-8") if md.is_file() else "",
        where=name,
    )


def _intact(path: Path, sha: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha


def _from_mlflow(settings: PlatformSettings, sha: str, run_id: str) -> Path | None:
    dest = Path(tempfile.mkdtemp(prefix="mlgate-report-"))
    try:
        got = connect(settings).download_artifacts(run_id, f"{MLFLOW_DIR}/{sha}", str(dest))
    except Exception as exc:  # noqa: BLE001 - not there, or MLflow down: not found
        log.warning("gate report %s not found in MLflow run %s: %s", sha, run_id, exc)
        return None
    folder = Path(got)
    return folder if (folder / "report.json").is_file() else None
