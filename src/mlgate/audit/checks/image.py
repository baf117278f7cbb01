"""The image a change pins is in the registry under the digest its commit names: a digest that
no registry can serve cannot be what ran, nor be inspected now (`skopeo inspect`, through
`packaging.build.remote_inspect`, with the platform's registry settings)."""

from __future__ import annotations

from typing import Any

from mlgate.audit.verify import CommitContext, Gap, register_check
from mlgate.packaging.build import remote_inspect
from mlgate.packaging.registry import answering
from mlgate.records.builds import check_image

CHECK = "image"


def _pinned_with(ctx: CommitContext, digest: str) -> str | None:
    """The image release.yaml pins with `digest` as of the commit (a canary promotion names
    only the digest of the canary it makes stable)."""
    t = ctx.trailers
    rel = ctx.mainline.release_at(ctx.commit.sha, t.model, t.environment) if t else None
    images = (rel.stable_image, rel.canary_image, rel.shadow_image) if rel else ()
    return next((i for i in images if i and i.endswith(f"@{digest}")), None)


def _why_missing(ctx: CommitContext, image: str) -> str:
    """Not there, or nobody to ask: a plain-HTTP registry (the embedded default) is probed,
    so a stopped registry is not reported as a deleted image (it is a gap all the same)."""
    host = image.split("/", 1)[0]
    if ctx.settings.registry.insecure:
        key = (CHECK, "answering", host)
        if key not in ctx.audit.cache:
            ctx.audit.cache[key] = answering(host)
        if not ctx.audit.cache[key]:
            return f"the registry at {host} did not answer, so the image cannot be checked"
        return "not in the registry (skopeo inspect found no manifest with that digest)"
    return (
        "not in the registry (skopeo inspect found no manifest with that digest, or the "
        "registry did not answer)"
    )


@register_check(CHECK, about="the pinned image digest exists in the registry")
def image_in_registry(ctx: CommitContext) -> list[Gap]:
    t = ctx.trailers
    if t is None or not (t.image or t.image_digest):
        return []
    image = t.image or _pinned_with(ctx, str(t.image_digest))
    if image is None:
        return [
            ctx.gap(
                CHECK,
                f"names digest {t.image_digest}, which neither an Image: trailer nor its "
                "release.yaml pins",
            )
        ]
    image = check_image(image, f"commit {ctx.commit.short}: image")
    digest = image.rsplit("@", 1)[1]
    gaps = []
    if t.image_digest and t.image_digest != digest:
        gaps.append(ctx.gap(CHECK, f"Image: {image} and Image-Digest: {t.image_digest} disagree"))
    key = (CHECK, image)
    if key not in ctx.audit.cache:
        ctx.audit.cache[key] = remote_inspect(ctx.settings, image)
    found: dict[str, Any] | None = ctx.audit.cache[key]
    if found is None:
        gaps.append(ctx.gap(CHECK, f"image {image}: {_why_missing(ctx, image)}"))
    elif found.get("Digest") != digest:
        gaps.append(ctx.gap(CHECK, f"image {image}: the registry serves {found.get('Digest')}"))
    return gaps
