"""Gate reports: JSON for machines, Markdown for the promotion PR, HTML with plots for people.

`write_report(dir, ...)` writes report.json, report.md, report.html and (when drift data is
given) evidently_drift.html into a new folder next to `dir` and swaps it in at the end, so a
crashed run never leaves a half-written report behind, and only over a folder that is absent,
empty or written by mlgate (`mlgate.outdir`): a user's folder is never emptied. The Evidently
report is configured with the gate's own method (PSI), per-feature threshold (psi_watch) and
drift share, so the human report does not contradict the gate; it is built on a stated sample
when the window is large (the gate's decision always uses every row). Evidently bins PSI with
Sturges equal-width bins, the gate with reference deciles, so the numbers differ a little.
"""

from __future__ import annotations

import base64
import html
import io
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.result import GateReport, GateResult, GateStatus
from mlgate.outdir import check_replaceable, new_folder

ICON = {GateStatus.PASS: "✅", GateStatus.FAIL: "❌", GateStatus.INCONCLUSIVE: "⚠️"}
FILES = ("report.json", "report.md", "report.html", "evidently_drift.html")


def to_markdown(report: GateReport) -> str:
    """The PR body: verdict first, one table row per gate, then only what needs attention."""
    champ = report.champion or "none (first version: absolute floors)"
    mode = "blocking" if report.enforced else "warn-only"
    lines = [
        f"## Gate report: {report.model} v{report.challenger} -> {report.env}",
        "",
        f"**Overall: {ICON[report.overall]} {report.overall.value}** "
        f"({mode}; worst gate: {report.verdict.value}) · champion: {champ}",
        "",
        "| Gate | Result | Blocking | Summary |",
        "|---|---|---|---|",
    ]
    for g in report.gates:
        summary = g.summary.replace("|", "\\|")
        lines.append(
            f"| {g.name} | {ICON[g.status]} {g.status.value} | "
            f"{'yes' if g.blocking else 'no'} | {summary} |"
        )
    attention = [g for g in report.gates if g.status != GateStatus.PASS and g.reasons]
    if attention:
        lines += ["", "### Why"]
        for g in attention:
            for r in g.reasons[:8]:
                lines.append(f"- **{g.name}**: {r}")
    d = report.data
    facts = [f"policy {report.policy_file or '(defaults)'}", f"created {report.created}"]
    for key, label in (
        ("champion_source", "champion"),
        ("cutoff_source", "cut-off"),
        ("holdout_labelled_rows", "labelled holdout rows"),
        ("holdout_declined_rows", "declined holdout rows"),
        ("current_rows", "current-window rows"),
        ("champion_reference_rows", "champion training rows (drift)"),
    ):
        if key in d:
            facts.append(f"{label}: {d[key]}")
    lines += ["", f"<sub>{' · '.join(facts)} · full numbers in report.json</sub>", ""]
    return "\n".join(lines)


# --- plots -------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(report: GateReport, holdout: HoldoutScores | None) -> list[tuple[str, str]]:
    """The figures; a figure that cannot be drawn is left out with a note, never fatal."""
    try:
        return _draw(report, holdout)
    except Exception as exc:  # noqa: BLE001 - the numbers in the report still stand
        report.warnings.append(f"plots not drawn: {type(exc).__name__}: {exc}")
        return []


def _draw(report: GateReport, holdout: HoldoutScores | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[tuple[str, str]] = []
    gates = {g.name: g for g in report.gates}
    if holdout is not None and holdout.labelled.sum() > 0:
        from sklearn.metrics import roc_curve

        lab = holdout.labelled
        y = holdout.y[lab].astype(int)
        if len(np.unique(y)) == 2:
            fig, ax = plt.subplots(figsize=(5, 4.5))
            series = [("challenger", holdout.pd_challenger), ("champion", holdout.pd_champion)]
            for label, s in series:
                if s is None or not np.isfinite(s[lab]).all():
                    continue
                fpr, tpr, _ = roc_curve(y, s[lab])
                ax.plot(fpr, tpr, label=label)
            ax.plot([0, 1], [0, 1], ":", color="grey")
            ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
            ax.legend()
            out.append(("ROC on the labelled out-of-time holdout", _png(fig)))
    cal = gates.get("calibration")
    if cal and cal.details.get("bands"):
        bands = cal.details["bands"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        x = [b["mean_pd"] for b in bands]
        obs = [b["observed_rate"] for b in bands]
        err = [
            [max(b["observed_rate"] - b["jeffreys_lower"], 0.0) for b in bands],
            [max(b["jeffreys_upper"] - b["observed_rate"], 0.0) for b in bands],
        ]
        colors = ["red" if b.get("fails") else "tab:blue" for b in bands]
        ax.errorbar(x, obs, yerr=err, fmt="none", ecolor="grey")
        ax.scatter(x, obs, c=colors, zorder=3)
        hi = max(max(x), max(obs)) * 1.1
        ax.plot([0, hi], [0, hi], ":", color="grey")
        ax.set(xlabel="mean predicted PD", ylabel="observed default rate", title="Calibration")
        out.append(("Calibration by score band (Jeffreys intervals; red = fails)", _png(fig)))
    drift = gates.get("drift")
    if drift and drift.details.get("features"):
        feats = sorted(drift.details["features"], key=lambda r: r["psi"])
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(feats) + 1.5))
        psi = [min(r["psi"], 2.0) for r in feats]
        col = {"stable": "tab:green", "watch": "orange", "act": "red"}
        names = [r["feature"] for r in feats]
        ax.barh(names, psi, color=[col[r["level"]] for r in feats], label="challenger")
        champ = [
            (n, min(r["psi_champion"], 2.0))
            for n, r in zip(names, feats, strict=True)
            if r.get("psi_champion") is not None
        ]
        if champ:
            ax.scatter(
                [c[1] for c in champ],
                [c[0] for c in champ],
                marker="|",
                s=200,
                color="black",
                zorder=3,
                label="champion's training set",
            )
            ax.legend(loc="lower right", fontsize=7)
        pol = report.policy.get("drift", {})
        for t in (pol.get("psi_watch", 0.1), pol.get("psi_act", 0.25)):
            ax.axvline(t, ls=":", color="grey")
        ax.set(xlabel="PSI (capped at 2)", title="Drift per feature")
        out.append(
            (
                "Drift per feature: PSI of today's applications vs each model's training set",
                _png(fig),
            )
        )
    fair = gates.get("fairness")
    if fair and fair.details.get("attributes"):
        attrs = fair.details["attributes"]
        fig, axes = plt.subplots(1, len(attrs), figsize=(4 * len(attrs), 3.5), squeeze=False)
        for ax, (attr, entry) in zip(axes[0], attrs.items(), strict=False):
            groups = entry["groups"]
            names = [str(g["group"]) for g in groups]
            xs = np.arange(len(names))
            ax.bar(xs - 0.2, [g["challenger"] for g in groups], 0.4, label="challenger")
            if groups and "champion" in groups[0]:
                ax.bar(xs + 0.2, [g["champion"] for g in groups], 0.4, label="champion")
            ax.set_xticks(xs, names, rotation=30)
            ax.set(title=attr, ylim=(0, 1), ylabel="approval rate")
        axes[0][0].legend()
        out.append(("Approval rate by protected group", _png(fig)))
    pnl = gates.get("pnl")
    if pnl and pnl.details.get("bootstrap"):
        dist = np.asarray(pnl.details["bootstrap"])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(dist, bins=40, color="tab:blue")
        m = pnl.metrics
        for key in ("uplift_lower", "uplift_upper", "profit_lower", "profit_upper"):
            if key in m:
                ax.axvline(m[key], color="black", ls="--")
        thr = m.get("uplift_threshold", m.get("floor"))
        if thr is not None:
            ax.axvline(thr, color="red", label="tolerance")
            ax.legend()
        what = "uplift" if "uplift_lower" in m else "profit"
        ax.set(xlabel=f"{what} per application (bootstrap)", title="P&L")
        out.append((f"P&L: bootstrap distribution of the {what} per application", _png(fig)))
    return out


def to_html(
    report: GateReport, holdout: HoldoutScores | None = None, evidently_file: str | None = None
) -> str:
    esc = html.escape
    color = {
        GateStatus.PASS: "#1a7f37",
        GateStatus.FAIL: "#cf222e",
        GateStatus.INCONCLUSIVE: "#9a6700",
    }
    rows = "".join(
        f"<tr><td>{esc(g.name)}</td><td style='color:{color[g.status]};font-weight:bold'>"
        f"{g.status.value}</td><td>{'yes' if g.blocking else 'no'}</td><td>{esc(g.summary)}"
        f"{_reasons_html(g)}</td></tr>"
        for g in report.gates
    )
    figs = "".join(
        f"<figure><img src='data:image/png;base64,{b64}'><figcaption>{esc(cap)}</figcaption>"
        "</figure>"
        for cap, b64 in _plots(report, holdout)
    )
    metrics = "".join(
        f"<details><summary>{esc(g.name)} numbers</summary><pre>"
        f"{esc(json.dumps(g.metrics, indent=2, default=str))}</pre></details>"
        for g in report.gates
    )
    ev = (
        f"<p>Drift detail: <a href='{esc(evidently_file)}'>Evidently DataDriftPreset report</a> "
        "(same method and thresholds as the gate; see its sample size in report.json).</p>"
        if evidently_file
        else ""
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Gate report {esc(report.model)} v{esc(report.challenger)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}
figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>Gate report: {esc(report.model)} v{esc(report.challenger)} &rarr; {esc(report.env)}</h1>
<p><b style="color:{color[report.overall]}">Overall: {report.overall.value}</b>
({"blocking" if report.enforced else "warn-only"}; worst gate {report.verdict.value});
champion: {esc(report.champion or "none (first version: absolute floors)")};
policy: {esc(report.policy_file or "(defaults)")}; created {esc(report.created)}</p>
<table><tr><th>Gate</th><th>Result</th><th>Blocking</th><th>Summary</th></tr>{rows}</table>
{ev}{figs}<h2>Numbers</h2>{metrics}</body></html>"""


def _reasons_html(g: GateResult) -> str:
    if not g.reasons:
        return ""
    items = "".join(f"<li>{html.escape(r)}</li>" for r in g.reasons[:10])
    return f"<ul>{items}</ul>"


def evidently_html(data: DriftData, policy: dict[str, Any], sample: int, seed: int = 0) -> str:
    """Evidently 0.7 DataDriftPreset with the gate's PSI method, threshold and drift share."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        cols = data.numeric + data.categorical
        ref = data.reference[cols]
        cur = data.current[cols]
        if len(ref) > sample:
            ref = ref.sample(sample, random_state=seed)
        if len(cur) > sample:
            cur = cur.sample(sample, random_state=seed)
        dd = DataDefinition(numerical_columns=data.numeric, categorical_columns=data.categorical)
        preset = DataDriftPreset(
            columns=cols,
            drift_share=policy.get("drift_share", 0.3),
            method="psi",
            threshold=policy.get("psi_watch", 0.1),
        )
        snap = Report([preset]).run(
            current_data=Dataset.from_pandas(cur.reset_index(drop=True), data_definition=dd),
            reference_data=Dataset.from_pandas(ref.reset_index(drop=True), data_definition=dd),
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ev.html"
            snap.save_html(str(path))
            return path.read_text(encoding="utf-8")


def write_report(
    out_dir: str | Path,
    report: GateReport,
    *,
    holdout: HoldoutScores | None = None,
    drift: DriftData | None = None,
    evidently: bool = True,
    what: str = "mlgate gates report",
) -> dict[str, Path]:
    """Write the report files into a new folder swapped in at the end (`mlgate.outdir`: only
    over an absent, empty or mlgate-written folder) and return their paths."""
    out = check_replaceable(out_dir)  # before Evidently's seconds, not after
    with new_folder(out, what) as tmp:
        ev_name = None
        if drift is not None and evidently and len(drift.reference) and len(drift.current):
            pol = report.policy.get("drift", {})
            sample = int(pol.get("evidently_sample", 50_000))
            try:
                text = evidently_html(drift, pol, sample)
                (tmp / "evidently_drift.html").write_text(text, encoding="utf-8")
                ev_name = "evidently_drift.html"
                report.data["evidently_rows"] = {
                    "reference": min(sample, len(drift.reference)),
                    "current": min(sample, len(drift.current)),
                    "of": {"reference": len(drift.reference), "current": len(drift.current)},
                }
            except Exception as exc:  # noqa: BLE001 - the human report is optional evidence
                report.warnings.append(f"Evidently report not built: {type(exc).__name__}: {exc}")
        (tmp / "report.md").write_text(to_markdown(report), encoding="utf-8")
        (tmp / "report.html").write_text(to_html(report, holdout, ev_name), encoding="utf-8")
        (tmp / "report.json").write_text(
            json.dumps(report.model_dump(mode="json"), indent=2, default=str), encoding="utf-8"
        )
    return {name: out / name for name in FILES if (out / name).exists()}
