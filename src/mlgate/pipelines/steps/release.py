"""Release steps: the model-server image (buildah, or the image recorded in MLflow
for the version) and the promotion pull request from the run's report artifact."""

from __future__ import annotations

from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.pipelines.steps.common import (
    StepOutput,
    settings,
    write_json,
)

IMAGE_MODES = ("buildah", "skip")


def build_image(model: str, version: str, mode: str, out_path: str) -> StepOutput:
    """Build + push the model-server image with buildah, or skip when configured to.

    `skip` is for set-ups where images are built outside this run (a separate CI job, or
    `mlgate image build` on a build machine): the step then reports the version's existing
    build record, if there is one, and the promotion pins that; without a record the
    promotion step fails saying so.
    """
    if mode not in IMAGE_MODES:
        raise BadInputError(f"image_build {mode!r}: expected one of {', '.join(IMAGE_MODES)}")
    st = settings()
    if mode == "skip":
        ref = built_image(st, model, version)
        write_json(out_path, {"skipped": True, "image": ref})
        return StepOutput(value=ref, metadata={"skipped": True, "image": ref})
    from mlgate.packaging.build import build_model_image

    rec = build_model_image(st, model, version)
    ref = f"{rec.repository}@{rec.digest}"
    write_json(out_path, rec.model_dump(mode="json"))
    return StepOutput(value=ref, metadata={"image": ref, "reused": rec.reused})


def built_image(st: PlatformSettings, model: str, version: str) -> str:
    """The image recorded for this version's build ('' when none): what `mlgate image build`
    or a CI job tagged the MLflow version with (`image_repository`, `image_digest`), or a build
    record in this workspace (the embedded default's image builds)."""
    from mlgate.records.builds import read_record
    from mlgate.records.tags import read_tags
    from mlgate.training.registry import connect, resolve_version

    found = read_record(st, model, version)
    if found is not None:
        return found.image
    mv = resolve_version(connect(st), model, version)
    tags = read_tags(mv.tags, model, str(mv.version))
    if tags.image_repository and tags.image_digest:
        return f"{tags.image_repository}@{tags.image_digest}"
    return ""


def open_promotion(
    model: str, version: str, env: str, image_ref: str, report_dir: str, out_path: str
) -> StepOutput:
    """The promotion PR (branch promote/<model>-<version>-<env>) carrying the gate report.

    The image is the one the image step built, else this version's build record. With the
    build skipped and no record anywhere, nothing is proposed: the step says so in its output
    (value '') instead of pinning an image that does not exist.
    """
    from mlgate.gitops.promote import promote

    st = settings()
    image_ref = image_ref or built_image(st, model, version)
    if not image_ref:
        reason = (
            f"no image for {model} {version}: the image build was skipped and none is recorded "
            "for the version (MLflow tags image_repository/image_digest, written by `mlgate "
            "image build` or a CI build), so no promotion was proposed"
        )
        write_json(out_path, {"opened": False, "reason": reason})
        return StepOutput(value="", metadata={"opened": False, "reason": reason})
    pr = promote(st, model, version, env, Path(report_dir), image=image_ref)
    write_json(out_path, {"opened": True, **pr.model_dump(mode="json")})
    return StepOutput(value=pr.branch, metadata={"opened": True, "branch": pr.branch})
