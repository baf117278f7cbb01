"""Build (and push) the model-server image of one registered version, or the platform image.

One path for both kinds: stage a build context (wheelhouse, model, MLServer settings, SBOM,
the generated Containerfile), `buildah build` it from the kind's environment layer (the base +
the locked wheels, cached per machine: mlgate.packaging.env_layer), push it to the registry
and read the digest back with skopeo. The tag is `<registry>/<model>:<version>-<content hash>`;
the content hash covers everything that goes into the image (base image id, environment layer
key, wheel lock, mlgate source, model artifact, MLServer settings, lineage labels), so rebuilding an unchanged version
finds its reference already in the registry and returns it without building (a no-op).

The build record `<workspace>/images/<model>/<version>.json` (repository, reference, digest,
labels, sbom_digest, created) is written last, atomically, and only after a successful push:
promotion reads it to pin manifests by digest. On any failure the staging directory and the
local image are removed, and no record is written.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlgate import __version__
from mlgate.config import REPO_ROOT, PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.packaging import registry, tools
from mlgate.packaging.base_image import PLATFORM_INCLUDE, BaseImage, debian_mirror, ensure_base
from mlgate.packaging.containerfile import LABEL_PREFIX, ContainerfileSpec, render, render_env
from mlgate.packaging.env_layer import ensure_env_layer
from mlgate.packaging.lockfile import read_lock
from mlgate.packaging.model_artifact import export_model, lineage, resolve_version, tree_hash
from mlgate.packaging.sbom import dpkg_packages, make_sbom, write_sbom
from mlgate.packaging.wheelhouse import (
    LockedWheel,
    Wheelhouse,
    build_mlgate_wheel,
    ensure_wheelhouse,
    source_hash,
)
from mlgate.packaging.wheelhouse import stage as stage_wheels
from mlgate.records.builds import PLATFORM_REPOSITORY, BuildRecord, read_record, write_record
from mlgate.records.tags import image_tags
from mlgate.serving.server import model_repository, serving_ranges
from mlgate.training.track import tag_version

# What the platform image carries besides the package (whose data holds the compiled
# pipelines): the project files steps and scheduled jobs read by relative path.
PROJECT_FILES = ("config", "feature_repo")
SBOM_LABEL = f"{LABEL_PREFIX}.sbom.digest"
CREATED_LABEL = "org.opencontainers.image.created"
Progress = Callable[[str], None]


def _record(settings: PlatformSettings, rec: BuildRecord) -> None:
    """The build record in the workspace, and the digest on the MLflow version (the platform
    image has no version there): what a promotion may pin for this version."""
    if rec.model != PLATFORM_REPOSITORY:
        tag_version(settings, rec.model, rec.version, image_tags(rec.repository, rec.digest))
    write_record(settings, rec)


def _tls(settings: PlatformSettings) -> str:
    return f"--tls-verify={'false' if settings.registry.insecure else 'true'}"


def remote_inspect(settings: PlatformSettings, reference: str) -> dict | None:
    """skopeo's view of an image in the registry (Digest, Labels), or None if absent."""
    proc = tools.skopeo(["inspect", _tls(settings), f"docker://{reference}"], check=False)
    if proc.returncode != 0:
        return None
    data: dict = json.loads(proc.stdout)
    return data


def _image_id(ref: str) -> str:
    proc = tools.buildah(["inspect", "--type", "image", "--format", "{{.FromImageID}}", ref])
    return proc.stdout.strip()


def _stage_wheelhouse(wh: Wheelhouse, ctx: Path, *, third_party: bool) -> list[LockedWheel]:
    dst = ctx / "wheelhouse"
    stage_wheels(wh, dst, third_party=third_party)
    own = build_mlgate_wheel(dst)
    (dst / "mlgate.txt").write_text(f"{own.name}=={own.version} --hash=sha256:{own.sha256}\n")
    return [*wh.wheels, own]


def _disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
        "no space left on device" in str(exc).lower()
    )


def _content_hash(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0]
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def local_labels(ref: str) -> dict[str, str] | None:
    """Labels of an image in buildah's local storage, or None if it is not there."""
    proc = tools.buildah(["inspect", "--type", "image", ref], check=False)
    if proc.returncode != 0:
        return None
    config = json.loads(proc.stdout)["OCIv1"].get("config") or {}
    return dict(config.get("Labels") or {})


class _Build:
    """One build: staging directory and the tags this run created, removed if anything fails."""

    def __init__(self, settings: PlatformSettings, progress: Progress) -> None:
        self.settings = settings
        self.progress = progress
        base_dir = Path(settings.image.build_dir or settings.ws().sub("images", ".build"))
        base_dir.mkdir(parents=True, exist_ok=True)
        self.ctx = Path(tempfile.mkdtemp(prefix="ctx-", dir=base_dir))
        self.created_tags: list[str] = []

    def cleanup(self) -> None:
        shutil.rmtree(self.ctx, ignore_errors=True)

    def discard_images(self) -> None:
        for tag in reversed(self.created_tags):
            tools.buildah(["rmi", tag], check=False)

    def build(self, local: str, created: str) -> None:
        self.created_tags.append(local)
        tools.build(self.ctx, local, {"CREATED": created})

    def push(self, local: str, reference: str) -> str:
        tools.buildah(["tag", local, reference])
        self.created_tags.append(reference)
        self.progress(f"push {reference}")
        args = ["push", _tls(self.settings)]
        if _loopback(self.settings.registry.address):
            # Loopback: gzip costs more than it saves, and a refusal is not a network blip.
            args += ["--disable-compression", "--retry", "0"]
        proc = tools.buildah([*args, reference, f"docker://{reference}"], check=False)
        if proc.returncode != 0:
            raise ExternalServiceError(
                f"push of {reference} rejected by the registry {self.settings.registry.address}: "
                + (proc.stderr.strip() or proc.stdout.strip())[-800:]
            )
        seen = remote_inspect(self.settings, reference)
        if not seen:
            raise ExternalServiceError(f"{reference} was pushed but the registry does not list it")
        # The registry tag stays local only as long as it is needed: the content tag is the cache.
        tools.buildah(["rmi", reference], check=False)
        self.created_tags.remove(reference)
        return str(seen["Digest"])


def _prune_local(model: str, version: str, keep: str) -> None:
    """Drop older local builds of this model version (each is hundreds of MB)."""
    proc = tools.buildah(["images", "--format", "{{.Name}}:{{.Tag}}"], check=False)
    prefix = f"localhost/mlgate-build/{model}:{version}-"
    for name in proc.stdout.split():
        if name.startswith(prefix) and name != keep:
            tools.buildah(["rmi", name], check=False)


def _stage(
    ctx: Path,
    repository: str,
    version: str,
    labels: dict[str, str],
    wh: Wheelhouse,
    base: BaseImage,
    kind: str,
    model: str,
    stage_extra: Callable[[Path], None],
    env_base: str | None = None,
) -> ContainerfileSpec:
    """Write the whole build context (see mlgate.packaging.containerfile) into `ctx`.

    The locked environment is the FROM (mlgate.packaging.env_layer), so the context holds only
    the mlgate wheel; with `env_base` (another builder) it holds every wheel, for the file's
    `env` stage. The SBOM lists every wheel either way: it describes the whole image."""
    wheels = _stage_wheelhouse(wh, ctx, third_party=env_base is not None)
    stage_extra(ctx)
    debian = dpkg_packages(Path(base.dpkg_status)) if base.dpkg_status else []
    sbom = make_sbom(image_name=repository, image_version=version, wheels=wheels, debian=debian)
    sbom_digest = write_sbom(sbom, ctx / "sbom.cdx.json")
    spec = ContainerfileSpec(
        kind=kind,  # type: ignore[arg-type]
        base=base.reference,
        pip_wheel=wh.pip_wheel,
        labels={**labels, SBOM_LABEL: sbom_digest},
        model=model if kind == "model-server" else None,
        env_base=env_base,
    )
    (ctx / "Containerfile").write_text(render(spec))
    return spec


def _run(
    settings: PlatformSettings,
    *,
    model: str,
    version: str,
    push: bool,
    progress: Progress,
    labels: dict[str, str],
    hash_parts: dict[str, str],
    wh: Wheelhouse,
    base: BaseImage,
    kind: str,
    stage_extra: Callable[[Path], None],
) -> BuildRecord:
    if push:
        registry.require_up(settings)
    content = _content_hash(hash_parts)
    repository = f"{settings.registry.address}/{model}"
    reference = f"{repository}:{version}-{content[:12]}"
    # Built images are cached locally under a registry-independent name, by content.
    local = f"localhost/mlgate-build/{model}:{version}-{content[:12]}"
    if push:
        seen = remote_inspect(settings, reference)
        if seen:  # unchanged: the registry already holds exactly this content
            progress(f"{reference} already in the registry: nothing to build")
            old = read_record(settings, model, version)
            seen_labels = dict(seen.get("Labels") or {})
            rec = BuildRecord(
                model=model, version=version, repository=repository, reference=reference,
                digest=str(seen["Digest"]), labels=seen_labels,
                sbom_digest=seen_labels.get(f"{LABEL_PREFIX}.sbom.digest", ""),
                created=old.created if old else seen_labels.get(CREATED_LABEL, ""),
                content_hash=content, base=base.reference, reused=True,
            )  # fmt: skip
            _record(settings, rec)
            return rec
    job = _Build(settings, progress)
    try:
        built = local_labels(local)
        if built is None:
            spec = _stage(job.ctx, repository, version, labels, wh, base, kind, model, stage_extra)
            created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            progress(f"buildah build {local}")
            job.build(local, created)
            built = local_labels(local) or {}
            assert spec.labels[SBOM_LABEL] == built.get(SBOM_LABEL)
        else:
            progress(f"{local} already built locally: reusing it")
        digest = job.push(local, reference) if push else ""
        rec = BuildRecord(
            model=model, version=version, repository=repository,
            reference=reference if push else local, digest=digest, labels=built,
            sbom_digest=built.get(SBOM_LABEL, ""), created=built.get(CREATED_LABEL, ""),
            content_hash=content, base=base.reference,
        )  # fmt: skip
        if push:
            _record(settings, rec)
        _prune_local(model, version, keep=local)
        return rec
    except BaseException as exc:
        job.discard_images()
        if _disk_full(exc):
            raise ExternalServiceError(
                f"disk full while building {reference} (staging in {job.ctx.parent}): "
                "free space and retry; nothing was kept"
            ) from exc
        raise
    finally:
        job.cleanup()


@dataclass
class _ModelInputs:
    number: str
    labels: dict[str, str]
    wh: Wheelhouse
    base: BaseImage  # the FROM: locally the cached environment layer, else the base image
    stage: Callable[[Path], None]
    parts: dict[str, str]


def _model_inputs(
    settings: PlatformSettings, model: str, version: str, say: Progress, *, local: bool = True
) -> _ModelInputs:
    number = resolve_version(settings, model, version)
    lin = lineage(settings, model, number)
    say("exporting the model artifact from MLflow")
    artifact = export_model(
        settings, model, number, settings.ws().sub("serving", "artifacts") / f"{model}-{number}"
    )
    say("base image")
    if not local and settings.image.base_image:  # another builder pulls it (docker buildx)
        base = BaseImage(reference=settings.image.base_image, source="configured")
    else:
        base = ensure_base(
            settings.image.base_image, settings.image.debian_mirror or debian_mirror()
        )
    say("wheelhouse")
    wh = ensure_wheelhouse()
    if local:
        # The locked runtime environment, once per machine: a version adds mlgate + its model.
        base = ensure_env_layer(base, wh, progress=say, kind="model-server")
        env_part = base.key or base.reference
    else:  # the context's Containerfile builds the environment as its first stage
        env_part = hashlib.sha256(
            render_env(base.reference, wh.pip_wheel, "model-server").encode()
        ).hexdigest()
    labels = {
        "org.opencontainers.image.title": f"{model} model server",
        "org.opencontainers.image.version": number,
        f"{LABEL_PREFIX}.model.name": model,
        f"{LABEL_PREFIX}.model.version": number,
        f"{LABEL_PREFIX}.mlflow.run_id": lin.run_id,
        f"{LABEL_PREFIX}.data.fingerprint": lin.data_fingerprint,
        f"{LABEL_PREFIX}.git.commit": lin.git_commit,
        f"{LABEL_PREFIX}.feature_service": lin.feature_service,
        "org.opencontainers.image.revision": lin.git_commit,
    }

    ranges = serving_ranges(settings, model, number)  # the serving contract's value ranges

    def stage(ctx: Path) -> None:
        shutil.copytree(artifact, ctx / "model")
        model_repository(
            ctx / "mlserver", model=model, version=number, model_uri="/opt/mlgate/model",
            ranges=ranges,
        )  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="mlgate-mlserver-") as tmp:
        model_repository(
            Path(tmp), model=model, version=number, model_uri="/opt/mlgate/model", ranges=ranges
        )
        mlserver_hash = tree_hash(Path(tmp))
    parts = {
        "kind": "model-server",
        "base": _image_id(base.reference) if local else base.reference,
        "env": env_part,
        "wheelhouse": wh.lock_hash,
        "mlgate": source_hash(),
        "model": tree_hash(artifact),
        "mlserver": mlserver_hash,
        "labels": json.dumps(labels, sort_keys=True),
        "containerfile": _template_hash(base, wh),
    }
    return _ModelInputs(number=number, labels=labels, wh=wh, base=base, stage=stage, parts=parts)


def build_model_image(
    settings: PlatformSettings,
    model: str,
    version: str,
    *,
    push: bool = True,
    progress: Progress | None = None,
) -> BuildRecord:
    """The model-server image of a registered version (a version number or an alias)."""
    say = progress or (lambda _msg: None)
    tools.require("buildah")
    if push:
        tools.require("skopeo")
    resolve_version(settings, model, version)  # a missing version fails before anything else
    if push:
        registry.require_up(settings)
    inp = _model_inputs(settings, model, version, say)
    return _run(
        settings, model=model, version=inp.number, push=push, progress=say, labels=inp.labels,
        hash_parts=inp.parts, wh=inp.wh, base=inp.base, kind="model-server",
        stage_extra=inp.stage,
    )  # fmt: skip


def stage_model_context(
    settings: PlatformSettings, model: str, version: str, dest: Path
) -> ContainerfileSpec:
    """Write the model-server build context to `dest` for another builder (docker buildx).

    The Containerfile is multi-stage: its `env` stage installs the locked environment FROM the
    base image reference (what this machine caches as the environment layer), and the image
    stage is the text a local build renders, FROM env. Outside this machine set
    `image.base_image` to one the builder can pull.
    """
    if dest.exists() and any(dest.iterdir()):
        raise BadInputError(f"{dest}: not empty; give a new directory for the build context")
    inp = _model_inputs(settings, model, version, lambda _m: None, local=False)
    repository = f"{settings.registry.address}/{model}"
    tmp = Path(tempfile.mkdtemp(prefix=".ctx-", dir=dest.parent if dest.parent.exists() else None))
    try:
        spec = _stage(tmp, repository, inp.number, inp.labels, inp.wh, inp.base, "model-server",
                      model, inp.stage, env_base=inp.base.reference)  # fmt: skip
        if dest.exists():
            dest.rmdir()
        shutil.move(str(tmp), str(dest))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return spec


def _template_hash(base: BaseImage, wh: Wheelhouse) -> str:
    spec = ContainerfileSpec(
        kind="model-server", base=base.reference, pip_wheel=wh.pip_wheel, labels={}
    )
    return hashlib.sha256(render(spec).encode()).hexdigest()


def platform_requirements() -> tuple[str, ...]:
    """Every pin in requirements.lock: the platform image runs what the project tests."""
    return tuple(f"{e.name}=={e.version}" for e in read_lock().values() if e.name != "mlgate")


def _project_files() -> list[Path]:
    return sorted(
        p
        for name in PROJECT_FILES
        for p in (REPO_ROOT / name).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def stage_project(ctx: Path) -> None:
    """Copy the project files into the build context's project/ (see containerfile)."""
    for src in _project_files():
        dst = ctx / "project" / src.relative_to(REPO_ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def project_hash() -> str:
    h = hashlib.sha256()
    for src in _project_files():
        h.update(str(src.relative_to(REPO_ROOT)).encode() + b"\0" + src.read_bytes() + b"\0")
    return h.hexdigest()


def build_platform_image(
    settings: PlatformSettings, *, push: bool = True, progress: Progress | None = None
) -> BuildRecord:
    """mlgate + its whole pinned environment (kfp included), for Kubeflow steps and CronJobs."""
    say = progress or (lambda _msg: None)
    tools.require("buildah")
    if push:
        tools.require("skopeo")
        registry.require_up(settings)
    base = ensure_base(
        settings.image.base_image,
        settings.image.debian_mirror or debian_mirror(),
        PLATFORM_INCLUDE,
    )
    say("wheelhouse (the whole requirements.lock)")
    wh = ensure_wheelhouse(platform_requirements())
    env = ensure_env_layer(base, wh, progress=say)
    labels = {
        "org.opencontainers.image.title": "mlgate platform",
        "org.opencontainers.image.version": __version__,
        f"{LABEL_PREFIX}.platform.version": __version__,
    }
    parts = {
        "kind": "platform",
        "base": _image_id(env.reference),
        "wheelhouse": wh.lock_hash,
        "mlgate": source_hash(),
        "project": project_hash(),
        "labels": json.dumps(labels, sort_keys=True),
    }
    return _run(
        settings, model=PLATFORM_REPOSITORY, version=__version__, push=push, progress=say,
        labels=labels, hash_parts=parts, wh=wh, base=env, kind="platform",
        stage_extra=stage_project,
    )  # fmt: skip
