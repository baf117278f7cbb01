"""Demo step 70: v2, a routine retrain, in prod first as a shadow, then as a canary judged on the
traffic it really served.

v2 is gated and promoted dev -> stage like v1. On its passing prod gate report it enters prod
as a **shadow** (`gitops.shadow.start`, what `mlgate shadow start` opens): prod is served as
git declares it, the router mirrors every replayed request to v2, which decides nobody, and
`shadow analyze` (`canary.shadow_run.analyze_shadow`) compares the two answers to each request.
Then the shadow becomes the canary at the policy's initial weight (`gitops.canary.start`, one
PR that replaces the shadow and carries the shadow analysis), the weight is raised by a
reviewed PR, and prod is served again as git declares it (`serving.supervisor.serve_environment`, what `mlgate serve --env prod` runs:
stable and canary model servers, the router splitting by weight at random, Seldon-shaped
request logging into the request-log sink), applications of a past period (their early
outcomes have arrived) are replayed through the router (`serving.traffic.send`, what
`mlgate traffic replay` does) in two looks, and after each look `canary analyze` reads the
sink: the analysis over time. Everything served is stopped when the chapter ends.

Every version is pinned by its own model-server image (built when first promoted,
`demo.acts.image`); the predictors here run the same MLServer runtime and registered model
from the venv runtime (`mlgate serve --env prod --runtime image` runs the images).

A shadow is never break-glass: when the prod gate report does not PASS (`--fast`'s small
world: drift and fairness INCONCLUSIVE below their sample floors) the shadow phase is skipped
and v2 enters prod directly as a canary, on a recorded override.

On PROMOTE the verdict opens its PR (`canary analyze --act`); otherwise the demo promotes on
the prod gate report as a break-glass (an override with its reason on record: only a canary
analysis deciding PROMOTE is evidence for this change, a passing holdout report is not). Then the story goes on as it does in
a bank: late defaults look worse, the canary promotion is rolled back (git revert, the version
quarantined) and its canary aborted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlgate.canary.replay import period_applications
from mlgate.canary.run import act_on, analyze
from mlgate.canary.shadow_run import analyze_shadow
from mlgate.demo import DemoContext, DemoStep, acts
from mlgate.gates.collect import newest_application, run_dataset
from mlgate.gitops import canary
from mlgate.gitops import shadow as shadowmod
from mlgate.gitops.rollback import rollback
from mlgate.serving.logsink import READ_TOKEN_ENV
from mlgate.serving.router import wait_mirrored
from mlgate.serving.supervisor import Served, serve_environment
from mlgate.serving.traffic import send
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.registry import load_scorer

RETRAIN_C = 1.0  # v2: the routine retrain retunes the L2 strength (config: C 0.5)
WEIGHT = 50  # the canary step the analysis judges
DAYS = 60  # applications replayed to the canary, in LOOKS equal parts
SHADOW_DAYS = 30  # the month before, replayed while v2 runs as the shadow
LOOKS = 2
MATURED_DAYS = 120  # the replayed period ends this long before the newest application
BATCH = 10  # applications per request


@contextmanager
def _sink_reader(served: Served) -> Iterator[None]:
    """The analysis reads the local sink with its read token (`MLGATE_LOGSINK_READ_TOKEN_FILE`),
    for this chapter only."""
    old = os.environ.get(READ_TOKEN_ENV)
    os.environ[READ_TOKEN_ENV] = str(served.sink_read_token_file)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(READ_TOKEN_ENV, None)
        else:
            os.environ[READ_TOKEN_ENV] = old


def _period_start(ctx: DemoContext, model: str, version: str) -> str:
    dataset = run_dataset(ctx.settings, load_scorer(ctx.settings, model, version).run_id)
    newest = newest_application(ctx.settings, dataset)
    return (newest - pd.Timedelta(days=MATURED_DAYS + DAYS)).strftime("%Y-%m-%d")


def _look(ctx: DemoContext, srv: Served, frame: pd.DataFrame, n: int, total: int) -> Any:
    """Replay `frame` through the router, then analyse everything the sink logged so far."""
    with ctx.progress(f"look {n}/{total}: replaying {len(frame)} applications") as say:
        sent = send(
            srv.router_url,
            srv.model,
            frame,
            concurrency=1,  # in order: the router's seeded split is then the same every run
            batch=BATCH,
            tick=lambda done, all_: say(f"{done}/{all_} requests", done / max(all_, 1)),
        )
    by = ", ".join(f"v{v}: {k}" for v, k in sent.by_version.items())
    ctx.say(
        f"  look {n}: {sent.sent} requests through the router ({by} applications answered; "
        f"{sent.refused} refused by the serving contract, {sent.errors} errors)"
    )
    out = ctx.settings.ws().reports_dir / "canary" / f"{srv.model}-prod-look{n}"
    with ctx.progress(f"look {n}/{total}: canary analysis") as say:
        verdict, paths, _pr = analyze(
            ctx.settings,
            model=srv.model,
            env="prod",
            requests=str(srv.sink_read_url),
            report_dir=out,
            say=say,
        )
    rep = verdict.report
    checks = ", ".join(f"{g.name} {g.status.value}" for g in rep.gates)
    ctx.say(
        f"  analysis {n}: {rep.data.get('requests')} logged requests, "
        f"{rep.data.get('canary_requests')} by the canary -> [bold]{verdict.decision.upper()}[/]"
    )
    ctx.console.print(f"    {checks}")
    for g in rep.gates:
        ctx.console.print(f"    {g.name:<17} {g.status.value:<12} {g.summary}", markup=False)
    return verdict, paths["report.json"].parent


@contextmanager
def _serving(ctx: DemoContext, model: str, what: str) -> Iterator[Served]:
    """Prod served as git declares it (`mlgate serve --env prod`), the analysis reading its
    sink; everything stopped on the way out."""
    with ExitStack() as stack:
        with ctx.progress(f"mlgate serve --env prod: starting {what}"):
            srv = stack.enter_context(
                serve_environment(
                    ctx.settings, model, "prod", runtime="venv", seed=ctx.settings.seed
                )
            )
        if srv.reaped:
            ctx.say("stopped model servers a killed run left: " + ", ".join(srv.reaped))
        ctx.say(
            "serving prod as git declares it: "
            + ", ".join(
                f"{p.name} v{p.version} ({'mirrored' if p.shadow else f'{p.weight}%'})"
                for p in srv.predictors
            )
            + f"; router {srv.router_url}"
        )
        stack.enter_context(_sink_reader(srv))
        yield srv
    ctx.say("stopped the model servers, the router and the sink")


def _shadow(
    ctx: DemoContext, model: str, v2: str, image2: str, report: Path, start: str
) -> dict[str, Any]:
    """v2 as the prod shadow: mirrored the month before the canary's period, compared with
    stable on the same requests (`mlgate shadow start`, `serve`, `traffic replay`,
    `shadow analyze`)."""
    settings = ctx.settings
    pr = shadowmod.start(settings, model, "prod", v2, report, image=image2)
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    acts.merge(ctx, pr, acts.APPROVERS[:1])
    before = (pd.Timestamp(start) - pd.Timedelta(days=SHADOW_DAYS)).strftime("%Y-%m-%d")
    frame, _dataset, window = period_applications(settings, model, "prod", before, SHADOW_DAYS)
    out = settings.ws().reports_dir / "canary" / f"{model}-prod-shadow"
    with _serving(ctx, model, "stable and its shadow, router, sink") as srv:
        with ctx.progress(f"shadow: replaying {len(frame)} applications") as say:
            sent = send(srv.router_url, model, frame, concurrency=1, batch=BATCH,
                        tick=lambda done, all_: say(f"{done}/{all_} requests", done / max(all_, 1)))  # fmt: skip
            wait_mirrored(srv.router_url)
        ctx.say(
            f"  shadow: {sent.sent} requests of {window[0][:10]}..{window[1][:10]} answered by "
            f"stable v{', v'.join(sent.by_version)}, every one mirrored to v{v2}"
        )
        with ctx.progress("shadow analysis"):
            rep, paths = analyze_shadow(
                settings, model=model, env="prod", requests=str(srv.sink_read_url), report_dir=out
            )
    checks = {g.name: g for g in rep.gates}
    flips = checks.get("decision_flips")
    flip_rate = flips.metrics.get("flip_rate") if flips is not None else None
    ctx.say(
        f"  shadow analysis: {rep.data.get('paired')} requests answered by both, "
        + (f"{flip_rate:.2%} decided differently, " if flip_rate is not None else "")
        + f"-> [{acts.COLOR[rep.overall.value]}]{rep.overall.value}[/]"
    )
    acts.print_gates(ctx, rep)
    return {
        "overall": rep.overall.value,
        "report_dir": str(paths["report.json"].parent),
        "paired": rep.data.get("paired"),
        "checks": {g.name: g.status.value for g in rep.gates},
        "window": window,
    }


def _why(report: Any) -> str:
    """Why the analysis waits, in the analysis' own numbers: each waiting check and the
    requests it would need at the current effect (a demo replays a few thousand)."""
    waiting = [
        f"{g.name}: a verdict needs about {g.metrics['seq_n_needed']:,} observations at this "
        f"effect, has {g.metrics['seq_n']:,}"
        if g.metrics.get("seq_n_needed")
        else f"{g.name} {g.status.value}"
        for g in report.gates
        if g.status.value != "PASS"
    ]
    return f" ({'; '.join(waiting)})" if waiting else ""


def run(ctx: DemoContext) -> dict[str, Any]:
    settings = ctx.settings
    model, v1 = acts.trained(ctx)
    v2 = acts.train_variant(
        ctx,
        "routine retrain",
        params={**load_model_config(DEFAULT_MODEL_CONFIG).params, "C": RETRAIN_C},
    )
    image2 = acts.image(ctx, model, v2)
    ctx.say(f"v{v2} through dev and stage; in prod first as a shadow beside v{v1}, then a canary:")
    promotions = [acts.promote_env(ctx, model, v2, env, image2) for env in ("dev", "stage")]
    report, overall, reason, _doc = acts.gates(ctx, model, v2, "prod")
    start = _period_start(ctx, model, v2)
    shadow = None
    if reason is None:
        shadow = _shadow(ctx, model, v2, image2, report, start)
    else:
        ctx.say(
            f"  no shadow: a shadow is never break-glass and the prod gates say {overall}; "
            f"v{v2} enters prod as a canary on a recorded override (two approvers)"
        )
        ctx.console.print(f"    {reason}", markup=False)
    pr = canary.start(
        settings,
        model,
        "prod",
        v2,
        report,
        image=image2,
        override_reason=reason,
        shadow_report=Path(shadow["report_dir"]) if shadow else None,
    )
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    commit = acts.merge(ctx, pr, acts.APPROVERS if reason else acts.APPROVERS[:1])
    promotions.append(
        {
            "version": v2,
            "env": "prod",
            "overall": overall,
            "report_dir": str(report),
            "override_reason": reason,
            "commit": commit,
        }
    )
    pr = canary.set_weight(settings, model, "prod", WEIGHT)
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    acts.merge(ctx, pr, acts.APPROVERS[:1])

    frame, _dataset, window = period_applications(settings, model, "prod", start, DAYS)
    looks: list[dict[str, Any]] = []
    with _serving(ctx, model, "stable, canary, router, sink") as srv:
        ctx.say(f"replaying applications of {window[0][:10]}..{window[1][:10]} (outcomes known)")
        for n, part in enumerate(np.array_split(np.arange(len(frame)), LOOKS), start=1):
            verdict, report_dir = _look(ctx, srv, frame.iloc[part], n, LOOKS)
            looks.append(
                {
                    "decision": verdict.decision,
                    "reasons": verdict.reasons,
                    "report_dir": str(report_dir),
                    "checks": {g.name: g.status.value for g in verdict.report.gates},
                    "requests": verdict.report.data.get("requests"),
                }
            )

    prod = promotions[-1]
    if verdict.decision == "promote":
        reason = None
        pr = act_on(settings, verdict, report_dir)  # `canary analyze --act`
    else:
        ctx.say(
            f"the analysis says {verdict.decision.upper()}"
            + _why(verdict.report)
            + f"; the demo promotes on the prod gate report of v{v2} vs v{v1} "
            f"({prod['overall']}), as a recorded override"
        )
        # Only a canary analysis deciding PROMOTE is evidence for this change: anything else,
        # a passing holdout report included, is a break-glass with its reason on record.
        reason = prod["override_reason"] or (
            f"demo: the canary analysis says {verdict.decision} after {len(frame)} replayed "
            f"applications; promoted on the prod gate report ({prod['overall']})"
        )
        pr = canary.promote_canary(
            settings, model, "prod", Path(prod["report_dir"]), override_reason=reason
        )
    ctx.console.print(f"  opened {pr.branch}: {pr.subject}")
    acts.merge(ctx, pr, acts.APPROVERS if reason else acts.APPROVERS[:1])

    ctx.say("late-arriving defaults look worse: rollback (git revert; the version quarantined)")
    pr = rollback(settings, model, "prod", "demo: late-arriving defaults look worse")
    acts.merge(ctx, pr, acts.APPROVERS[:1])
    pr = canary.abort(settings, model, "prod", "demo: quarantined version, all traffic to stable")
    acts.merge(ctx, pr, acts.APPROVERS[:1])
    return {
        "model": model,
        "versions": [v1, v2],
        "promotions": promotions,
        "served": srv.model_dump(mode="json"),
        "window": window,
        "looks": looks,
        "canary_analysis": looks[-1],
        "shadow": shadow,
    }


STEP = DemoStep(
    order=70,
    name="canary",
    title="A retrain as a shadow, then a canary: served, replayed, analysed, rolled back",
    run=run,
    chapter=4,
)
