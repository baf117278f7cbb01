"""The inventory as one self-contained HTML file: a table, inline CSS, no script, no external
request (a reviewer opens it from a mail or an audit archive). Every value is escaped: owners,
descriptions and approver names come from files people edit."""

from __future__ import annotations

from html import escape

from mlgate.inventory.entry import Inventory, InventoryEntry

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border:1px solid #ccc;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.overdue{background:#fde2e1;font-weight:bold}
.current{background:#e3f6e5}
code{font-size:12px}
"""

COLUMNS = (
    "model",
    "owner",
    "risk tier",
    "intended use",
    "running (env: stable, canary)",
    "registered (MLflow)",
    "last validation",
    "next review",
)


def envs_text(entry: InventoryEntry) -> list[str]:
    out = []
    for e in entry.environments:
        canary = f", canary v{e.canary_version} @ {e.canary_weight}%" if e.canary_version else ""
        out.append(f"{e.env}: v{e.stable_version}{canary} (cut-off {e.cutoff})")
    return out or ["not deployed"]


def registry_text(entry: InventoryEntry) -> list[str]:
    r = entry.registered
    if r.error:
        return [f"MLflow unreadable: {r.error}"]
    if not r.versions:
        return ["no version registered"]
    aliases = ", ".join(f"{a}=v{v}" for a, v in r.aliases.items()) or "no alias"
    return [
        f"{r.versions} version(s), latest v{r.latest} ({(r.latest_created or '')[:10]})",
        aliases,
    ]


def validation_text(entry: InventoryEntry) -> list[str]:
    v = entry.last_validation
    if v is None:
        return ["none on main"]
    return [
        f"{v.date.isoformat()}: v{v.version} into {v.env} ({v.change})",
        f"approved by {', '.join(v.approved_by) or 'nobody recorded'}; author {v.author}",
        f"gate report sha256 {v.gate_report or 'none'} ({v.gate_result or 'no result'})",
        f"commit {v.commit[:12]}",
    ]


def _cell(lines: list[str]) -> str:
    return "<br>".join(escape(x) for x in lines)


def render_html(inv: Inventory) -> str:
    rows = []
    for e in inv.models:
        due = e.next_review.isoformat() if e.next_review else "-"
        rows.append(
            "<tr>"
            f"<td><b>{escape(e.model)}</b><br>{escape(e.description)}</td>"
            f"<td>{escape(e.owner)}</td>"
            f"<td>{e.risk_tier}</td>"
            f"<td>{escape(e.intended_use)}</td>"
            f"<td>{_cell(envs_text(e))}</td>"
            f"<td>{_cell(registry_text(e))}</td>"
            f"<td>{_cell(validation_text(e))}</td>"
            f'<td class="{escape(e.review_status.replace(" ", "-"))}">{escape(due)}<br>'
            f"{escape(e.review_status)} (every {e.review_every_months} months)</td>"
            "</tr>"
        )
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    source = f"{inv.gitops_remote} @ {(inv.gitops_commit or 'empty')[:12]}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>mlgate model inventory</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>Model inventory</h1><p>As of {inv.generated.isoformat()}; GitOps "
        f"{escape(source)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )
