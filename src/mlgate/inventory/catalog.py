"""Build the inventory from the repository: model configs + the GitOps repository's main.

Model configs come from the reviewed directory (`mlgate.governance.model_config_dir`, default
config/models): each must validate as a `ModelConfig` and carry `governance:` and an explicit
`intended_use:`, or the whole inventory is refused (exit 2) naming every file and field: an
inventory that silently leaves a model out is worse than none. What runs where is
`gitops.status.read_status` (main's `release.yaml` files); the last validation is the newest
promotion commit of the model on main, read through `gitops.history.log` (the one trailer
parser; a commit whose trailers it refuses stops the read, as it does for promote); the
registered versions and aliases come from the MLflow registry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from mlgate.config import PlatformSettings
from mlgate.errors import ConfigError, MlgateError
from mlgate.gitops.history import Change, log
from mlgate.gitops.status import main_view, read_status
from mlgate.governance import model_config_dir, model_config_files
from mlgate.inventory.entry import Inventory, InventoryEntry, Registered, Validation
from mlgate.inventory.review import next_review, review_status
from mlgate.records.trailers import ENTERING
from mlgate.training.model_config import ModelConfig, load_model_config
from mlgate.training.registry import connect


def load_model_configs(directory: Path | None = None) -> list[tuple[Path, ModelConfig]]:
    """Every model config of the reviewed directory, each complete for the inventory; all
    problems at once (file and field), exit 2."""
    folder = directory or model_config_dir()
    problems: list[str] = []
    found: list[tuple[Path, ModelConfig]] = []
    seen: dict[str, Path] = {}
    for path in model_config_files(folder):
        try:
            cfg = load_model_config(path)
        except MlgateError as exc:
            problems += [f"{exc.message}: {p}" for p in exc.problems] or [exc.message]
            continue
        if cfg.governance is None:
            problems.append(
                f"{path}: governance: missing (owner, risk_tier 1|2|3, review_every_months)"
            )
        if "intended_use" not in cfg.model_fields_set:
            problems.append(f"{path}: intended_use: missing (what the model may be used for)")
        if cfg.name in seen:
            problems.append(f"{path}: name: {cfg.name!r} is also the name in {seen[cfg.name]}")
        seen[cfg.name] = path
        found.append((path, cfg))
    if problems:
        raise ConfigError(
            f"model inventory ({folder}): incomplete model configs", problems=problems
        )
    if not found:
        raise ConfigError(f"model inventory: no model config (*.yaml) in {folder}")
    return found


def _validation(change: Change) -> Validation:
    t = change.lineage
    assert t is not None
    when = datetime.fromtimestamp(change.time, UTC)
    return Validation(
        commit=change.sha,
        date=when.date(),
        time=change.time,
        env=t.environment,
        version=t.model_version,
        change=t.change.value,
        author=change.author,
        approved_by=list(t.approved_by),
        gate_report=t.gate_report,
        gate_result=t.gate_result,
        mlflow_run=t.mlflow_run,
        data_fingerprint=t.data_fingerprint,
    )


def last_validations(settings: PlatformSettings) -> dict[str, Validation]:
    """Model -> its newest promotion on main (a change that makes a version run somewhere)."""
    view = main_view(settings)
    if view is None:  # the embedded repository is created by the first promotion
        return {}
    out: dict[str, Validation] = {}
    for change in log(view.git_dir, view.cwd, view.ref, ["manifests/models"]):
        t = change.lineage
        if t is not None and t.change in ENTERING and t.model not in out:
            out[t.model] = _validation(change)
    return out


def registered_versions(settings: PlatformSettings, models: list[str]) -> dict[str, Registered]:
    """Model -> its registered versions and aliases. An unreadable registry is reported on every
    entry (`error`) rather than stopping the inventory: what runs and who approved it is git's."""
    try:
        client = connect(settings)
    except MlgateError as exc:
        return {m: Registered(error=exc.message) for m in models}
    out = {}
    for model in models:  # names are checked by ModelConfig (letters, digits, _ . -)
        try:
            found = client.search_model_versions(f"name='{model}'")
        except Exception as exc:  # noqa: BLE001 - any backend failure: say so on the entry
            out[model] = Registered(error=str(exc).splitlines()[0][:300])
            continue
        if not found:
            out[model] = Registered()
            continue
        newest = max(found, key=lambda mv: int(mv.version))
        aliases = {a: str(mv.version) for mv in found for a in (getattr(mv, "aliases", []) or [])}
        out[model] = Registered(
            versions=len(found),
            latest=str(newest.version),
            latest_created=datetime.fromtimestamp(
                newest.creation_timestamp / 1000, UTC
            ).isoformat(),
            aliases=dict(sorted(aliases.items())),
        )
    return out


def build_inventory(
    settings: PlatformSettings, today: date | None = None, directory: Path | None = None
) -> Inventory:
    """Every model of the reviewed model configs, with what git says about it."""
    day = today or datetime.now(UTC).date()
    configs = load_model_configs(directory)
    status = read_status(settings)
    validations = last_validations(settings)
    registry = registered_versions(settings, [cfg.name for _, cfg in configs])
    entries = []
    for path, cfg in configs:
        gov = cfg.governance
        assert gov is not None  # load_model_configs refuses a config without it
        ms = status.model(cfg.name)
        envs = list(ms.envs.values()) if ms else []
        last = validations.get(cfg.name)
        due = next_review(last.date if last else None, gov.review_every_months)
        entries.append(
            InventoryEntry(
                model=cfg.name,
                config_file=str(path),
                description=cfg.description,
                owner=gov.owner,
                risk_tier=gov.risk_tier,
                intended_use=cfg.intended_use,
                review_every_months=gov.review_every_months,
                environments=envs,
                registered=registry[cfg.name],
                last_validation=last,
                next_review=due,
                review_status=review_status(due, bool(envs), day),
            )
        )
    return Inventory(
        generated=day,
        gitops_remote=status.remote,
        gitops_commit=status.commit,
        models=entries,
    )
