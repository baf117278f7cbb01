"""Demo step 65: months pass, customers shift, and the monitor on prod notices.

The world of chapter 1 as it turned out: the same bank, the same seed, with the covariate-drift
scenario (`config/scenarios/covariate_drift.yaml`: from month 24 applicants shop online more,
in more and smaller card payments) generated beside it (`<workspace>/data/world-later`). The
monitor the scheduled monitoring pipeline runs (`gates.monitor_run.run_monitor`, its
`data_path` as a pipeline task gets it) reads the recent applications from there: drift
against the version's training set, the fairness of its decisions, early delinquency against
what the holdout promised, AUC and calibration on the newest matured loans; a FAIL is the alert
(the one payload `gates.monitor.alert_payload` builds) and the retrain rule says whether to
retrain. The report is kept (`write_monitor_report`) for the story's page. The later chapters
go on with chapter 1's world: a retrain cannot learn the shift before its outcomes mature.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from mlgate.data.world import generate_world, load_world_spec
from mlgate.demo import DemoContext, DemoStep, acts
from mlgate.gates.monitor_run import run_monitor, write_monitor_report

COLOR = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow"}
SCENARIO = "covariate_drift"
FAST_WINDOW_DAYS = 60  # a 20k world has too few applications in the policy's 30 days


def run(ctx: DemoContext) -> dict[str, Any]:
    """The monitor on the later world (`--fast` skips it)."""
    model = acts.model_name(ctx)
    if ctx.fast:
        # A second world and a monitor over its whole history are a minute on 2 cores; the
        # monitor and its alert are tested in tests/test_gates_monitor.py.
        ctx.say(
            "fast mode: monitor skipped (tests/test_gates_monitor.py runs it); "
            f"`mlgate monitor --model {model} --env prod`"
        )
        return {"status": "skipped (fast)"}
    later = ctx.settings.ws().sub("data", "world-later")
    spec = load_world_spec([SCENARIO], n_applications=acts.world_size(ctx), seed=ctx.settings.seed)
    with ctx.progress("months pass: the world as it turned out") as say:
        generate_world(spec, later, progress=lambda m, f: say(m, f))
    shift = ", ".join(f"{sc.description} from {sc.start_date(spec.start, spec.months)}"
                      for sc in spec.scenarios)  # fmt: skip
    ctx.say(f"months pass: {shift}")
    with ctx.progress(f"mlgate monitor --model {model} --env prod") as say:
        report = run_monitor(
            ctx.settings,
            model=model,
            env="prod",
            window_days=FAST_WINDOW_DAYS if ctx.fast else None,
            data_path=later,
            say=say,
        )
    folder = write_monitor_report(ctx.settings, report)
    overall = report.overall.value
    ctx.say(
        f"monitor of v{report.version} in prod over {report.window[0][:10]}..{report.window[1][:10]}"
        f": [{COLOR[overall]}]{overall}[/], {len(report.alerts)} alert(s)"
    )
    for c in report.checks:
        ctx.console.print(f"    {c.name:<20} {c.status.value:<12} {c.summary}", markup=False)
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
        "world": str(later),
    }


STEP = DemoStep(
    order=65,
    name="monitor",
    title="Months pass: the monitor on prod, an alert, a retrain",
    run=run,
    chapter=3,
)
