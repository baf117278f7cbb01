"""Demo step 40: run the gates on the trained version for dev and keep the report.

In the full demo the training pipeline's gate tasks already judged v1 for dev (step 30): that
report is shown, not judged again.

Takes the version the training step registered (or the registry's `challenger` alias, so it
works from the workspace alone with `mlgate demo --only gates`). dev is warn-only: a non-PASS
gate is printed as a warning and the demo goes on, exactly as `mlgate gates run --env dev`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgate.demo import DemoContext, DemoStep
from mlgate.gates.result import GateReport, GateStatus
from mlgate.gates.run import file_report, run_gates_for_model
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config

ENV = "dev"


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _trained(ctx: DemoContext) -> tuple[str, str]:
    """(model, version) from the training step's result, else the `challenger` alias."""
    train = ctx.results.get("train")
    model = _field(train, "model") or load_model_config(DEFAULT_MODEL_CONFIG).name
    return str(model), str(_field(train, "version") or "challenger")


def _pipelines(report_dir: Any, model: str, challenger: str) -> GateReport | None:
    """The dev gate report of the training pipeline's run that trained this version (the full
    demo's train step hands its folder on): judged there, not judged again."""
    if not report_dir or not (Path(str(report_dir)) / "report.json").is_file():
        return None
    rep = GateReport.model_validate_json((Path(str(report_dir)) / "report.json").read_text())
    return rep if (rep.model, rep.challenger, rep.env) == (model, challenger, ENV) else None


def run(ctx: DemoContext) -> dict[str, Any]:
    model, challenger = _trained(ctx)
    ran_dir = _field(ctx.results.get("train"), "report_dir")
    ran = _pipelines(ran_dir, model, challenger)
    if ran is not None:
        kept = file_report(ctx.settings, Path(str(ran_dir)))  # beside the CLI's own reports
        report, paths = ran, {"report.json": kept / "report.json"}
        ctx.console.print(f"the training pipeline's gate tasks judged v{challenger} for {ENV}:")
    else:
        with ctx.progress("running gates") as say:
            report, paths = run_gates_for_model(
                ctx.settings,
                model=model,
                challenger=challenger,
                env=ENV,
                say=say,
            )
    for g in report.gates:
        color = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}[g.status.value]
        ctx.console.print(f"  {g.name:<12} [{color}]{g.status.value:<12}[/] {g.summary}")
    failing = [g.name for g in report.gates if g.status != GateStatus.PASS]
    ctx.say(
        f"gates v{report.challenger} in {ENV}: {report.verdict.value}"
        + (f" (not passing: {', '.join(failing)}; dev is warn-only)" if failing else "")
    )
    ctx.console.print(
        f"overall {report.overall.value} in {ENV} (warn-only; worst gate {report.verdict.value}),"
        f" champion {report.champion or 'none: first version held to the floors'}"
    )
    if report.verdict != GateStatus.PASS:
        ctx.console.print("[yellow]dev is warn-only: the demo continues[/]")
    for name, path in paths.items():
        ctx.console.print(f"  {name}: {path}")
    return {
        "model": model,
        "challenger": report.challenger,
        "env": ENV,
        "overall": report.overall.value,
        "verdict": report.verdict.value,
        "report_dir": str(paths["report.json"].parent),
    }


STEP = DemoStep(
    order=40,
    name="gates",
    title="Gates: performance, drift, fairness, P&L",
    run=run,
    chapter=2,
)
