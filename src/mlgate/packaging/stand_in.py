"""A small, labelled stand-in image of a model version, really pushed to the registry.

The fast demo builds the model-server image (minutes on two cores) for its first version only.
A later version still has to be promoted by a digest the registry serves, or the audit
(`audit verify`'s image check) rightly reports that what git pins never existed. So the stand-in
is a real one-layer OCI image (a text file naming the model version and its MLflow run, labels
`io.mlgate.stand-in=true` and the lineage), written as an OCI layout and pushed by
`skopeo copy` with the platform's registry settings; the digest recorded is the one the
registry reports for the push. It cannot serve: its labels say so, and `mlgate image build`
replaces it with the real image.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import ExternalServiceError
from mlgate.packaging import tools
from mlgate.packaging.build import remote_inspect
from mlgate.records.builds import BuildRecord, write_record
from mlgate.records.tags import image_tags
from mlgate.training.track import tag_version

STAND_IN_LABEL = "io.mlgate.stand-in"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(text: str) -> bytes:
    """An uncompressed tar of one file, byte-for-byte reproducible (no times, no owners)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("mlgate-stand-in.txt")
        info.size, info.mode, info.mtime = len(data), 0o444, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_layout(layout: Path, tag: str, labels: dict[str, str], text: str) -> None:
    """An OCI image layout at `layout` holding one image tagged `tag`."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layer_bytes = _layer(text)
    layer = _blob(layout, layer_bytes)
    config = _blob(
        layout,
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": labels},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            },
            sort_keys=True,
        ).encode(),
    )
    manifest = _blob(
        layout,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": _OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
            },
            sort_keys=True,
        ).encode(),
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": _OCI_MANIFEST,
                **manifest,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps(index))


def push_stand_in(
    settings: PlatformSettings, model: str, version: str, run_id: str, source: str
) -> BuildRecord:
    """Push the stand-in image of `model` `version` and record it like a build (workspace build
    record + MLflow image tags), so a promotion pins a digest the registry serves."""
    repository = f"{settings.registry.address}/{model}"
    tag = f"{version}-stand-in"
    labels = {
        STAND_IN_LABEL: "true",
        "io.mlgate.model": model,
        "io.mlgate.model.version": version,
        "io.mlgate.mlflow.run_id": run_id,
    }
    text = (
        f"stand-in for {model} version {version} (MLflow run {run_id}, {source}): "
        "not a model server; `mlgate image build` builds the real image\n"
    )
    tls = f"--dest-tls-verify={'false' if settings.registry.insecure else 'true'}"
    with tempfile.TemporaryDirectory(prefix="mlgate-stand-in-") as tmp:
        layout = Path(tmp) / "layout"
        write_layout(layout, tag, labels, text)
        digest_file = Path(tmp) / "digest"
        tools.skopeo(
            [
                "copy",
                "--quiet",
                tls,
                "--digestfile",
                str(digest_file),
                f"oci:{layout}:{tag}",
                f"docker://{repository}:{tag}",
            ]
        )
        digest = digest_file.read_text().strip()
    seen = remote_inspect(settings, f"{repository}@{digest}")
    if seen is None or seen.get("Digest") != digest:
        raise ExternalServiceError(
            f"{repository}:{tag}: pushed as {digest}, but the registry does not serve it"
        )
    rec = BuildRecord(
        model=model,
        version=version,
        repository=repository,
        reference=f"{repository}:{tag}",
        digest=digest,
        labels=labels,
    )
    tag_version(settings, model, version, image_tags(repository, digest))
    write_record(settings, rec)
    return rec
