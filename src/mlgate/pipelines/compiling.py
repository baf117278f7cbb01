"""Compile the pipelines to the YAML the Kubeflow UI uploads, and check the committed copies.

The compiled YAML under `pipelines/compiled/` is committed so that a user can upload it in the
Kubeflow UI without installing anything, and so that reviewers see what a change does to the
pipeline graph. CI runs `mlgate pipeline compile --check`: it compiles into memory and compares
with the committed files after normalising (parsed YAML documents, so formatting and key
order do not matter); any difference means someone changed a component or pipeline and forgot
to recompile.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mlgate.pipelines import catalog


class CompiledPipeline(BaseModel):
    name: str
    path: str
    tasks: int  # tasks in the root DAG (what the UI graph shows at the top level)
    status: str  # written | unchanged | up-to-date | missing | out-of-date


def compile_to_text(name: str) -> str:
    """Compile one pipeline and return the YAML text kfp writes."""
    from kfp import compiler

    pipeline = catalog.load(name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.yaml"
        compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(out))
        return out.read_text(encoding="utf-8")


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


def compile_all(names: list[str] | None = None, *, check: bool = False) -> list[CompiledPipeline]:
    """Compile every pipeline (or `names`). With `check`, write nothing and report staleness."""
    results = []
    for name in names or catalog.names():
        text = compile_to_text(name)
        path = catalog.compiled_path(name)
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
