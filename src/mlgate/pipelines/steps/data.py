"""Data steps: publish the run's data as the `data` artifact (a copy of the source, or
the generated synthetic world) and validate that copy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mlgate.errors import BadInputError
from mlgate.pipelines.steps.common import (
    StepOutput,
    dataset_cfg,
    model_cfg,
    resolve,
    settings,
    write_json,
    write_text,
)


def _data_file(cfg: Any, folder: Path) -> Path:
    """Where the `data` artifact keeps the dataset: the world's folder itself (synthetic), or
    the one data file inside the artifact's folder."""
    return folder if cfg.resolved_format == "synthetic" else folder / Path(cfg.path).name


def prepare_data(
    model_config: str, world_applications: int, data_source: str, out_path: str
) -> StepOutput:
    """Publish the run's data as the `data` artifact (every later step reads that copy), with
    its fingerprint.

    The source is `data_source` when given (a folder holding a synthetic world, or a data
    file), else the dataset config's `path`. For the synthetic world: when the source has none,
    or `world_applications` > 0 asks for another size, a world is generated (seeded, so the
    same parameters give the same data) straight into the artifact.
    """
    from mlgate.data.fingerprint import fingerprint
    from mlgate.data.sources import rebind
    from mlgate.data.world import WorldManifest, generate_world, load_world_spec

    st = settings()
    cfg = dataset_cfg(model_cfg(model_config), st)
    if data_source:
        cfg = rebind(cfg, str(resolve(data_source)))
    source = cfg.resolve_path()
    out = Path(out_path)
    target = _data_file(cfg, out)
    generated = False
    if cfg.resolved_format == "synthetic":
        manifest = source / "manifest.json"
        current = (
            WorldManifest.model_validate_json(manifest.read_text()) if manifest.is_file() else None
        )
        wanted = int(world_applications) if world_applications else None
        if current is None or (wanted and current.spec.n_applications != wanted):
            generate_world(load_world_spec(n_applications=wanted, seed=st.seed), target)
            generated = True
    if not generated:
        if not source.exists():
            raise BadInputError(f"dataset {cfg.name!r}: {source} does not exist")
        _copy_data(source, target)
    fp = fingerprint(target)
    info = {
        "dataset": cfg.name,
        "source": "generated" if generated else str(source),
        "fingerprint": fp.sha256,
        "rows": fp.rows,
        "generated": generated,
    }
    return StepOutput(
        value=fp.sha256,
        metrics={"rows": float(fp.rows), "generated": float(generated)},
        metadata=info,
    )


def _copy_data(source: Path, target: Path) -> None:
    """Copy the dataset (a world folder or one file) into the artifact, following links."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def validate_data(model_config: str, data_path: str, report_path: str) -> StepOutput:
    """Validate the dataset; raise BadInputError listing every problem (fails the step)."""
    from mlgate.data.validate import validate_dataset

    st = settings()
    cfg = dataset_cfg(model_cfg(model_config), st, data_path)
    report = validate_dataset(cfg)
    write_text(report_path, _validation_html(report))
    write_json(Path(report_path).with_suffix(".json"), report.model_dump(mode="json"))
    report.raise_for_problems()
    metrics = {f"rows_{k}": float(v) for k, v in report.tables.items()}
    metrics["problems"] = float(len(report.problems))
    return StepOutput(value="PASS", metrics=metrics)


def _validation_html(report: Any) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(t)}</td><td>{n}</td></tr>" for t, n in sorted(report.tables.items())
    )
    probs = "".join(f"<li>{escape(p.message)}</li>" for p in report.problems) or "<li>none</li>"
    verdict = "passed" if report.ok else "FAILED"
    return (
        f"<html><body><h2>Dataset {escape(report.dataset)}: validation {verdict}</h2>"
        f"<p>{escape(report.path)} (max missing share {report.max_missing_share})</p>"
        f"<table border=1><tr><th>table</th><th>rows</th></tr>{rows}</table>"
        f"<h3>Problems</h3><ul>{probs}</ul></body></html>"
    )
