"""Demo step 65: the monitor watches what prod runs (`mlgate monitor --env prod`).

The same monitor the scheduled monitoring pipeline runs (`gates.monitor_run.run_monitor`):
drift of the recent applications against the version's training set, the fairness of its
decisions, early delinquency against what the holdout promised, AUC and calibration on the
newest matured loans; a FAIL is the alert (the one payload `gates.monitor.alert_payload`
builds) and the retrain rule says whether to retrain. The report is kept
(`write_monitor_report`) for the story's page.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from mlgate.demo import DemoContext, DemoStep, acts
from mlgate.gates.monitor_run import run_monitor, write_monitor_report

COLOR = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}


def run(ctx: DemoContext) -> dict[str, Any]:
    model, _v1 = acts.trained(ctx)
    with ctx.progress(f"mlgate monitor --model {model} --env prod") as say:
        report = run_monitor(ctx.settings, model=model, env="prod", say=say)
    folder = write_monitor_report(ctx.settings, report)
    overall = report.overall.value
    ctx.say(
        f"monitor of v{report.version} in prod over {report.window[0][:10]}..{report.window[1][:10]}"
        f": [{COLOR[overall]}]{overall}[/], {len(report.alerts)} alert(s)"
    )
    for c in report.checks:
        ctx.console.print(f"    {c.name:<20} {c.status.value:<12} {c.summary}")
    for alert in report.alerts:
        ctx.say(f"  [red]alert[/] {escape(alert)}")
    if report.retrain is not None:
        ctx.say(
            f"  retrain: {'yes' if report.retrain.retrain else 'no'} "
            f"({escape(report.retrain.reason)})"
        )
    ctx.console.print(f"  report {folder}")
    return {
        "version": report.version,
        "overall": overall,
        "alerts": report.alerts,
        "retrain": report.retrain.retrain if report.retrain else None,
        "report_dir": str(folder),
    }


STEP = DemoStep(
    order=65, name="monitor", title="Monitoring prod: drift, fairness, outcomes", run=run, chapter=3
)
