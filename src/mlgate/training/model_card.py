"""The model card: an SR 11-7 style development document per model version.

Built from one `ModelCardData` record (logged to MLflow as JSON next to the rendered card), so
the card is reproducible from the registry alone: `render_markdown(data)` / `render_html(data)`
give the same document again. Sections follow what a validator expects: purpose and intended
use, data (sources, time span, fingerprints, row counts, population and exclusions), features,
method, out-of-time performance with ROC and calibration plots, approval and default rates by
protected group at the cut-off (fairlearn; the blocking fairness gate belongs to `mlgate gates`),
limitations, monitoring plan (the model's gate policy) and lineage.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlgate.data.group_coverage import (
    MAX_UNJOINED_SHARE,
    MIN_GROUP_SIZE,
    MISSING,
    coverage_problems,
    group_counts,
)
from mlgate.training.evaluate import Evaluation
from mlgate.training.split import SplitWindows

EXCLUSIONS = (
    "Declined applicants are excluded: outcomes exist only for applications the bank approved, "
    "so the model is fitted and evaluated on the approved, matured population (no reject "
    "inference). Applications whose 12-month performance window has not closed are excluded "
    "(immature). Scores for applicants unlike the approved population (the declined region) are "
    "extrapolations; monitoring and the canary's early-delinquency proxy watch for it."
)


class GroupRates(BaseModel):
    attribute: str
    group: str
    n: int
    approval_rate: float | None  # None: a training-population group absent from the holdout
    approved_default_rate: float | None
    adverse_impact_ratio: float | None  # approval rate / the most favoured group's
    warning: str | None = None  # why this group's rates cannot be judged (the fairness gate's)


class ModelCardData(BaseModel):
    model: str
    version: str | None = None
    run_id: str | None = None
    created: str
    description: str
    intended_use: str
    algorithm: str
    params: dict[str, Any]
    calibration: str
    seed: int
    cutoff: float
    dataset: str
    dataset_source: str
    data_fingerprint: str
    training_set_fingerprint: str
    label_bias: str | None = None  # labels relabelled on purpose (data.label_bias)
    feature_service: str | None
    feature_views: list[str]
    git_commit: str
    windows: SplitWindows
    population_rows: int  # matured, approved applications the training set holds
    numeric_features: list[str]
    categorical_features: list[str]
    protected_attributes: list[str]
    evaluation: Evaluation
    validation_auc: float | None = None
    train_auc: float | None = None
    fairness: list[GroupRates] = Field(default_factory=list)
    fairness_note: str = ""
    reason_code_method: str
    monitoring_policy_path: str | None = None
    monitoring_policy_yaml: str | None = None
    exclusions: str = EXCLUSIONS


def fairness_table(
    y: np.ndarray,
    pd_: np.ndarray,
    cutoff: float,
    protected: pd.DataFrame,
    min_group: int = 30,
    reference: pd.DataFrame | None = None,
    max_unjoined_share: float = MAX_UNJOINED_SHARE,
    min_group_size: int = MIN_GROUP_SIZE,
) -> list[GroupRates]:
    """Approval rate and default rate among the approved, per protected group (fairlearn).

    `reference` is the training population's protected attributes: a group it holds that the
    holdout lacks (or holds below the policy's floor), and too many holdout rows without a
    value, carry the fairness gate's own warning (`gates.fairness.coverage_problems`), so the
    card never shows a table that silently leaves a group out (the thresholds default to the
    gate policy's)."""
    from fairlearn.metrics import MetricFrame, count, selection_rate

    approved = (np.asarray(pd_) < cutoff).astype(int)
    y_arr = np.asarray(y, dtype=int)

    def approved_default_rate(y_true: Any, y_pred: Any) -> float:
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        return float(yt[yp == 1].mean()) if (yp == 1).any() else float("nan")

    problems = coverage_problems(
        protected,
        [str(a) for a in protected.columns],
        group_counts(reference),
        max_unjoined_share=max_unjoined_share,
        min_group_size=min_group_size,
    )
    warnings = {(p.attribute, p.group): p.message for p in problems}
    out: list[GroupRates] = []
    for attr in protected.columns:
        groups = protected[attr].astype("object").where(protected[attr].notna(), MISSING)
        frame = MetricFrame(
            metrics={
                "n": count,
                "approval_rate": selection_rate,
                "approved_default_rate": approved_default_rate,
            },
            y_true=y_arr,
            y_pred=approved,
            sensitive_features=groups.astype(str).to_numpy(),
        )
        table = frame.by_group
        judged = (table["n"] >= min_group) & (table.index != MISSING)
        best = float(table.loc[judged, "approval_rate"].max())
        for group, row in table.iterrows():
            adr = float(row["approved_default_rate"])
            out.append(
                GroupRates(
                    attribute=str(attr),
                    group=str(group),
                    n=int(row["n"]),
                    approval_rate=float(row["approval_rate"]),
                    approved_default_rate=None if np.isnan(adr) else adr,
                    adverse_impact_ratio=(
                        float(row["approval_rate"]) / best if best and best > 0 else None
                    ),
                    warning=warnings.pop((str(attr), str(group)), None),
                )
            )
    for (attr, group), message in warnings.items():  # groups the holdout does not hold
        out.append(
            GroupRates(
                attribute=attr,
                group=group,
                n=0,
                approval_rate=None,
                approved_default_rate=None,
                adverse_impact_ratio=None,
                warning=message,
            )
        )
    return out


# --- plots --------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def roc_png(ev: Evaluation) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(ev.roc_fpr, ev.roc_tpr, label=f"AUC {ev.metrics.auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate (goods declined)")
    ax.set_ylabel("true positive rate (bads declined)")
    ax.set_title("ROC, out-of-time holdout")
    ax.legend(loc="lower right")
    return _png(fig)


def calibration_png(ev: Evaluation) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = [b.mean_pd for b in ev.calibration]
    obs = [b.observed_default_rate for b in ev.calibration]
    top = max(pred + obs + [0.01]) * 1.1
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=1)
    ax.plot(pred, obs, marker="o")
    ax.set_xlabel("mean predicted PD (decile)")
    ax.set_ylabel("observed default rate")
    ax.set_title("Calibration, out-of-time holdout")
    return _png(fig)


# --- rendering ----------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.2f}%"


def _sections(d: ModelCardData) -> list[tuple[str, str]]:
    """(title, markdown body) in card order; HTML renders the same content."""
    m = d.evaluation.metrics
    w = d.windows
    out: list[tuple[str, str]] = []
    out.append(
        ("Purpose and intended use", f"{d.description}\n\n**Intended use.** {d.intended_use}")
    )
    data_rows = [
        ("Dataset", f"`{d.dataset}` ({d.dataset_source})"),
        ("Source data fingerprint", f"`{d.data_fingerprint}`"),
        ("Training set fingerprint", f"`{d.training_set_fingerprint}`"),
        *([("Labels biased on purpose", d.label_bias)] if d.label_bias else []),
        ("Time span", f"{w.data_start[:10]} .. {w.data_end[:10]}"),
        (
            "Training window",
            f"{w.data_start[:10]} .. {w.validation_start[:10]} ({w.train_rows} rows)",
        ),
        (
            "Calibration window",
            f"{w.validation_start[:10]} .. {w.holdout_start[:10]} ({w.validation_rows} rows)",
        ),
        (
            "Out-of-time holdout",
            f"{w.holdout_start[:10]} .. {w.data_end[:10]} ({w.holdout_rows} rows)",
        ),
        ("Population", f"{d.population_rows} matured, approved applications"),
    ]
    body = "| | |\n|---|---|\n" + "\n".join(f"| {k} | {_cell(v)} |" for k, v in data_rows)
    body += f"\n\n**Population and exclusions.** {d.exclusions}"
    out.append(("Data", body))
    feats = "\n".join(f"- `{f}` (numeric)" for f in d.numeric_features)
    feats += "\n" + "\n".join(f"- `{f}` (categorical)" for f in d.categorical_features)
    feats += (
        f"\n\nProtected attributes ({', '.join(d.protected_attributes) or 'none'}) are used to "
        "measure fairness only, never as model inputs."
    )
    out.append(("Features", feats))
    method = (
        f"Algorithm `{d.algorithm}` with parameters `{d.params}`, seed {d.seed}. "
        f"Calibration: `{d.calibration}` map fitted on the calibration window (monotone, applied "
        "after the classifier). Split: out of time (train on older applications, hold out the "
        "newest matured window); a random split would overstate performance.\n\n"
        f"**Reason codes.** {d.reason_code_method}"
    )
    out.append(("Method", method))
    perf_rows = [
        ("AUC", f"{m.auc:.4f}"),
        ("Gini", f"{m.gini:.4f}"),
        ("KS", f"{m.ks:.4f}"),
        ("Brier score", f"{m.brier:.5f}"),
        ("Holdout rows / defaults", f"{m.n} / {m.defaults} ({_pct(m.default_rate)})"),
        ("Mean predicted PD", _pct(m.mean_pd)),
        ("Cut-off (decline if PD >=)", f"{m.cutoff:.3f}"),
        ("Approval rate at cut-off", _pct(m.approval_rate)),
        ("Default rate among approved", _pct(m.approved_default_rate)),
    ]
    if d.train_auc is not None:
        perf_rows.append(("AUC, training window (in sample)", f"{d.train_auc:.4f}"))
    if d.validation_auc is not None:
        perf_rows.append(("AUC, calibration window", f"{d.validation_auc:.4f}"))
    perf = "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in perf_rows)
    perf += "\n\n**Calibration by PD decile**\n\n| decile | n | PD range | mean PD | observed |\n"
    perf += "|---|---|---|---|---|\n"
    perf += "\n".join(
        f"| {b.decile} | {b.n} | {b.pd_min:.4f}-{b.pd_max:.4f} | {_pct(b.mean_pd)} | "
        f"{_pct(b.observed_default_rate)} |"
        for b in d.evaluation.calibration
    )
    out.append(("Out-of-time performance", perf))
    if d.fairness:
        fair = (
            f"At the cut-off {d.cutoff:.3f}, on the out-of-time holdout. Adverse impact ratio = "
            "approval rate / the most favoured group's (below 0.8 is the four-fifths red flag). "
            "Computed with fairlearn's MetricFrame; the blocking fairness gate is `mlgate gates`.\n\n"
            "| attribute | group | n | approval rate | default rate (approved) | AIR |\n"
            "|---|---|---|---|---|---|\n"
        )
        fair += "\n".join(
            f"| {g.attribute} | {g.group}{' ⚠' if g.warning else ''} | {g.n} | "
            f"{_pct(g.approval_rate)} | {_pct(g.approved_default_rate)} | "
            f"{'n/a' if g.adverse_impact_ratio is None else f'{g.adverse_impact_ratio:.3f}'} |"
            for g in d.fairness
        )
        warned = [g.warning for g in d.fairness if g.warning]
        if warned:
            fair = (
                "**Warning: not every protected group can be judged on this holdout** (the "
                "fairness gate is INCONCLUSIVE when a window it judges shows the same):\n\n"
                + "\n".join(f"- {w}" for w in warned)
                + "\n\n"
                + fair
            )
    else:
        fair = d.fairness_note or "No protected attributes available for this dataset."
    out.append(("Approval and default rates by protected group", fair))
    limits = (
        "- Trained on approved applicants only (see exclusions): performance on the through-the-"
        "door population, declined region included, is not directly measured.\n"
        "- Out-of-time performance covers one holdout window; economic conditions outside the "
        "data's time span are not represented.\n"
        "- Outcomes need 12 months to mature: monitoring relies on the early-delinquency proxy "
        "until then.\n"
        "- The cut-off here is an evaluation default; the served cut-off is credit policy, set "
        "per environment in git."
    )
    if d.algorithm != "logistic_regression":
        limits += (
            "\n- Tree-model reason codes are one-at-a-time attributions and do not add up to "
            "the score when features interact."
        )
    out.append(("Limitations", limits))
    if d.monitoring_policy_yaml:
        mon = (
            f"Gate and monitoring thresholds from `{d.monitoring_policy_path}` "
            "(drift, fairness, performance, P&L gates; `mlgate gates run`):\n\n"
            f"```yaml\n{d.monitoring_policy_yaml.rstrip()}\n```"
        )
    else:
        mon = "None: no gate policy file for this model yet (config/policies/<model>.yaml)."
    out.append(("Monitoring plan", mon))
    lineage_rows = [
        ("Registered model", f"`{d.model}` version {d.version or '(unregistered)'}"),
        ("MLflow run", f"`{d.run_id or 'n/a'}`"),
        ("Git commit", f"`{d.git_commit}`"),
        ("Feast feature service", f"`{d.feature_service or 'n/a'}`"),
        ("Feast feature views", ", ".join(f"`{v}`" for v in d.feature_views) or "n/a"),
        ("Created", d.created),
    ]
    out.append(
        ("Lineage", "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in lineage_rows))
    )
    return out


def _title(d: ModelCardData) -> str:
    return f"Model card: {d.model} version {d.version or '(unregistered)'}"


def render_markdown(d: ModelCardData) -> str:
    parts = [f"# {_title(d)}\n"]
    for i, (title, body) in enumerate(_sections(d), start=1):
        parts.append(f"## {i}. {title}\n\n{body}\n")
        if title == "Out-of-time performance":
            parts.append("(ROC and calibration plots: see the HTML card.)\n")
    return "\n".join(parts)


def _cell(value: str) -> str:
    """A table cell's text: a `|` in it would end the cell and push the rest into a column
    that is not rendered."""
    return value.replace("|", "\\|")


def _md_to_html(body: str) -> str:
    """Markdown (CommonMark + tables) -> HTML, with markdown-it (already in the stack via rich)."""
    from markdown_it import MarkdownIt

    # raw HTML off: the card shows names and values from data files, MLflow and model configs
    # (a protected group's value, a label bias's reason), which must read as text, never run
    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(body))


def render_html(d: ModelCardData) -> str:
    css = (
        "body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:left}pre{background:#f5f5f5;padding:8px;overflow:auto}"
        "img{margin-right:1em}"
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(_title(d))}"
        f"</title><style>{css}</style></head><body><h1>{html.escape(_title(d))}</h1>"
    ]
    for i, (title, body) in enumerate(_sections(d), start=1):
        parts.append(f"<h2>{i}. {html.escape(title)}</h2>")
        if title == "Out-of-time performance":
            parts.append(
                f"<div><img alt='ROC curve' src='data:image/png;base64,{roc_png(d.evaluation)}'>"
                f"<img alt='Calibration plot' "
                f"src='data:image/png;base64,{calibration_png(d.evaluation)}'></div>"
            )
        parts.append(_md_to_html(body))
    parts.append("</body></html>")
    return "\n".join(parts)
