"""`mlgate train` and `mlgate explain`: thin shells over mlgate.training."""

from __future__ import annotations

import typer
from rich.table import Table

from mlgate.commands._common import emit_json, out, progress, state
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config

COMMANDS = ("train", "explain")


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        ctx: typer.Context,
        model_config: str = typer.Option(
            str(DEFAULT_MODEL_CONFIG), "--model-config", "-m", help="Model config YAML."
        ),
        reproduce: str | None = typer.Option(
            None,
            "--reproduce",
            help="MODEL/VERSION: retrain a registered version from its recorded lineage and "
            "check its holdout predictions are identical (exit 1 if not). Registers nothing.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable result."),
    ) -> None:
        """Train, evaluate out of time, log to MLflow and register a `challenger` version."""
        from mlgate.training.train import train_model

        settings = state(ctx).settings()
        cfg = load_model_config(model_config)
        with progress(f"training {cfg.name}", quiet=as_json) as say:
            result = train_model(settings, cfg, reproduce=reproduce, progress=say)
        if as_json:
            emit_json(result)
        else:
            m = result.metrics
            table = Table(title=f"{result.model} ({result.algorithm}), out-of-time holdout")
            table.add_column("metric")
            table.add_column("value", justify="right")
            for k, v in (
                ("AUC", f"{m.auc:.4f}"),
                ("Gini", f"{m.gini:.4f}"),
                ("KS", f"{m.ks:.4f}"),
                ("Brier", f"{m.brier:.5f}"),
                ("holdout rows / defaults", f"{m.n} / {m.defaults}"),
                (f"approval rate at PD < {m.cutoff:g}", f"{100 * m.approval_rate:.1f}%"),
            ):
                table.add_row(k, v)
            out.print(table)
            if result.reproduced_from:
                verdict = "IDENTICAL" if result.holdout_identical else "DIFFERENT"
                out.print(
                    f"reproduction of {result.reproduced_from}: holdout predictions {verdict} "
                    f"(max |diff| {result.holdout_max_abs_diff:.3g}); training set: "
                    f"{result.training_set_source}"
                )
            else:
                out.print(
                    f"registered {result.model} version {result.version} "
                    f"(alias challenger), run {result.run_id}\n"
                    f"training set {result.training_set_fingerprint[:12]}, data "
                    f"{result.data_fingerprint[:12]}\nmodel card: {result.model_card}"
                )
        if result.reproduced_from and not result.holdout_identical:
            raise typer.Exit(1)

    @app.command("explain")
    def explain_cmd(
        ctx: typer.Context,
        model: str = typer.Option("credit_risk", "--model", help="Registered model name."),
        version: str = typer.Option(
            "challenger", "--version", help="Version number or alias (e.g. champion)."
        ),
        application_id: str | None = typer.Option(
            None, "--application-id", help="Score this application of the model's dataset."
        ),
        json_input: str | None = typer.Option(
            None, "--json-input", help="JSON file with the application's feature values."
        ),
        cutoff: float | None = typer.Option(
            None, "--cutoff", help="Decline when PD >= this (default: the model config's)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable result."),
    ) -> None:
        """Score one application offline: PD, decision and its reason codes."""
        from mlgate.training.explain import explain

        settings = state(ctx).settings()
        with progress(f"scoring with {model} {version}", quiet=as_json):
            result = explain(
                settings,
                model,
                version,
                application_id=application_id,
                json_input=json_input,
                cutoff=cutoff,
            )
        if as_json:
            emit_json(result)
            return
        out.print(
            f"{result.model} v{result.version}: PD {result.pd:.4f} -> "
            f"[bold]{result.decision}[/] (cut-off {result.cutoff:g})"
        )
        for rc in result.reason_codes:
            out.print(f"  {rc.code:<40} +{rc.contribution:.3f} logit  {rc.description}")
        if not result.reason_codes:
            out.print("  no adverse factors against the reference applicant")
