"""Image build records: which image was built for which model version, and which image a
promotion may pin for it.

`mlgate image build` writes `<workspace>/images/<model>/<version>.json` after a successful push
(`write_record`) and tags the MLflow version with the digest (`tags.image_tags`). A promotion pins
exactly that image (`pinned_image`): `--image` is only a way to say it again, and any other
reference or digest is refused, so a version number cannot carry another version's (or anyone's)
image into an environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.records.tags import VersionTags
from mlgate.records.values import canonical_version, check_text

# The platform image's repository name and build-record name (`mlgate image build --platform`).
PLATFORM_REPOSITORY = "mlgate-platform"
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._:/-]*@sha256:[0-9a-f]{64}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class BuildRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model: str
    version: str
    repository: str
    reference: str
    digest: str
    labels: dict[str, str] = {}
    sbom_digest: str = ""
    created: str = ""
    content_hash: str = ""
    base: str = ""
    reused: bool = False  # True when the registry already held this exact content

    @field_validator("model", "repository", "reference")
    @classmethod
    def _line(cls, v: str) -> str:
        return check_text(v, "build record")

    @property
    def image(self) -> str:
        """The pinned reference: repository@digest."""
        return f"{self.repository}@{self.digest}"


def record_path(settings: PlatformSettings, model: str, version: str) -> Path:
    return settings.ws().sub("images", model) / f"{version}.json"


def read_record(settings: PlatformSettings, model: str, version: str) -> BuildRecord | None:
    """The build record of one version, None when there is none. A record that is not for this
    model and version (copied under another name) is refused, naming the file."""
    p = record_path(settings, model, version)
    if not p.is_file():
        return None
    try:
        rec = BuildRecord.model_validate_json(p.read_text(encoding="utf-8"))
    except (ValidationError, BadInputError, ValueError) as exc:
        raise BadInputError(f"{p}: not a valid image build record: {exc}") from None
    if rec.model != model or not _same_version(rec.version, version):
        raise BadInputError(
            f"{p}: the record is for {rec.model} version {rec.version}, not {model} {version}"
        )
    return rec


def _same_version(a: str, b: str) -> bool:
    try:
        return canonical_version(a, "version") == canonical_version(b, "version")
    except BadInputError:
        return a == b  # the platform image's record: a package version, compared as text


def write_record(settings: PlatformSettings, rec: BuildRecord) -> Path:
    """The one writer: atomically (temp file, then rename), so a reader never sees half."""
    p = record_path(settings, rec.model, rec.version)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(rec.model_dump_json(indent=2) + "\n")
    os.replace(tmp, p)
    return p


def check_image(image: str, source: str) -> str:
    if not IMAGE_RE.match(image):
        raise BadInputError(
            f"{source}: image {image!r} is not pinned by digest (want REPOSITORY@sha256:<64 hex>)"
        )
    return image


def pinned_image(
    settings: PlatformSettings,
    model: str,
    version: str,
    image: str | None,
    tags: VersionTags | None = None,
) -> str:
    """The image a promotion of `model` `version` pins: the one recorded for that version's
    build (the workspace's build record, and the MLflow tag `image_digest` where the build
    wrote one; both must agree). `--image` must name that same image; anything else is bad
    input naming --image, the version and the recorded digest."""
    if image is not None:
        check_image(image, "--image")
    rec = read_record(settings, model, version)
    tag_digest = tags.image_digest if tags else None
    tag_repo = tags.image_repository if tags else None
    if tag_digest is not None and not DIGEST_RE.match(tag_digest):
        raise BadInputError(
            f"MLflow tag image_digest of {model} version {version}: {tag_digest!r} is not a digest"
        )
    if rec is not None:
        check_image(rec.image, str(record_path(settings, model, version)))
        if tag_digest is not None and tag_digest != rec.digest:
            raise BadInputError(
                f"{model} version {version}: the build record says {rec.digest}, the MLflow tag "
                f"image_digest says {tag_digest}; rebuild the image (`mlgate image build`)"
            )
        recorded = rec.image
    elif tag_digest is not None and tag_repo:
        recorded = check_image(f"{tag_repo}@{tag_digest}", f"MLflow tags of {model} {version}")
    else:
        raise BadInputError(
            f"{record_path(settings, model, version)}: no image build record for {model} version "
            f"{version}; build it (`mlgate image build`): only the image built for a version can "
            "be pinned under it"
        )
    if image is not None and image != recorded:
        raise BadInputError(
            f"--image {image}: not the image built for {model} version {version}; its build "
            f"recorded {recorded}"
        )
    return recorded
