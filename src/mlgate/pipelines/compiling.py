"""Compile the pipelines to the YAML the Kubeflow UI uploads, and check the committed copies.

The compiled YAML (`mlgate/kubeflow/pipelines/compiled/`, package data) is committed so that a
user can upload it in the Kubeflow UI without installing anything, and so that reviewers see
what a change does to the pipeline graph. CI runs `mlgate pipeline compile --check`: it compiles
into memory and compares with the committed files after normalising (parsed YAML documents, so
formatting and key order do not matter); any difference means someone changed a component or
pipeline and forgot to recompile.

The image every step runs in is part of the compiled YAML. `--image REF` writes REF (the
production platform image, pinned by digest); without it a compile keeps the image the
committed YAML already pins (`MLGATE_PLATFORM_IMAGE` overrides that), so `--check` is exact
and recompiling after a code change never silently swaps the production reference for the
embedded default's.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mlgate.errors import BadInputError, ConfigError
from mlgate.pipelines import catalog
from mlgate.pipelines.platform import IMAGE_ENV, check_image_reference, platform_image


class CompiledPipeline(BaseModel):
    name: str
    path: str
    tasks: int  # tasks in the root DAG (what the UI graph shows at the top level)
    status: str  # written | unchanged | up-to-date | missing | out-of-date


def compile_to_text(name: str, image: str | None = None) -> str:
    """Compile one pipeline and return the YAML text kfp writes, every step on `image`
    (default: the image the components were declared with, `platform.platform_image()`)."""
    from kfp import compiler

    pipeline = catalog.load(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.yaml"
        compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(out))
        text = out.read_text(encoding="utf-8")
    return text if image is None else with_image(text, image)


def step_images(text: str) -> set[str]:
    """The images the compiled pipeline's steps run in."""
    executors = normalise(text)[0].get("deploymentSpec", {}).get("executors", {})
    return {str(e["container"]["image"]) for e in executors.values() if "container" in e}


def with_image(text: str, image: str) -> str:
    """The compiled text with every step's image replaced by `image` (kfp's formatting kept)."""
    check_image_reference(image)
    (baked,) = step_images(text) or {image}
    pattern = re.compile(rf"^(\s+image: ){re.escape(baked)}$", re.MULTILINE)
    new, count = pattern.subn(lambda m: m.group(1) + image, text)
    executors = normalise(text)[0].get("deploymentSpec", {}).get("executors", {})
    if count != len(executors):
        raise ConfigError(f"compiled YAML: {count} image lines for {len(executors)} steps")
    return new


def pinned_image(path: Path) -> str | None:
    """The one image a committed compiled YAML runs every step in (None: no file)."""
    if not path.is_file():
        return None
    images = step_images(path.read_text(encoding="utf-8"))
    if len(images) != 1:
        raise ConfigError(f"{path}: steps run in {len(images)} different images, expected one")
    return images.pop()


def choose_image(explicit: str | None, path: Path) -> str:
    """`--image`, else MLGATE_PLATFORM_IMAGE, else what the committed YAML pins, else the
    embedded default."""
    if explicit:
        return explicit
    if os.environ.get(IMAGE_ENV):
        return platform_image()
    return pinned_image(path) or platform_image()


def normalise(text: str) -> list[Any]:
    """Parsed YAML documents (pipeline spec, then the platform spec when kfp.kubernetes is used)."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def root_tasks(text: str) -> int:
    spec = normalise(text)[0]
    return len(spec.get("root", {}).get("dag", {}).get("tasks", {}))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_all(
    names: list[str] | None = None,
    *,
    check: bool = False,
    image: str | None = None,
    folder: Path | None = None,
) -> list[CompiledPipeline]:
    """Compile every pipeline (or `names`) into `folder` (default: the package's compiled/).
    With `check`, write nothing and report staleness."""
    if image is not None:
        try:
            check_image_reference(image, pinned=True)
        except ConfigError as exc:
            raise BadInputError(f"--image: {exc}") from None
    results = []
    for name in names or catalog.names():
        path = catalog.compiled_path(name, folder)
        text = compile_to_text(name, choose_image(image, path))
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        same = existing is not None and normalise(existing) == normalise(text)
        if check:
            status = "up-to-date" if same else ("missing" if existing is None else "out-of-date")
        elif same:
            status = "unchanged"
        else:
            _write_atomic(path, text)
            status = "written"
        results.append(
            CompiledPipeline(name=name, path=str(path), tasks=root_tasks(text), status=status)
        )
    return results


def stale(results: list[CompiledPipeline]) -> list[CompiledPipeline]:
    return [r for r in results if r.status in ("missing", "out-of-date")]


def load_compiled(path: str | Path) -> Any:
    """Load a compiled YAML back with the kfp SDK (what the Kubeflow UI does on upload)."""
    from kfp import components

    return components.load_component_from_file(str(path))
