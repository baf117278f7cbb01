"""Gate steps: one registered gate per task on the evidence artifact, then the one
report assembly (`mlgate.gates.verdict.assemble`) at the evaluation's cut-off."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from mlgate.errors import BadInputError
from mlgate.pipelines.steps.common import (
    StepOutput,
    numbers,
    policy_for,
    settings,
    write_json,
    write_text,
)


def _judging(policy: str, env: str, evidence_path: str) -> tuple[Any, dict[str, str], Any]:
    """(the policy in `env` at the cut-off the evaluation resolved, why inputs are missing,
    the evidence's meta): every gate task and the decision judge at the same cut-off."""
    from mlgate.gates.run import at_recorded_cutoff
    from mlgate.pipelines import evidence

    info = evidence.meta(evidence_path)
    eff = policy_for(policy, info["model"]).for_env(env)
    eff, why = at_recorded_cutoff(eff, info.get("info") or {}, info.get("why_missing") or {})
    return eff, why, info


def run_gate(gate: str, policy: str, env: str, evidence_path: str, result_path: str) -> StepOutput:
    """One registered gate on the evidence folder (mlgate.gates.registry), at the cut-off the
    evaluation resolved; the result JSON says whether the policy applies it in `env`."""
    from mlgate.gates.evaluate import evaluate_gates, gate_inputs
    from mlgate.gates.registry import spec
    from mlgate.pipelines import evidence

    spec(gate)  # an unknown gate is bad input naming the registered ones
    eff, why, _info = _judging(policy, env, evidence_path)

    def inputs() -> Any:
        return gate_inputs(
            evidence.holdout(evidence_path, gate),
            evidence.drift(evidence_path),
            eff,
            why,
            evidence.recent(evidence_path),
        )

    (result,) = evaluate_gates([gate], inputs, eff)
    applied = gate in eff.gates_for(env)
    write_json(result_path, {"applied": applied, "result": result.model_dump(mode="json")})
    metrics = numbers(result.metrics)
    metrics["pass"] = float(result.status == "PASS")
    return StepOutput(value=result.status.value if applied else "NOT_APPLIED", metrics=metrics)


def decide(
    policy: str,
    env: str,
    model_version: str,
    evidence_path: str,
    result_paths: list[str],
    report_html: str,
    report_dir: str,
) -> StepOutput:
    """The gate tasks' results -> one GateReport by the one assembler
    (`mlgate.gates.verdict.assemble`, as `gates run` and the canary analysis), written
    (json, md, html) and stored by sha256. A gate the policy requires with no result is
    INCONCLUSIVE.

    The pipeline proceeds only when every gate the policy applies in `env` says PASS (the
    report's `verdict`): automation proposes only what passed everything, also in a warn-only
    environment (a person can still promote with warnings by hand, `mlgate promote`).
    """
    from mlgate.gates.report import write_report
    from mlgate.gates.result import GateResult, GateStatus
    from mlgate.gates.run import default_report_dir
    from mlgate.gates.verdict import assemble
    from mlgate.gitops.report_store import put as store_report
    from mlgate.pipelines import evidence

    eff, _why, info = _judging(policy, env, evidence_path)
    results = []
    for path in result_paths:
        doc = json.loads(Path(path).read_text())
        if doc["applied"]:
            results.append(GateResult.model_validate(doc["result"]))
    report = assemble(
        model=info["model"],
        challenger=model_version,
        champion=info.get("champion"),
        env=env,
        policy=eff,
        results=results,
        data_info=info.get("info") or {},
    )
    if not report.gates:
        raise BadInputError(f"policy {eff.source_file}: no gate applies in {env!r}")
    st = settings()
    local_copy = default_report_dir(st, info["model"], model_version, env)
    paths = write_report(
        local_copy,
        report,
        holdout=evidence.holdout(evidence_path),
        drift=evidence.drift(evidence_path),
        evidently=False,
    )
    store_report(st, local_copy, info.get("run_id"))  # where a promotion finds it by sha256
    shutil.copytree(local_copy, report_dir, dirs_exist_ok=True)
    write_text(report_html, paths["report.html"].read_text(encoding="utf-8"))
    verdict = report.verdict
    decision = "PASS" if verdict == GateStatus.PASS else verdict.value
    metrics = {f"gate_{r.name}_pass": float(r.status == "PASS") for r in report.gates}
    metrics["all_pass"] = float(decision == "PASS")
    return StepOutput(
        value=decision,
        metrics=metrics,
        metadata={
            "overall": report.overall.value,
            "verdict": verdict.value,
            "report": str(local_copy),
        },
    )
