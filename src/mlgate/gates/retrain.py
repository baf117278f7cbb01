"""When to retrain: a monitor FAIL, or the documented schedule, never immature labels.

Performance and calibration are judged on 12-month default labels; until enough of them have
matured for the running version, those checks are INCONCLUSIVE, which is the truth about the
evidence, not a sign the model is wrong. Retraining on INCONCLUSIVE would retrain on almost
every run. So a retrain is asked for only when
- the monitor FAILS (a check showed a problem: drift at watch level, AUC below expected,
  early delinquency above expected, a fairness breach), or
- the running version is older than `monitor.max_model_age_days` (the scheduled
  redevelopment many model-risk policies require; unset: no age limit).
The new version still has to pass every promotion gate before anything is proposed.
"""

from __future__ import annotations

from datetime import datetime

from mlgate.gates.monitor import MonitorReport, RetrainDecision
from mlgate.gates.policy import GatePolicy
from mlgate.gates.result import GateStatus


def retrain_decision(
    report: MonitorReport, policy: GatePolicy, trained: datetime | None, now: datetime
) -> RetrainDecision:
    """Retrain on a FAIL or past the maximum model age; INCONCLUSIVE alone never retrains."""
    if report.overall == GateStatus.FAIL:
        return RetrainDecision(retrain=True, reason="monitor FAIL: " + "; ".join(report.alerts))
    max_age = policy.monitor.max_model_age_days
    if max_age is not None and trained is not None:
        age = (now - trained).total_seconds() / 86400
        if age > max_age:
            return RetrainDecision(
                retrain=True,
                reason=f"version {report.version} is {age:.0f} days old "
                f"(monitor.max_model_age_days {max_age})",
            )
    if report.overall == GateStatus.INCONCLUSIVE:
        short = [f"{c.name}: {c.summary}" for c in report.checks if c.status != GateStatus.PASS]
        return RetrainDecision(
            retrain=False,
            reason="INCONCLUSIVE is not a reason to retrain (e.g. labels not matured yet): "
            + "; ".join(short),
        )
    return RetrainDecision(retrain=False, reason="every check passed")
