"""MLflow model-version tags: the lineage a registered version carries, one writer and one parser.

`mlgate train` writes them when it registers a version (`VersionTags.to_tags`), `mlgate image
build` adds the image it built (`image_tags`); gates, packaging, serving and promotion read them
back through `read_tags`. A model's author can set any tag on their own version, so the parser
checks every value it hands on like any other record value (one safe line): a newline in
`feature_service` would otherwise become a commit trailer of the promotion. The error names the
tag and the version.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from mlgate.errors import BadInputError
from mlgate.records.values import check_text

IMAGE_DIGEST_TAG = "image_digest"
IMAGE_REPOSITORY_TAG = "image_repository"


class VersionTags(BaseModel):
    """The tags mlgate writes on a model version. Optional fields: versions registered by other
    tools (or before a tag existed) lack some; `require` names what a reader cannot do without."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_fingerprint: str | None = None
    training_set_fingerprint: str | None = None
    holdout_fingerprint: str | None = None
    feature_service: str | None = None  # written as "" for a model without one
    feature_views: str | None = None  # comma-separated
    git_commit: str | None = None
    dataset: str | None = None
    training_set_uri: str | None = None
    holdout_uri: str | None = None
    windows: str | None = None  # SplitWindows as JSON (training.split)
    event_timestamp_column: str | None = None
    algorithm: str | None = None
    gate_policy: str | None = None  # the policy file the model config named (`policy:`)
    label_bias: str | None = None  # labels relabelled on purpose (data.label_bias), its text
    model_card: str | None = None
    image_repository: str | None = None  # written by `mlgate image build`
    image_digest: str | None = None

    def to_tags(self) -> dict[str, str]:
        """The one writer: tag name -> value, unset ones left out, every value checked."""
        out = {}
        for key, value in self.model_dump().items():
            if value is None:
                continue
            if value:
                check_text(value, f"MLflow tag {key}")
            out[key] = value
        return out

    def require(self, *keys: str, source: str) -> None:
        missing = [k for k in keys if getattr(self, k) is None]
        if missing:
            raise BadInputError(f"{source} lacks lineage tags {missing}")

    @property
    def feature_view_list(self) -> list[str]:
        return [v for v in (self.feature_views or "").split(",") if v]


TAG_KEYS = tuple(VersionTags.model_fields)


def read_tags(tags: Mapping[str, str] | None, model: str, version: str) -> VersionTags:
    """The one parser: mlgate's tags of one version (others' tags are ignored), each value
    checked, the error naming the tag and the version (exit 2)."""
    found: dict[str, str] = {}
    for key in TAG_KEYS:
        value = (tags or {}).get(key)
        if value is None:
            continue
        if value:
            check_text(value, f"MLflow tag {key} of {model} version {version}")
        found[key] = value
    return VersionTags.model_validate(found)


def image_tags(repository: str, digest: str) -> dict[str, str]:
    """The tags `mlgate image build` sets on the version it built (same checks as the rest)."""
    return VersionTags(image_repository=repository, image_digest=digest).to_tags()
