"""Benchmark: canary decisions with hourly looks, sequential (always-valid) vs fixed horizon.

Writes bench/results/canary_decision.json and prints a rich table. Usage:
`python bench/canary_decision.py [--seeds 20] [--rate 48000] [--n 40000] [--jobs 2] [--quick]`.

What is simulated. Serving is simulated in-process: every request is scored by both versions
with the same scoring the server runs (the fitted pipelines' PD) and every hour the analysis
runs the production judge, `mlgate.canary.analysis.judge` (volume, drift, fairness, early
delinquency, P&L; the decision rule, the deadline) with config/policies/credit_risk.yaml for
prod. The served end-to-end path (serve + replay + request log) is tested by
tests/test_canary_served.py and tests/test_canary_served_verdicts.py; here only the decision
statistics are measured, so many seeds fit in minutes. Served, the same volume would not: the
served replay runs at ~86 single-row requests/s for a logistic regression through router and
sink and ~18 for gradient boosting on a loaded 2-core machine (bench/served_replay.py), so one
simulated day at the default rate (48,000 requests) is ~10-45 minutes of replay per seed. The only policy change: one canary step (10% then promote), so the first verdict is
the decision; and, for the baseline, `canary.sequential.method: fixed_horizon` (the same alpha).

The world. One synthetic world per scenario file (config/scenarios/*.yaml through
`mlgate.data.world.generate_world`, `--n` applications over 30 months), joined point-in-time
by bench/_gate_world.py. Stable: logistic regression on months 0-13 (the bank's approvals with a
matured label). Requests replay the deployment population, the applications of months 18-29,
drawn at random at `--rate` requests per simulated day (2,000 an hour by default), each routed
to the canary with probability 10% (the policy's initial weight). Outcomes: a request the
serving version approved gets the application's own outcome from the world's oracle
(`true_early_delinquency_3m`, `true_default_12m`); a declined one none. Clock: early outcomes
become visible 24 simulated hours after the request and 12-month outcomes 96 hours after (a
compressed clock: really 3 and 12 months, which no week-long canary would see; the statistics
per matured outcome are what is compared). Roll rates for the P&L come from the canary's
out-of-time history (months 14-17, matured loans with both outcomes). Looks: every simulated
hour until a verdict (ADVANCE/PROMOTE or ABORT) or the policy's deadline (168 h: ABORT).
The 20 seeds vary the traffic (which applications arrive, the routing); the world and the
models are fitted once per scenario (a seed's world would cost minutes each).

Scenarios (canary beside the stable LR):
- good: LR retrained on months 4-17 (newer data, same features);
- covariate_drifted: LR trained on the covariate_drift world with its shift from month 0 (a
  canary built on a population that no longer applies: its own drift, not the population's);
- biased: the stable LR plus +1.0 log-odds for applicants aged 18-25 (bias world);
- worse_pnl: LR retrained, PDs x 0.35 (optimistic recalibration: many more risky approvals);
- concept_drifted: concept_drift world (relationships change from month 10): an LR trained on
  months 0-9 only, beside a stable trained on months 0-13.
Truth: good is GOOD; the others are BAD by construction, and the oracle's numbers on the whole
deployment population (true P&L uplift per request at the policy's cost model, true
early-delinquency ratio of booked loans, adverse impact ratio) are reported beside them: a
scenario whose oracle shows no harm is counted GOOD (the concept-drifted one may be).
Targets: no BAD canary promoted; >= 30% fewer requests to a decision than the fixed horizon;
at most 1 GOOD canary in 20 aborted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

import _gate_world as gw  # noqa: E402

from mlgate.canary import analysis  # noqa: E402
from mlgate.canary.analysis import CanaryState, Traffic, judge  # noqa: E402
from mlgate.canary.pnl import roll_rates  # noqa: E402
from mlgate.config import DEFAULT_POLICY_DIR  # noqa: E402
from mlgate.data import schema  # noqa: E402
from mlgate.data.world import load_world_spec  # noqa: E402
from mlgate.gates.decisions import approve, row_profit  # noqa: E402
from mlgate.gates.inputs import DriftData, HoldoutScores  # noqa: E402
from mlgate.gates.policy import GatePolicy, load_policy  # noqa: E402

_DRIFT, _FAIRNESS = analysis.drift_gate, analysis.fairness_gate
OUT = Path(__file__).parent / "results" / "canary_decision.json"
FULL = gw.NUMERIC + gw.CATEGORICAL
SCENARIOS = ["good", "covariate_drifted", "biased", "worse_pnl", "concept_drifted"]
WORLD_OF = {
    "good": "baseline",
    "covariate_drifted": "baseline",
    "biased": "bias",
    "worse_pnl": "baseline",
    "concept_drifted": "concept_drift",
}
WEIGHT, CUTOFF = 10, 0.15
EARLY_LAG_H, LABEL_LAG_H = 24, 96
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def months(frame: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    return frame[(frame["month"] >= lo) & (frame["month"] < hi)]


def canary_pd(model: Any, frame: pd.DataFrame, scenario: str) -> np.ndarray:
    p = gw.predict_pd(model, frame)
    if scenario == "worse_pnl":
        p = p * 0.35
    if scenario == "biased":
        young = (frame["age_band"] == "18-25").to_numpy()
        p = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + 1.0 * young)))
    return np.clip(p, 1e-6, 1 - 1e-6)


def trained_on(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["bank_approved"] & rows[schema.LABEL].notna()]


def build(scenario: str, n: int, tmp: str) -> dict[str, Any]:
    """The scenario's pool of requests scored by both versions, the drift references, the
    roll-rate history and the oracle's truth."""
    spec = load_world_spec([WORLD_OF[scenario]] if WORLD_OF[scenario] != "baseline" else [],
                           n_applications=n, seed=11)  # fmt: skip
    frame = gw.world_frame(spec, f"{tmp}/{scenario}")
    stable = gw.fit_pd(months(frame, 0, 14), "lr", FULL)
    stable_ref = trained_on(months(frame, 0, 14))
    if scenario == "covariate_drifted":
        drifted = load_world_spec(["covariate_drift"], n_applications=n, seed=11)
        drifted.scenarios = [s.model_copy(update={"start_month": 0}) for s in drifted.scenarios]
        other = gw.world_frame(drifted, f"{tmp}/{scenario}-trained")
        canary_rows = months(other, 0, 14)
    elif scenario == "concept_drifted":
        canary_rows = months(frame, 0, 10)
    elif scenario == "good":
        canary_rows = months(frame, 4, 18)
    else:
        canary_rows = months(frame, 0, 14)
    canary = stable if scenario == "biased" else gw.fit_pd(canary_rows, "lr", FULL)
    ref = trained_on(canary_rows)
    pool = months(frame, 18, 30).reset_index(drop=True)
    hist = months(frame, 14, 18)
    hist = hist[hist["bank_approved"] & hist[schema.LABEL].notna()]
    p_c, p_s = canary_pd(canary, pool, scenario), gw.predict_pd(stable, pool)
    return {
        "pool": pool[[*FULL, *schema.PROTECTED_ATTRIBUTES]].reset_index(drop=True),
        "pd_canary": p_c,
        "pd_stable": p_s,
        "early": pool["true_early_delinquency_3m"].to_numpy(float),
        "default": pool["true_default_12m"].to_numpy(float),
        "amount": pool["loan_amount"].to_numpy(float),
        "reference": ref[FULL].reset_index(drop=True),
        "reference_score": canary_pd(canary, ref, scenario),
        "reference_groups": {
            a: {str(k): int(v) for k, v in ref[a].value_counts().items()}
            for a in schema.PROTECTED_ATTRIBUTES
        },
        "champion_reference": stable_ref[FULL].reset_index(drop=True),
        "champion_reference_score": gw.predict_pd(stable, stable_ref),
        "roll": roll_rates(
            hist[schema.EARLY_LABEL].to_numpy(float),
            hist[schema.LABEL].to_numpy(float),
            "months 14-17: matured loans with both outcomes",
        ),
        "oracle": oracle(pool, p_c, p_s),
    }


def oracle(pool: pd.DataFrame, p_c: np.ndarray, p_s: np.ndarray) -> dict[str, float]:
    """What no lender sees: the true P&L uplift per request (true PD, policy cost model), the
    true early-delinquency ratio of the loans each version books, the adverse impact ratio of
    the canary's approvals by age band."""
    cost = GatePolicy().cost_model
    true_pd = pool["true_pd"].to_numpy(float)
    amount = pool["loan_amount"].to_numpy(float)
    a_c, a_s = approve(p_c, CUTOFF), approve(p_s, CUTOFF)
    uplift = float(
        (
            row_profit(a_c, true_pd, amount, cost, 0.0)
            - row_profit(a_s, true_pd, amount, cost, 0.0)
        ).mean()
    )
    early = pool["true_early_delinquency_3m"].to_numpy(float)
    rates = pd.Series(a_c).groupby(pool["age_band"].to_numpy()).mean()
    return {
        "uplift_per_request": uplift,
        "early_ratio": float(early[a_c].mean() / early[a_s].mean()),
        "adverse_impact_ratio_age": float(rates.min() / rates.max()),
    }


def is_bad(scenario: str, truth: dict[str, float], policy: GatePolicy) -> bool:
    if scenario == "good":
        return False
    if scenario == "concept_drifted":
        return (
            truth["uplift_per_request"] < -policy.canary.pnl_tolerance
            or truth["early_ratio"] > policy.monitor.early_delinquency_ratio
        )
    return True


class DailyGates:
    """Drift and fairness, computed at the first look and at the first look with the canary's
    minimum volume (seconds each: fairlearn's MetricFrame, the drift statistics on every
    request so far); at later looks the judge gets that result. They are effect-size gates
    that do not use the sequential method, the same for both methods, so this changes
    nothing in the comparison; the sequential checks (early delinquency, P&L), volume and the
    decision rule run at every hourly look."""

    def __init__(self) -> None:
        self.fresh = True
        self.cache: dict[str, Any] = {}

    def wrap(self, name: str, fn: Any) -> Any:
        def gate(*args: Any, **kwargs: Any) -> Any:
            if self.fresh or name not in self.cache:
                self.cache[name] = fn(*args, **kwargs)
            return self.cache[name].model_copy(deep=True)

        return gate


def run_one(world: dict[str, Any], policy: GatePolicy, seed: int, rate: int) -> dict[str, Any]:
    """One canary analysed every simulated hour until a verdict or the deadline."""
    daily = DailyGates()
    analysis.drift_gate = daily.wrap("drift", _DRIFT)  # type: ignore[assignment]
    analysis.fairness_gate = daily.wrap("fairness", _FAIRNESS)  # type: ignore[assignment]
    rng = np.random.default_rng(seed)
    per_hour = rate // 24
    deadline = policy.canary.deadline_hours
    hours = deadline + 1
    idx = rng.integers(0, len(world["pool"]), size=per_hour * hours)
    served = rng.random(len(idx)) < WEIGHT / 100
    arrive = np.repeat(np.arange(hours), per_hour).astype(float)
    approved = np.where(served, world["pd_canary"][idx] < CUTOFF, world["pd_stable"][idx] < CUTOFF)
    pool = world["pool"]
    verdict = None
    volume_seen = False
    drift: DriftData | None = None
    for hour in range(1, hours + 1):
        n = per_hour * hour
        age = hour - arrive[:n]
        sl = idx[:n]
        early = np.where(approved[:n] & (age >= EARLY_LAG_H), world["early"][sl], np.nan)
        label = np.where(approved[:n] & (age >= LABEL_LAG_H), world["default"][sl], np.nan)
        enough = int(served[:n].sum()) >= policy.canary.min_requests
        daily.fresh = hour == 1 or (enough and not volume_seen)
        volume_seen = enough
        rows = pool.iloc[sl].reset_index(drop=True) if daily.fresh else None
        scores = HoldoutScores(
            y=label,
            pd_challenger=world["pd_canary"][sl],
            pd_champion=world["pd_stable"][sl],
            amount=world["amount"][sl],
            groups=rows[schema.PROTECTED_ATTRIBUTES] if rows is not None else None,
            early=early,
            reference_groups=world["reference_groups"],
        )
        if rows is not None:  # between daily recomputations the cached result is used
            drift = DriftData(
                reference=world["reference"],
                current=rows[FULL],
                numeric=gw.NUMERIC,
                categorical=gw.CATEGORICAL,
                reference_score=world["reference_score"],
                current_score=world["pd_canary"][sl],
                champion_reference=world["champion_reference"],
                champion_reference_score=world["champion_reference_score"],
                champion_current_score=world["pd_stable"][sl],
            )
        state = CanaryState(
            model="credit_risk", env="prod", stable_version="1", canary_version="2",
            weight=WEIGHT, cutoff=CUTOFF, started=T0, now=T0 + timedelta(hours=hour),
        )  # fmt: skip
        verdict = judge(state, Traffic(scores, served[:n]), drift, None, policy, world["roll"])
        if verdict.decision != "wait":
            break
    assert verdict is not None
    failing = [g.name for g in verdict.report.gates if g.status == "FAIL"]
    return {
        "decision": verdict.decision,
        "hours": hour,
        "requests": per_hour * hour,
        "failing": failing,
        "reasons": verdict.reasons[:3],
    }


def scenario_task(
    scenario: str, n: int, seeds: int, rate: int, policies: dict[str, GatePolicy]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        world = build(scenario, n, tmp)
        built = time.perf_counter() - t0
    bad = is_bad(scenario, world["oracle"], policies["sequential"])
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in policies}
    for seed in range(seeds):
        for method, pol in policies.items():
            runs[method].append(run_one(world, pol, 1000 + seed, rate))
    roll = world["roll"]
    return {
        "scenario": scenario,
        "truth": "BAD" if bad else "GOOD",
        "oracle": world["oracle"],
        "roll_rates": roll.model_dump() if roll is not None else None,
        "world_seconds": round(built, 1),
        "runs": runs,
    }


def summarise(task: dict[str, Any], rate: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    bad = task["truth"] == "BAD"
    for method, runs in task["runs"].items():
        decided = [r for r in runs if r["decision"] != "wait"]
        go = sum(r["decision"] in ("advance", "promote") for r in runs)
        abort = sum(r["decision"] == "abort" for r in runs)
        right = abort if bad else go
        reqs = [r["requests"] for r in decided]
        out[method] = {
            "runs": len(runs),
            "promoted": go,
            "aborted": abort,
            "aborted_at_deadline": sum(r["decision"] == "abort" and not r["failing"] for r in runs),
            "accuracy": right / len(runs),
            "wrong_verdicts": len(runs) - right,
            "mean_requests_to_decision": float(np.mean(reqs)) if reqs else None,
            "median_requests_to_decision": float(np.median(reqs)) if reqs else None,
            "mean_days_to_decision": float(np.mean([r["hours"] for r in decided]) / 24)
            if decided
            else None,
            "failing_checks": sorted({c for r in runs for c in r["failing"]}),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--n", type=int, default=40_000, help="applications in each world")
    ap.add_argument("--rate", type=int, default=48_000, help="requests per simulated day")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="3 seeds")
    ap.add_argument("--only", nargs="*", choices=SCENARIOS)
    args = ap.parse_args()
    seeds = 3 if args.quick else args.seeds
    base = load_policy(DEFAULT_POLICY_DIR / "credit_risk.yaml").for_env("prod")
    one_step = base.canary.model_copy(update={"steps": [WEIGHT, 100]})
    seq = base.model_copy(update={"canary": one_step})
    fixed_seq = one_step.sequential.model_copy(update={"method": "fixed_horizon"})
    fixed = base.model_copy(
        update={"canary": one_step.model_copy(update={"sequential": fixed_seq})}
    )
    policies = {"sequential": seq, "fixed_horizon": fixed}
    console = Console()
    t0 = time.perf_counter()
    tasks: list[dict[str, Any]] = []
    chosen = args.only or SCENARIOS
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futs = [pool.submit(scenario_task, s, args.n, seeds, args.rate, policies) for s in chosen]
        for fut in as_completed(futs):
            tasks.append(fut.result())
            console.print(f"done: {tasks[-1]['scenario']} ({time.perf_counter() - t0:.0f} s)")
    tasks.sort(key=lambda t: SCENARIOS.index(t["scenario"]))
    results = {t["scenario"]: {**summarise(t, args.rate), "truth": t["truth"]} for t in tasks}
    table = Table(title=f"canary decisions, {seeds} seeds, {args.rate} requests/day, hourly looks")
    for col in ("scenario", "truth", "method", "accuracy", "promoted", "aborted",
                "at deadline", "requests to decision", "days"):  # fmt: skip
        table.add_column(col)
    for t in tasks:
        for method in policies:
            r = results[t["scenario"]][method]
            table.add_row(
                t["scenario"], t["truth"], method, f"{r['accuracy']:.2f}", str(r["promoted"]),
                str(r["aborted"]), str(r["aborted_at_deadline"]),
                f"{r['mean_requests_to_decision'] or 0:.0f}",
                f"{r['mean_days_to_decision'] or 0:.2f}",
            )  # fmt: skip
    console.print(table)

    def total_requests(method: str) -> float:
        return float(sum(sum(r["requests"] for r in t["runs"][method]) for t in tasks))

    seq_req, fix_req = total_requests("sequential"), total_requests("fixed_horizon")
    bad_promoted = {
        m: sum(results[t["scenario"]][m]["promoted"] for t in tasks if t["truth"] == "BAD")
        for m in policies
    }
    good_aborted = {
        m: sum(results[t["scenario"]][m]["aborted"] for t in tasks if t["truth"] == "GOOD")
        for m in policies
    }
    good_runs = sum(seeds for t in tasks if t["truth"] == "GOOD")
    saving = 1 - seq_req / fix_req if fix_req else None
    targets = {
        "no_bad_canary_promoted": bad_promoted["sequential"] == 0,
        "requests_saving_vs_fixed": saving,
        "requests_saving_at_least_30pct": saving is not None and saving >= 0.30,
        "good_aborted_at_most_1_in_20": good_aborted["sequential"] <= max(1, good_runs // 20),
    }
    doc = {
        "benchmark": "canary_decision",
        "seeds": seeds,
        "rate_per_day": args.rate,
        "weight_percent": WEIGHT,
        "looks": "hourly",
        "deadline_hours": base.canary.deadline_hours,
        "outcome_lag_hours": {"early": EARLY_LAG_H, "label_12m": LABEL_LAG_H},
        "world_applications": args.n,
        "alpha": base.canary.sequential.alpha,
        "mixture_scale": base.canary.sequential.mixture_scale,
        "fixed_horizon_power": base.canary.sequential.power,
        "results": results,
        "oracle": {t["scenario"]: t["oracle"] for t in tasks},
        "roll_rates": {t["scenario"]: t["roll_rates"] for t in tasks},
        "bad_promoted": bad_promoted,
        "good_aborted": good_aborted,
        "total_requests_to_decision": {"sequential": seq_req, "fixed_horizon": fix_req},
        "targets": targets,
        "seconds": round(time.perf_counter() - t0, 1),
        "runs": {t["scenario"]: t["runs"] for t in tasks},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2, default=str))
    console.print(targets)
    console.print(f"wrote {OUT} in {doc['seconds']} s")


if __name__ == "__main__":
    main()
