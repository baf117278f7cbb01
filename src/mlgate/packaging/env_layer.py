"""An image's environment layer, built once per machine and reused.

Each mlgate image is the base, a whole locked environment (the platform's ~1.8 GB: kfp,
mlflow, feast...; a model server's ~0.5 GB: MLServer, scikit-learn...) and, on top, mlgate and
what is the image's own (the project files; the model and its MLServer settings). The
environment changes only with the base image and the lock, while mlgate changes with every
commit and the model with every version; installing and committing the environment takes
minutes (the commit's tar dominates, not pip). So the environment is its own image,
`localhost/mlgate-<kind>-env:<key>` in buildah's local storage, keyed by the base image id, the
wheelhouse's lock hash and the Containerfile that installs it (`containerfile.render_env`: the
same hashed, offline `pip install --require-hashes` as every mlgate image). Every build of that
kind on the machine (`mlgate image build`, `--platform`, the in-image pipeline test) starts
FROM it and adds only a thin layer, as the debootstrap base is cached
(mlgate.packaging.base_image). Concurrent builders wait on a lock file; an older environment
layer of the same kind is removed once a new one is built.

Pushed uncompressed to a loopback registry, the layer's blob digest is its diffID, so pulling
the pushed image back on this machine reuses the local layer instead of copying it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlgate.packaging import tools
from mlgate.packaging.base_image import BaseImage, cache_root
from mlgate.packaging.containerfile import render_env
from mlgate.packaging.wheelhouse import Wheelhouse, stage


def repository(kind: str) -> str:
    return f"localhost/mlgate-{kind}-env"


def env_key(base_id: str, wh: Wheelhouse, containerfile: str) -> str:
    blob = "\0".join((base_id, wh.lock_hash, containerfile))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _exists(ref: str) -> bool:
    return tools.buildah(["inspect", "--type", "image", ref], check=False).returncode == 0


def _prune(kind: str, keep: str) -> None:
    proc = tools.buildah(["images", "--format", "{{.Name}}:{{.Tag}}"], check=False)
    for name in proc.stdout.split():
        if name.startswith(f"{repository(kind)}:") and name != keep:
            tools.buildah(["rmi", name], check=False)


def ensure_env_layer(
    base: BaseImage,
    wh: Wheelhouse,
    progress: Callable[[str], None] | None = None,
    kind: str = "platform",
) -> BaseImage:
    """The environment image for `base` + `wh` (built now if this machine has none); returned
    as the base the `kind` image's Containerfile starts FROM."""
    say = progress or (lambda _msg: None)
    base_id = tools.buildah(
        ["inspect", "--type", "image", "--format", "{{.FromImageID}}", base.reference]
    ).stdout.strip()
    containerfile = render_env(base.reference, wh.pip_wheel, kind)
    key = env_key(base_id, wh, containerfile)
    ref = f"{repository(kind)}:{key}"
    result = BaseImage(reference=ref, source="env-layer", key=key, dpkg_status=base.dpkg_status)
    if _exists(ref):
        return result
    locks = cache_root() / "env-layer"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / f".{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _exists(ref):  # another builder finished it while we waited
            return result
        say(f"environment layer {ref} (once per machine: the whole wheel lock)")
        # Next to the wheelhouse: the wheels are hard-linked into the context, not copied.
        ctx = Path(tempfile.mkdtemp(prefix=".env-", dir=Path(wh.path).parent))
        try:
            stage(wh, ctx / "wheelhouse")
            (ctx / "Containerfile").write_text(containerfile)
            tools.build(ctx, ref)
        except BaseException:
            tools.buildah(["rmi", ref], check=False)
            raise
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
    _prune(kind, keep=ref)
    return result
