"""One verdict: gates are registered once, and one assembler turns their results into a report.

A toy gate registered here (no list edited anywhere) must appear in the policy's gate names, in
`gates run`'s report, in the pipeline's gate tasks (compiled ParallelFor items) and its
decision, and in what the verifier requires; the CLI path, the pipeline's decision step and the
verifier add the same results up the same way; missing evidence is INCONCLUSIVE, never PASS.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from mlgate.canary.analysis import CanaryState, judge
from mlgate.errors import BadInputError, ConfigError
from mlgate.gates import registry
from mlgate.gates.evaluate import run_gates
from mlgate.gates.policy import EnvironmentPolicy, GatePolicy, check_enforced, policy_digest
from mlgate.gates.registry import GateInputs, GateSpec
from mlgate.gates.report import to_markdown
from mlgate.gates.result import GateResult, GateStatus
from mlgate.gates.verdict import CANARY_CHECKS, assemble
from mlgate.gates.verify import Claim, EvidenceRefused, verify_report
from mlgate.pipelines import evidence
from mlgate.pipelines.steps import gates as gate_steps
from tests.gates_data import drift_data, holdout

BUILTIN = ("performance", "calibration", "drift", "fairness", "pnl", "swap")


def _policy(tmp_path: Path) -> tuple[GatePolicy, Path]:
    """A policy file on disk (the pipeline steps read one), with a digest as load_policy sets."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"cutoff": {"method": "fixed", "value": 0.15}}))
    pol = GatePolicy(cutoff={"method": "fixed", "value": 0.15})  # type: ignore[arg-type]
    pol = pol.model_copy(update={"source_file": str(path)})
    return pol.model_copy(update={"digest": policy_digest(pol)}), path


def _toy(status: GateStatus) -> GateSpec:
    def run(inputs: GateInputs, policy: GatePolicy) -> GateResult:
        h = inputs.the_holdout()
        return GateResult(
            name="toy",
            status=status,
            summary=f"toy saw {int(h.labelled.sum())} labelled rows",
            metrics={"rows": len(h)},
        )

    return GateSpec("toy", run, needs=("holdout",), section=None, order=70, module=__name__)


def test_policy_gate_names_come_from_the_registry() -> None:
    assert registry.names() == BUILTIN
    assert GatePolicy().gates_for("prod") == list(BUILTIN)
    with pytest.raises(ValueError, match="unknown gate.*vibes.*known: performance"):
        EnvironmentPolicy(gates=["performance", "vibes"])
    with pytest.raises(BadInputError, match="unknown gate 'vibes'"):
        registry.spec("vibes")
    # A second gate under a taken name is refused: two gates, one row.
    with pytest.raises(ValueError, match="already registered"):
        registry.register(GateSpec("drift", _toy(GateStatus.PASS).run, ("drift",), "drift"))


def test_a_registered_toy_gate_flows_into_every_report_without_editing_a_list(
    tmp_path: Path,
) -> None:
    pol, policy_file = _policy(tmp_path)
    h, d = holdout("weak", "weak"), drift_data()
    with registry.registered(_toy(GateStatus.FAIL)):
        assert registry.names() == (*BUILTIN, "toy")
        assert pol.gates_for("stage")[-1] == "toy"
        # gates run: the toy's row, blocking, and its FAIL decides the overall result.
        report = run_gates(
            model="m", challenger="2", champion="1", env="prod", policy=pol, holdout=h, drift=d
        )
        toy = report.gate("toy")
        assert toy.status == GateStatus.FAIL and toy.blocking and toy.metrics["rows"] == len(h)
        assert report.overall == GateStatus.FAIL
        assert "| toy | ❌ FAIL | yes | toy saw" in to_markdown(report)
        # Its policy rules: stage may not leave it out, like any other gate.
        lax = GatePolicy(environments={"stage": EnvironmentPolicy(gates=list(BUILTIN))})
        with pytest.raises(ConfigError) as exc:
            check_enforced(lax)
        assert "leaves out toy" in str(exc.value.problems)
        # The verifier requires it: a report that drops the toy's row is refused.
        dropped = report.model_copy(update={"gates": report.gates[:-1]})
        claim = Claim(kind="promotion", data_fingerprint="fp", champion="1")
        dropped.data_fingerprint = "fp"
        with pytest.raises(EvidenceRefused) as refused:
            verify_report(dropped, claim, pol, "r.json")
        assert "the policy requires" in str(refused.value.problems)
        # The pipeline: a gate task for it (the compiled ParallelFor items) and its decision.
        # The graph is built when its module is imported (kfp builds it at decoration), so
        # the module is re-imported here, with the toy registered, whatever imported it before.
        import importlib

        from kfp import compiler

        import mlgate.kubeflow.pipelines.training as training_pipeline

        compiled = tmp_path / "training.yaml"
        rebuilt = importlib.reload(training_pipeline).PIPELINE
        compiler.Compiler().compile(rebuilt, str(compiled))
        assert '"toy"' in compiled.read_text()
        ev = tmp_path / "ev"
        meta = {"model": "credit_risk", "challenger": "2", "champion": "1", "why_missing": {}}
        evidence.save(ev, holdout=h, drift=d, meta=meta)
        out = gate_steps.run_gate(
            "toy", str(policy_file), "prod", str(ev), str(tmp_path / "toy.json")
        )
        assert out.value == "FAIL"
        decision = gate_steps.decide(
            str(policy_file), "prod", "2", str(ev), [str(tmp_path / "toy.json")],
            str(tmp_path / "r.html"), str(tmp_path / "rep"),
        )  # fmt: skip
        written = json.loads((tmp_path / "rep" / "report.json").read_text())
        assert [g["name"] for g in written["gates"]] == [*BUILTIN, "toy"]
        assert decision.value == "FAIL"
    assert "toy" not in registry.names()
    importlib.reload(training_pipeline)  # the pipeline as the registry stands again


def test_missing_evidence_is_inconclusive_never_pass(tmp_path: Path) -> None:
    pol, _ = _policy(tmp_path)
    passing = [GateResult(name=n, status=GateStatus.PASS, summary="ok") for n in BUILTIN]
    full = assemble(
        model="m", challenger="2", champion="1", env="prod", policy=pol, results=passing
    )
    assert full.overall == GateStatus.PASS and full.policy_sha256 == pol.digest
    short = assemble(
        model="m", challenger="2", champion="1", env="prod", policy=pol, results=passing[:-1]
    )
    assert short.overall == GateStatus.INCONCLUSIVE
    assert "missing evidence" in short.gate("swap").summary
    # An environment where no gate applies judged nothing: INCONCLUSIVE, not PASS.
    none = pol.model_copy(
        update={"environments": {"dev": EnvironmentPolicy(enforce=False, gates=[])}}
    )
    empty = assemble(model="m", challenger="2", champion=None, env="dev", policy=none, results=[])
    assert empty.overall == empty.verdict == GateStatus.INCONCLUSIVE
    # Dev is warn-only: nothing blocks, the problems are warnings.
    failing = [r.model_copy(update={"status": GateStatus.FAIL}) for r in passing]
    dev = assemble(model="m", challenger="2", champion=None, env="dev", policy=pol, results=failing)
    assert dev.overall == GateStatus.PASS and dev.verdict == GateStatus.FAIL
    assert not any(g.blocking for g in dev.gates) and len(dev.warnings) == len(BUILTIN)


def test_cli_pipeline_and_canary_judges_use_the_one_assembler(tmp_path: Path) -> None:
    pol, policy_file = _policy(tmp_path)
    h, d = holdout("true", "weak"), drift_data(shift={"f1": 2.0})
    cli = run_gates(
        model="credit_risk", challenger="2", champion="1", env="stage", policy=pol, holdout=h,
        drift=d, data_info={"data_fingerprint": "fp"},
    )  # fmt: skip
    # The pipeline: the same inputs as evidence, one task per gate, the decision step.
    ev = tmp_path / "ev"
    meta = {"model": "credit_risk", "challenger": "2", "champion": "1", "why_missing": {},
            "info": {"data_fingerprint": "fp"}}  # fmt: skip
    evidence.save(ev, holdout=h, drift=d, meta=meta)
    paths = []
    for name in registry.names():
        paths.append(str(tmp_path / f"{name}.json"))
        gate_steps.run_gate(name, str(policy_file), "stage", str(ev), paths[-1])
    gate_steps.decide(
        str(policy_file), "stage", "2", str(ev), paths, str(tmp_path / "r.html"),
        str(tmp_path / "rep"),
    )  # fmt: skip
    piped = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert cli.overall == GateStatus.FAIL  # the challenger's own drift
    for key in ("overall", "verdict", "enforced", "policy_sha256", "data_fingerprint"):
        assert piped[key] == cli.model_dump(mode="json")[key], key
    assert [(g["name"], g["status"], g["blocking"]) for g in piped["gates"]] == [
        (g.name, g.status.value, g.blocking) for g in cli.gates
    ]
    # The verifier re-derives with the same assembler: a report that claims PASS is refused.
    forged = cli.model_copy(update={"overall": GateStatus.PASS})
    with pytest.raises(EvidenceRefused) as exc:
        verify_report(
            forged, Claim(kind="promotion", data_fingerprint="fp", champion="1"), pol, "x"
        )
    assert "overall: says PASS, its gates add up to FAIL" in str(exc.value.problems)
    # The canary judge: the canary checks, all blocking, the policy's digest recorded.
    state = CanaryState(
        model="credit_risk", env="prod", stable_version="1", canary_version="2", weight=10,
        cutoff=0.15, now=datetime.now(UTC),
    )  # fmt: skip
    canary = judge(state, None, None, None, pol).report
    assert canary.kind == "canary-analysis" and canary.policy_sha256 == pol.digest
    assert [g.name for g in canary.gates] == list(CANARY_CHECKS)
    assert all(g.blocking for g in canary.gates) and canary.overall == GateStatus.INCONCLUSIVE


def test_an_unread_served_cutoff_leaves_the_cutoff_gates_inconclusive(tmp_path: Path) -> None:
    """Git that cannot say the served cut-off: the gates that decide at it are INCONCLUSIVE
    (never judged at the policy's fallback value); the others still judge. Evidence that
    carries no resolved cut-off is treated the same in the pipeline's gate tasks."""
    pol, _ = _policy(tmp_path)
    why = {"cutoff": "served cut-off unreadable: the GitOps remote is unreachable"}
    report = run_gates(
        model="m", challenger="2", champion="1", env="prod", policy=pol,
        holdout=holdout("weak", "weak"), drift=drift_data(), why_missing=why,
    )  # fmt: skip
    for name in ("fairness", "pnl", "swap"):
        assert report.gate(name).status == GateStatus.INCONCLUSIVE
        assert report.gate(name).summary == why["cutoff"]
    assert report.gate("performance").status == GateStatus.PASS
    assert report.overall == GateStatus.INCONCLUSIVE
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("cutoff: {method: overlay}\n")
    ev = tmp_path / "ev"
    meta = {"model": "credit_risk", "challenger": "2", "champion": "1", "why_missing": {}}
    evidence.save(ev, holdout=holdout("weak", "weak"), drift=drift_data(), meta=meta)
    out = gate_steps.run_gate("pnl", str(overlay), "prod", str(ev), str(tmp_path / "pnl.json"))
    result = json.loads((tmp_path / "pnl.json").read_text())["result"]
    assert out.value == "INCONCLUSIVE"
    assert result["summary"] == "the evidence carries no resolved served cut-off"
