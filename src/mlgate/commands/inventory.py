"""`mlgate inventory`: every model with owner, risk tier, intended use, what runs where, its last
validation and next review date. Thin shell over `mlgate.inventory`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlgate.commands._common import emit_json, out, progress, state
from mlgate.errors import BadInputError
from mlgate.inventory.catalog import build_inventory
from mlgate.inventory.render import (
    COLUMNS,
    envs_text,
    registry_text,
    render_html,
    validation_text,
)

COMMANDS = ("inventory",)


def register(app: typer.Typer) -> None:
    @app.command("inventory")
    def inventory(
        ctx: typer.Context,
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
        html: Path | None = typer.Option(
            None, "--html", help="Write the inventory as one self-contained HTML file here."
        ),
    ) -> None:
        """Every model: owner, risk tier, intended use, versions per environment, last
        validation (who approved, when, gate report hash) and next review date."""
        if json_out and html is not None:
            raise BadInputError("give --json or --html, not both")
        with progress("reading model configs and git", quiet=json_out):
            inv = build_inventory(state(ctx).settings())
        if json_out:
            emit_json(inv)
            return
        if html is not None:
            tmp = html.with_name(f".{html.name}.tmp")
            tmp.write_text(render_html(inv), encoding="utf-8")
            tmp.replace(html)  # never a half-written file
            out.print(f"inventory of {len(inv.models)} model(s) written to {html}")
            return
        table = Table(title=f"model inventory ({inv.generated.isoformat()})")
        for col in COLUMNS:
            table.add_column(col)
        for e in inv.models:
            due = e.next_review.isoformat() if e.next_review else "-"
            table.add_row(
                e.model,
                e.owner,
                str(e.risk_tier),
                e.intended_use,
                "\n".join(envs_text(e)),
                "\n".join(registry_text(e)),
                "\n".join(validation_text(e)),
                f"{due}\n{e.review_status}",
            )
        out.print(table)
