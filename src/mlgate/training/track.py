"""The MLflow registry, write side: log a fitted model's run and register it as `challenger`.

All or nothing: the tracking server is checked before anything is created, and if any step
after that fails (logging, registration, tags, alias, model card) the run and the model version
created so far are deleted again, so a broken server never leaves a half-registered version.
`champion` is never touched here: promotion moves it (through git).
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError, ExternalServiceError, MlgateError
from mlgate.records.tags import VersionTags
from mlgate.training.model_card import ModelCardData, render_html, render_markdown
from mlgate.training.registry import CHALLENGER, LABEL_BIAS_ARTIFACT, connect, is_local_uri

if TYPE_CHECKING:
    from mlgate.training.train import Fitted

Progress = Callable[[str], None]
_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "pydantic", "mlflow")


def ensure_experiment(client: Any, settings: PlatformSettings, name: str) -> str:
    """The model's experiment; on the embedded default its artifacts live in the workspace."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)
    location = None
    uri = settings.mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        # Beside the database, wherever it is: a pipeline task reaching the embedded default's
        # store from its own workspace must not leave the artifacts in that workspace.
        location = (Path(uri[len("sqlite:///") :]).parent / "artifacts" / name).as_uri()
    elif is_local_uri(uri):
        location = (settings.ws().mlflow_dir / "artifacts" / name).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def _requirements() -> list[str]:
    reqs = []
    for pkg in ("mlgate", *_REQUIREMENTS):
        try:
            reqs.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return reqs


def _write_artifacts(fitted: Fitted, folder: Path) -> None:
    """Everything a reviewer (or a reproduction) needs, as files under `folder`."""
    data = folder / "data"
    (data / "training_set").mkdir(parents=True)
    (data / "holdout").mkdir(parents=True)
    fitted.training_set.to_parquet(
        data / "training_set" / f"{fitted.training_set_fp}.parquet", index=False
    )
    fitted.split.holdout.to_parquet(data / "holdout" / f"{fitted.holdout_fp}.parquet", index=False)
    cfg_dir = folder / "config"
    cfg_dir.mkdir()
    model_cfg = fitted.model_cfg.model_dump(mode="json")
    (cfg_dir / "model_config.json").write_text(json.dumps(model_cfg, indent=2))
    ds = fitted.dataset.model_dump(mode="json")
    ds["source_file"] = fitted.dataset.source_file
    (cfg_dir / "dataset_config.json").write_text(json.dumps(ds, indent=2))
    if fitted.label_bias is not None:  # what a reproduction applies again (the tag is its text)
        (folder / LABEL_BIAS_ARTIFACT).write_text(fitted.label_bias.model_dump_json(indent=2))
    ev = folder / "evaluation"
    ev.mkdir()
    e = fitted.evaluation
    (ev / "metrics.json").write_text(e.metrics.model_dump_json(indent=2))
    pd.DataFrame([b.model_dump() for b in e.calibration]).to_csv(
        ev / "calibration.csv", index=False
    )
    pd.DataFrame({"fpr": e.roc_fpr, "tpr": e.roc_tpr}).to_csv(ev / "roc.csv", index=False)
    pd.DataFrame([g.model_dump() for g in fitted.fairness]).to_csv(
        ev / "fairness_by_group.csv", index=False
    )
    preds = fitted.split.holdout[fitted.key_columns].copy()
    preds["pd"] = fitted.holdout_pd
    preds.to_parquet(ev / "holdout_predictions.parquet", index=False)
    (folder / "windows.json").write_text(fitted.split.windows.model_dump_json(indent=2))


def _write_card(card: ModelCardData, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, html_ = folder / "model_card.md", folder / "model_card.html"
    md.write_text(render_markdown(card))
    html_.write_text(render_html(card))
    (folder / "model_card_data.json").write_text(card.model_dump_json(indent=2))
    return md, html_


def card_dir(settings: PlatformSettings, model: str, version: str) -> Path:
    """Where a version's model card is kept in the workspace's reports (the demo page links it).
    The names may come from MLflow or a report file: one folder under model_cards, never a path
    of their choosing."""
    root = settings.ws().reports_dir / "model_cards"
    out = root / f"{model}-v{version}"
    if out.parent != root:
        raise BadInputError(f"model {model!r} version {version!r}: not a plain name")
    return out


def fetch_card(settings: PlatformSettings, model: str, version: str) -> Path:
    """Copy a version's model card from its MLflow run into the workspace's reports (a version a
    pipeline trained: its task wrote the card only to MLflow). -> the card's HTML."""
    import mlflow.artifacts

    from mlgate.training.registry import resolve_version

    mv = resolve_version(connect(settings), model, version)
    out_dir = card_dir(settings, model, str(mv.version))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".card-", dir=out_dir.parent))
    try:
        got = mlflow.artifacts.download_artifacts(
            run_id=str(mv.run_id),
            artifact_path="model_card",
            dst_path=str(tmp),
            tracking_uri=settings.mlflow_tracking_uri(),
        )
        if not (Path(got) / "model_card.html").is_file():
            raise ExternalServiceError(
                f"{model} v{mv.version}: MLflow run {mv.run_id} has no model_card/model_card.html"
            )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        Path(got).rename(out_dir)
    except MlgateError:
        raise
    except Exception as exc:  # MLflow raises its own kinds (and OSError) for a missing artifact
        raise ExternalServiceError(
            f"{model} v{mv.version}: no model card in its MLflow run {mv.run_id}: {exc}"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "model_card.html"


def publish_card(card: ModelCardData, out_dir: Path) -> Path:
    """Write the card into the workspace's reports (atomically: temp folder, then rename)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".card-", dir=out_dir.parent))
    _write_card(card, tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir / "model_card.html"


def log_and_register(
    settings: PlatformSettings, client: Any, fitted: Fitted, progress: Progress | None = None
) -> tuple[str, str, ModelCardData]:
    """Log the run, register the version with lineage tags and the `challenger` alias.

    Returns (version, run_id, model card data). On any failure, deletes what it created.
    """
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    say = progress or (lambda _msg: None)
    name = fitted.model_cfg.name
    exp_id = ensure_experiment(client, settings, name)
    had_model = bool(client.search_registered_models(filter_string=f"name = '{name}'"))
    run = client.create_run(
        exp_id,
        run_name=f"{name}-{fitted.model_cfg.algorithm}",
        tags={"mlgate.model": name, "mlgate.git_commit": fitted.git_commit},
    )
    run_id = run.info.run_id
    version: str | None = None
    try:
        with mlflow.start_run(run_id=run_id):
            say("logging parameters, metrics and artifacts")
            mlflow.log_params(fitted.params_to_log())
            mlflow.log_metrics(fitted.metrics_to_log())
            with tempfile.TemporaryDirectory(prefix="mlgate-run-") as tmp:
                _write_artifacts(fitted, Path(tmp))
                mlflow.log_artifacts(tmp)
            say("logging the model (pyfunc, signature, input example)")
            example = fitted.input_example()
            signature = infer_signature(
                example, pd.DataFrame({"pd": fitted.python_model.predict_pd(example)})
            )
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=fitted.python_model,
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
            )
            say("registering the version")
            tags = fitted.version_tags(run_id)
            mv = mlflow.register_model(info.model_uri, name, tags=tags)
            version = str(mv.version)
            client.set_registered_model_alias(name, CHALLENGER, version)
            card = fitted.card_data(version=version, run_id=run_id)
            with tempfile.TemporaryDirectory(prefix="mlgate-card-") as tmp:
                _write_card(card, Path(tmp))
                mlflow.log_artifacts(tmp, artifact_path="model_card")
            for key, value in (
                VersionTags(model_card="model_card/model_card.html").to_tags().items()
            ):
                client.set_model_version_tag(name, version, key, value)
        return version, run_id, card
    except BaseException as exc:
        _rollback(client, name, version, run_id, had_model)
        if isinstance(exc, MlgateError):
            raise
        if isinstance(exc, Exception):
            raise ExternalServiceError(
                f"MLflow logging/registration failed, nothing registered: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            ) from None
        raise


def tag_version(settings: PlatformSettings, model: str, version: str, tags: dict[str, str]) -> None:
    """Add tags (made by `records.tags`, so already checked) to an existing model version."""
    client = connect(settings)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(model, version, key, value)
    except Exception as exc:  # noqa: BLE001 - any backend failure is the server's
        raise ExternalServiceError(
            f"MLflow: tagging {model} version {version} failed: {str(exc).splitlines()[0][:300]}"
        ) from None


def _rollback(client: Any, name: str, version: str | None, run_id: str, had_model: bool) -> None:
    """Best effort: remove the version and run this attempt created."""
    try:
        if version is not None:
            client.delete_model_version(name, version)
        if not had_model:
            remaining = client.search_model_versions(filter_string=f"name = '{name}'")
            if not remaining:
                client.delete_registered_model(name)
    except Exception:  # the server may be the thing that broke; nothing more to do
        pass
    try:
        client.delete_run(run_id)
    except Exception:
        pass
