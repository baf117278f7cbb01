"""The story's page: one self-contained HTML file of what the demo (or any workspace) did.

Built only from what the library already leaves behind, so the page can never tell a story
the records do not: main's first-parent history of the GitOps remote (`audit.mainline`, each
commit's trailers read by the one parser, `records.trailers`: change kind, version, canary
weight, approvers, override reason, quarantine), the gate, monitor and canary reports under
`<workspace>/reports`, the model cards, and `audit.lineage` for what runs in prod.

`collect` does the reading, `render` is pure (facts in, text out), so the page's shape is
tested without a demo run. Self-contained: inline CSS and SVG, no script, no external
request; the only links are relative ones to the report files beside it in the workspace.
Every value from a record (commit messages and trailers are attacker-reachable text) is
escaped.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mlgate.audit.lineage import lineage_at
from mlgate.audit.mainline import Mainline
from mlgate.config import PlatformSettings
from mlgate.errors import MlgateError
from mlgate.gates.monitor import MonitorReport
from mlgate.gates.result import GateReport
from mlgate.gitops.overlay import ENVS
from mlgate.gitops.status import read_status

PAGE_NAME = "index.html"
COLORS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "INCONCLUSIVE": "#9a6700"}
KIND_COLORS = {
    "promote": "#0969da",
    "canary-set-weight": "#8250df",
    "canary-promote": "#1a7f37",
    "canary-abort": "#cf222e",
    "rollback": "#bc4c00",
    "shadow-start": "#57606a",
    "shadow-stop": "#57606a",
}
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;
color:#1f2328}
h1{font-size:1.6em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}.PASS{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:600}
.INCONCLUSIVE{color:#9a6700;font-weight:600}.muted{color:#57606a}.mono{font-family:monospace;word-break:break-all}
.alert{border-left:4px solid #cf222e;background:#fff5f5;padding:.4em .8em}
svg{display:block;margin:.5em 0}
"""


class TimelineEvent(BaseModel):
    """One change on main, as the timeline shows it."""

    commit: str
    time: datetime
    model: str
    env: str
    change: str
    version: str | None = None
    weight: int | None = None  # the canary's share after the change (None: no canary)
    author: str
    merged_by: str
    approved_by: list[str] = Field(default_factory=list)
    override_reason: str | None = None
    quarantined: str | None = None
    reverts: str | None = None
    subject: str


class Linked(BaseModel):
    """A report read from the workspace and the relative links to its files."""

    path: str  # the report's folder, relative to the page
    links: dict[str, str] = Field(default_factory=dict)  # label -> relative href


class GateEntry(Linked):
    report: GateReport


class MonitorEntry(Linked):
    report: MonitorReport


class PageData(BaseModel):
    title: str = "mlgate demo: a credit model's life"
    generated: datetime
    workspace: str
    timeline: list[TimelineEvent] = Field(default_factory=list)
    timeline_problem: str | None = None
    gates: list[GateEntry] = Field(default_factory=list)
    monitor: list[MonitorEntry] = Field(default_factory=list)
    canary: list[GateEntry] = Field(default_factory=list)  # analysis reports, oldest first
    lineage: list[dict[str, Any]] = Field(default_factory=list)  # audit.lineage EnvAt, as JSON
    model_cards: dict[str, str] = Field(default_factory=dict)  # "model vN" -> relative href


# --- reading ---------------------------------------------------------------------------------


def _rel(target: Path, page_dir: Path) -> str:
    return Path(os.path.relpath(target, page_dir)).as_posix()


def timeline(settings: PlatformSettings) -> list[TimelineEvent]:
    """Every change mlgate wrote on main (first parent, oldest first): a merge is one step."""
    out = []
    for c in Mainline(settings).commits:
        t = c.trailers
        if t is None or t.environment not in ENVS:
            continue
        out.append(
            TimelineEvent(
                commit=c.sha,
                time=c.when,
                model=t.model,
                env=t.environment,
                change=t.change.value,
                version=t.model_version,
                weight=t.canary_weight,
                author=c.author,
                merged_by=c.committer,
                approved_by=list(t.approved_by),
                override_reason=t.override_reason,
                quarantined=t.quarantined,
                reverts=t.reverts,
                subject=c.subject,
            )
        )
    return out


def _reports(folder: Path, page_dir: Path, extra: tuple[str, ...]) -> list[tuple[Any, Linked]]:
    found = []
    for f in sorted(folder.glob("*/report.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        links = {
            name: _rel(f.parent / name, page_dir)
            for name in ("report.html", *extra)
            if (f.parent / name).is_file()
        }
        found.append((doc, Linked(path=_rel(f.parent, page_dir), links=links)))
    return found


def collect(settings: PlatformSettings, page_dir: Path, now: datetime | None = None) -> PageData:
    """Read what the workspace holds into `PageData` (links relative to `page_dir`)."""

    ws = settings.ws()
    reports = ws.root / "reports"
    now = now or datetime.now(UTC)
    data = PageData(generated=now, workspace=str(ws.root))
    try:
        data.timeline = timeline(settings)
        for ms in read_status(settings).models:
            if "prod" in ms.envs:
                data.lineage.append(
                    lineage_at(settings, ms.model, "prod", now).model_dump(mode="json")
                )
    except MlgateError as exc:
        data.timeline_problem = str(exc)
    for doc, link in _reports(reports / "gates", page_dir, ("evidently_drift.html",)):
        data.gates.append(GateEntry(report=GateReport.model_validate(doc), **link.model_dump()))
    for doc, link in _reports(reports / "monitor", page_dir, ()):
        data.monitor.append(
            MonitorEntry(report=MonitorReport.model_validate(doc), **link.model_dump())
        )
    canary = [
        GateEntry(report=GateReport.model_validate(doc), **link.model_dump())
        for doc, link in _reports(reports / "canary", page_dir, ())
    ]
    data.canary = sorted(canary, key=lambda e: e.report.created)
    cards = reports / "model_cards"
    for card in sorted(cards.glob("*/*.html")) if cards.is_dir() else []:
        data.model_cards[card.parent.name] = _rel(card, page_dir)
    return data


# --- rendering (pure) ------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _status(value: str) -> str:
    return f'<span class="{_e(value)}">{_e(value)}</span>'


def _links(links: dict[str, str]) -> str:
    return " · ".join(f'<a href="{_e(href)}">{_e(label)}</a>' for label, href in links.items())


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _timeline_svg(events: list[TimelineEvent]) -> str:
    """One lane per environment, one marker per change in the order main got them (the demo's
    changes are seconds apart: order, not wall time, is what reads)."""
    if not events:
        return ""
    step, left, lane = 34, 70, 46
    width = left + step * (len(events) + 1)
    height = lane * len(ENVS) + 30
    parts = [
        f'<svg id="timeline-plot" width="{width}" '
        f'height="{height}" role="img" aria-label="changes per environment">'
    ]
    for i, env in enumerate(ENVS):
        y = 20 + lane * i + lane // 2
        parts.append(
            f'<text x="4" y="{y + 4}" font-size="13">{_e(env)}</text>'
            f'<line x1="{left - 10}" y1="{y}" x2="{width - 10}" y2="{y}" stroke="#d0d7de"/>'
        )
    for n, ev in enumerate(events):
        if ev.env not in ENVS:
            continue
        x = left + step * n
        y = 20 + lane * ENVS.index(ev.env) + lane // 2
        color = KIND_COLORS.get(ev.change, "#57606a")
        label = f"v{ev.version}" if ev.version else ev.change
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="9" fill="{color}"><title>{_e(ev.change)} '
            f"{_e(label)} ({_e(ev.commit[:10])})</title></circle>"
            f'<text x="{x}" y="{y - 13}" font-size="10" text-anchor="middle">{_e(label)}</text>'
        )
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="color:{c}">&#9679;</span> {_e(k)}' for k, c in KIND_COLORS.items()
    )
    return "".join(parts) + f'<p class="muted">{legend}</p>'


def _canary_svg(entries: list[GateEntry]) -> str:
    """Requests judged (bars) and the decision (colour) at each look of the analysis."""
    if not entries:
        return ""
    step, base, top = 90, 150, 20
    width = 60 + step * len(entries)
    most = max(_answered(e.report) for e in entries) or 1
    parts = [
        f'<svg id="canary-plot" width="{width}" '
        f'height="{base + 40}" role="img" aria-label="canary analysis over time">'
        f'<line x1="40" y1="{base}" x2="{width}" y2="{base}" stroke="#57606a"/>'
    ]
    for i, e in enumerate(entries):
        rep = e.report
        total = _answered(rep)
        canary = int(rep.data.get("canary_requests") or 0)
        x = 50 + step * i
        h_total = (base - top) * total / most
        h_canary = (base - top) * canary / most
        decision = rep.canary.decision if rep.canary else rep.overall.value
        color = {"promote": "#1a7f37", "abort": "#cf222e", "advance": "#0969da"}.get(
            decision, "#9a6700"
        )
        parts.append(
            f'<rect x="{x}" y="{base - h_total:.1f}" width="30" height="{h_total:.1f}" '
            f'fill="#d0d7de"><title>{total} requests</title></rect>'
            f'<rect x="{x + 32}" y="{base - h_canary:.1f}" width="30" height="{h_canary:.1f}" '
            f'fill="{color}"><title>{canary} served by the canary</title></rect>'
            f'<text x="{x + 31}" y="{base + 16}" font-size="11" text-anchor="middle">'
            f"look {i + 1}</text>"
            f'<text x="{x + 31}" y="{base + 32}" font-size="11" text-anchor="middle" '
            f'fill="{color}">{_e(decision.upper())}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _gate_section(entry: GateEntry, heading: str) -> str:
    rep = entry.report
    rows = [
        [_e(g.name), _status(g.status.value), "yes" if g.blocking else "no", _e(g.summary)]
        for g in rep.gates
    ]
    vs = f"vs champion v{rep.champion}" if rep.champion else "no champion: held to the floors"
    return (
        f"<h3>{_e(heading)}</h3><p>{_e(rep.model)} v{_e(rep.challenger)} in {_e(rep.env)} "
        f"({_e(vs)}): overall {_status(rep.overall.value)}"
        + ("" if rep.enforced else ' <span class="muted">(warn-only environment)</span>')
        + f' <span class="muted">{_e(rep.created)}</span></p>'
        + _table(["gate", "result", "blocking", "summary"], rows, "gate-table")
        + (f"<p>{_links(entry.links)}</p>" if entry.links else "")
    )


def _lineage_section(lineage: list[dict[str, Any]]) -> str:
    rows = []
    for env_at in lineage:
        for role in ("stable", "canary"):
            v = env_at.get(role)
            if not v:
                continue
            e = v.get("entered") or {}
            report = e.get("gate_report") or {}
            evidence = (
                "no gate report needed"
                if not report
                else f"{(report.get('sha256') or 'none')[:12]} "
                + (
                    "verified"
                    if report.get("verified")
                    else f"NOT verified: {report.get('problem')}"
                )
            )
            mlflow = v.get("mlflow") or {}
            rows.append(
                [
                    _e(env_at.get("model")),
                    _e(role),
                    f"v{_e(v.get('version'))}",
                    f"{_e(v.get('traffic'))}%",
                    f"{_e(e.get('change'))} <span class=mono>{_e((e.get('commit') or '')[:10])}"
                    "</span>",
                    _e(e.get("author")),
                    _e(", ".join(e.get("approved_by") or []) or "nobody"),
                    _e(e.get("merged_by")),
                    _e(evidence),
                    f'<span class="mono">{_e(v.get("image"))}</span>',
                    f'<span class="mono">{_e(mlflow.get("run_id"))}</span>',
                    f'<span class="mono">{_e(mlflow.get("data_fingerprint"))}</span>',
                ]
            )
    header = ["model", "role", "version", "traffic", "entered by", "author", "approved by",
              "merged by", "gate report", "image", "MLflow run", "data"]  # fmt: skip
    return _table(header, rows, "lineage-table") if rows else "<p>nothing runs in prod</p>"


def _answered(rep: GateReport) -> int:
    """Requests the analysis read: a canary analysis counts them under `requests`; a shadow
    analysis the pairs both versions answered (its `requests` is where it read them from)."""
    value = rep.data.get("paired" if rep.kind == "shadow-analysis" else "requests")
    return int(value) if isinstance(value, int | float) else 0


def _canary_section(entries: list[GateEntry]) -> str:
    """Each look of the analysis: what it had read and what it decided."""
    body: list[str] = []
    if not entries:
        body.append("<p>no canary analysis in this workspace</p>")
    body.append(_canary_svg(entries))
    names = sorted({g.name for e in entries for g in e.report.gates})
    rows = []
    for i, e in enumerate(entries):
        rep = e.report
        by_name = {g.name: g.status.value for g in rep.gates}
        rows.append(
            [
                str(i + 1),
                _e(rep.created),
                f"v{_e(rep.challenger)} vs v{_e(rep.champion)}",
                "shadow"
                if rep.kind == "shadow-analysis"
                else (f"{rep.canary.weight}%" if rep.canary else ""),
                _e(_answered(rep)),
                _e(rep.data.get("canary_requests")),
                *[_status(by_name[n]) if n in by_name else "" for n in names],
                _e(rep.canary.decision.upper() if rep.canary else rep.overall.value),
                _links(e.links),
            ]
        )
    if rows:
        body.append(
            _table(
                [
                    "look",
                    "time",
                    "canary",
                    "weight",
                    "requests",
                    "canary's",
                    *names,
                    "decision",
                    "report",
                ],  # fmt: skip
                rows,
                "canary-table",
            )
        )

    return "".join(body)


def render(data: PageData) -> str:
    """The page's HTML (pure)."""
    body: list[str] = [
        f"<h1>{_e(data.title)}</h1>",
        f'<p class="muted">generated {_e(data.generated.isoformat(timespec="seconds"))} from '
        f'workspace <span class="mono">{_e(data.workspace)}</span>: main of the GitOps '
        "repository and the reports under reports/</p>",
        '<h2 id="lineage">What runs in prod, and how it got there</h2>',
        _lineage_section(data.lineage),
        '<h2 id="timeline">Timeline: every change per environment</h2>',
    ]
    if data.timeline_problem:
        body.append(f'<p class="alert">{_e(data.timeline_problem)}</p>')
    body.append(_timeline_svg(data.timeline))
    for env in ENVS:
        events = [e for e in data.timeline if e.env == env]
        rows = [
            [
                _e(e.time.strftime("%Y-%m-%d %H:%M:%S")),
                f'<span style="color:{KIND_COLORS.get(e.change, "#57606a")}">{_e(e.change)}</span>',
                f"v{_e(e.version)}" if e.version else "",
                f"{e.weight}%" if e.weight is not None else "",
                _e(e.author),
                _e(", ".join(e.approved_by) or "nobody"),
                _e(e.merged_by),
                _e(
                    " ".join(
                        x
                        for x in (
                            f"override: {e.override_reason}" if e.override_reason else "",
                            f"quarantined v{e.quarantined}" if e.quarantined else "",
                            f"reverts {e.reverts[:10]}" if e.reverts else "",
                        )
                        if x
                    )
                ),  # fmt: skip
                f'<span class="mono">{_e(e.commit[:10])}</span> {_e(e.subject)}',
            ]
            for e in events
        ]
        header = ["time", "change", "version", "canary weight", "author", "approved by",
                  "merged by", "notes", "commit"]  # fmt: skip
        body.append(f'<h3 id="env-{_e(env)}">{_e(env)}: {len(events)} changes</h3>')
        body.append(_table(header, rows, "timeline-table") if rows else "<p>no change</p>")

    body.append('<h2 id="gates">Gate reports</h2>')
    if not data.gates:
        body.append("<p>no gate report in this workspace</p>")
    for g in data.gates:
        body.append(_gate_section(g, f"{g.report.model} v{g.report.challenger} -> {g.report.env}"))

    body.append('<h2 id="monitor">Monitoring</h2>')
    if not data.monitor:
        body.append("<p>no monitor report in this workspace</p>")
    for m in data.monitor:
        rep = m.report
        alerts = "".join(f"<li>{_e(a)}</li>" for a in rep.alerts)
        body.append(
            f"<h3>{_e(rep.model)} v{_e(rep.version)} in {_e(rep.env)}: "
            f"{_status(rep.overall.value)}</h3>"
            f'<p class="muted">window {_e(" .. ".join(rep.window))}</p>'
            + (
                f'<div class="alert"><strong>alert</strong><ul>{alerts}</ul></div>'
                if alerts
                else "<p>no alert</p>"
            )
            + (
                f"<p>retrain: {'yes' if rep.retrain.retrain else 'no'} "
                f"({_e(rep.retrain.reason)})</p>"
                if rep.retrain
                else ""
            )
            + _table(
                ["check", "result", "summary"],
                [[_e(c.name), _status(c.status.value), _e(c.summary)] for c in rep.checks],
                "monitor-table",
            )
            + (f"<p>{_links(m.links)}</p>" if m.links else "")
        )

    body.append('<h2 id="canary">Canary analysis over time</h2>')
    body.append(_canary_section(data.canary))

    body.append('<h2 id="evidence">Model cards and drift reports</h2><ul>')
    for name, href in data.model_cards.items():
        body.append(f'<li><a href="{_e(href)}">model card {_e(name)}</a></li>')
    for g in data.gates:
        if "evidently_drift.html" in g.links:
            body.append(
                f'<li><a href="{_e(g.links["evidently_drift.html"])}">Evidently drift report '
                f"{_e(g.report.model)} v{_e(g.report.challenger)} -> {_e(g.report.env)}</a></li>"
            )
    body.append("</ul>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(data.title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_page(settings: PlatformSettings, out: Path | None = None) -> Path:
    """Collect and render the page into `out` (default `<workspace>/demo/index.html`),
    written whole (a temporary file renamed into place)."""
    path = out or settings.ws().sub("demo") / PAGE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render(collect(settings, path.parent))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
