"""A registered model version, as the image and the local server need it.

Both the image build and `mlgate serve` work from a local copy of the MLflow model directory
(what `mlflow.pyfunc.load_model` reads), so the image carries the exact artifact the registry
holds and the server never needs the tracking server at run time. The lineage read here (run id,
data fingerprint, git commit, feature service) becomes the image's labels.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.records.tags import read_tags
from mlgate.records.values import canonical_version, check_text, is_version_number


class VersionLineage(BaseModel):
    model: str
    version: str
    run_id: str
    data_fingerprint: str
    git_commit: str
    feature_service: str


def _client(settings: PlatformSettings):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=settings.mlflow.registry_uri or uri)


def resolve_version(settings: PlatformSettings, model: str, version: str) -> str:
    """A version number, or an alias (`challenger`, `prod`) resolved to its number."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        if is_version_number(version):
            return str(client.get_model_version(model, canonical_version(version)).version)
        return str(client.get_model_version_by_alias(model, version).version)
    except MlflowException as exc:
        raise BadInputError(
            f"model {model!r} version {version!r} is not in the MLflow registry "
            f"({settings.mlflow_tracking_uri()}): {exc.message}"
        ) from exc


def lineage(settings: PlatformSettings, model: str, version: str) -> VersionLineage:
    """Run id, fingerprint, commit and feature service of one version (tags, else run tags)."""
    client = _client(settings)
    number = resolve_version(settings, model, version)
    mv = client.get_model_version(model, number)
    tags = read_tags(mv.tags, model, number).model_dump(exclude_none=True)
    run_tags: dict[str, str] = {}
    if mv.run_id:
        try:
            run_tags = dict(client.get_run(mv.run_id).data.tags)
        except Exception:  # noqa: BLE001 - the version's own tags are the primary record
            run_tags = {}

    def tag(name: str, *alts: str) -> str:
        for key in (name, *alts):
            if tags.get(key):
                return tags[key]
            if run_tags.get(key):  # becomes an image label: one safe line, like the rest
                return check_text(run_tags[key], f"MLflow run tag {key} of {model} {number}")
        return ""

    return VersionLineage(
        model=model,
        version=number,
        run_id=mv.run_id or "",
        data_fingerprint=tag("data_fingerprint"),
        git_commit=tag("git_commit", "mlflow.source.git.commit"),
        feature_service=tag("feature_service"),
    )


def export_model(settings: PlatformSettings, model: str, version: str, dest: Path) -> Path:
    """Download the version's MLflow model directory to `dest` (atomically: temp, then rename)."""
    import mlflow.artifacts

    number = resolve_version(settings, model, version)
    if (dest / "MLmodel").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=dest.parent))
    try:
        # Resolve through an explicit client: no process-global MLflow URI is touched.
        client = _client(settings)
        source = client.get_model_version_download_uri(model, number)
        got = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(tmp), tracking_uri=settings.mlflow_tracking_uri()
            )
        )
        if not (got / "MLmodel").is_file():
            raise ExternalServiceError(f"models:/{model}/{number} has no MLmodel file")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(got, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def tree_hash(root: Path) -> str:
    """Content hash of a directory (relative paths + bytes), independent of timestamps."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()
