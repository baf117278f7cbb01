"""The gate registry: every promotion gate registered once, everything else derived from it.

A gate is a module of `mlgate.gates` that registers a runner with `@gate(...)`: its name, the
inputs it needs, the policy section that holds its thresholds and `blocking` flag, and the
sample floors of the windows it reads. From this one list come the gate names a policy may
list (`GatePolicy.gates_for`, `check_enforced`), the gates `gates run` and the pipeline's gate
tasks run (`run_gate`, a KFP ParallelFor over `names()`), the blocking rule the report is
assembled with (`mlgate.gates.verdict`) and so every report row. Adding a gate is one new
module (plus its policy section): no list elsewhere names the gates.

Gate modules are the package's modules that register a gate (`_discover` imports those), so a
gate module must import without side effects beyond registering itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlgate.errors import BadInputError
from mlgate.gates.floors import sample_floors, with_floors
from mlgate.gates.inputs import DriftData, HoldoutScores
from mlgate.gates.result import GateResult, GateStatus

if TYPE_CHECKING:
    from mlgate.gates.decisions import Cutoffs
    from mlgate.gates.policy import GatePolicy

# What a gate can ask for. "cutoff": the decisions at the cut-off, chosen once per run on the
# holdout (`decisions.choose_cutoffs`) with the served cut-off already resolved.
Need = Literal["holdout", "drift", "recent", "cutoff"]
# Windows with a sample floor (policy `samples`): labelled holdout rows, defaults among them,
# the drift reference and current windows, the recent applications.
Floor = Literal["labelled", "defaults", "drift", "recent"]


@dataclass
class GateInputs:
    """Everything a gate may read, gathered once for all gates of a run; `why_missing` says
    why an input is None (keyed by `Need`), so the gate's INCONCLUSIVE names the cause."""

    holdout: HoldoutScores | None = None
    drift: DriftData | None = None
    recent: HoldoutScores | None = None
    cutoffs: Cutoffs | None = None
    why_missing: dict[str, str] = field(default_factory=dict)

    def missing(self, needs: tuple[Need, ...]) -> str | None:
        """The first needed input that is absent, as a reason; None when all are there."""
        for need in needs:
            if getattr(self, "cutoffs" if need == "cutoff" else need) is None:
                key = "holdout" if need == "cutoff" and self.holdout is None else need
                return self.why_missing.get(key) or f"no {_WHAT[need]}"
        return None

    # Typed access for gate runners: the registry runs a gate only when its needs are there.
    def the_holdout(self) -> HoldoutScores:
        assert self.holdout is not None
        return self.holdout

    def the_drift(self) -> DriftData:
        assert self.drift is not None
        return self.drift

    def the_cutoffs(self) -> Cutoffs:
        assert self.cutoffs is not None
        return self.cutoffs


_WHAT = {
    "holdout": "holdout data",
    "drift": "reference/current window",
    "recent": "recent applications",
    "cutoff": "holdout rows to decide on at the cut-off",
}

Runner = Callable[[GateInputs, "GatePolicy"], GateResult]


@dataclass(frozen=True)
class GateSpec:
    """One registered gate. `section`: the GatePolicy field holding its settings and its
    `blocking` flag (None: it always blocks where the environment enforces)."""

    name: str
    run: Runner
    needs: tuple[Need, ...]
    section: str | None
    floors: tuple[Floor, ...] = ()
    order: int = 100
    module: str = ""

    def blocks(self, policy: GatePolicy) -> bool:
        """The gate's own blocking flag in the (environment's) policy."""
        if self.section is None:
            return True
        return bool(getattr(policy, self.section).blocking)


_GATES: dict[str, GateSpec] = {}
_discovered = False


def gate(
    name: str,
    *,
    needs: tuple[Need, ...],
    section: str | None = None,
    floors: tuple[Floor, ...] = (),
    order: int = 100,
) -> Callable[[Runner], Runner]:
    """Register the decorated runner `(GateInputs, GatePolicy) -> GateResult` as gate `name`."""

    def deco(fn: Runner) -> Runner:
        register(GateSpec(name, fn, needs, section, floors, order, fn.__module__))
        return fn

    return deco


def register(spec: GateSpec) -> GateSpec:
    """Add a gate; a second gate under a taken name is refused (two gates, one row)."""
    known = _GATES.get(spec.name)
    if known is not None and (known.module, known.run.__name__) != (
        spec.module,
        spec.run.__name__,
    ):
        raise ValueError(f"gate {spec.name!r} is already registered by {known.module}")
    _GATES[spec.name] = spec
    return spec


@contextmanager
def registered(spec: GateSpec) -> Iterator[GateSpec]:
    """A gate registered for the duration of the block (tests, plug-ins tried out)."""
    register(spec)
    try:
        yield spec
    finally:
        _GATES.pop(spec.name, None)


def _discover() -> None:
    """Import the gate modules of mlgate.gates once: each registers itself on import. A gate
    module is one whose source registers a gate (`@gate(`); the package's other modules (the
    I/O shell `collect`/`run`/`monitor_run`, reports) are not imported for it, so the pure
    gates layer never pulls in MLflow, Feast or git."""
    global _discovered
    if _discovered:
        return
    import mlgate.gates as package

    for info in pkgutil.iter_modules(package.__path__):
        found = importlib.util.find_spec(f"{package.__name__}.{info.name}")
        origin = found.origin if found is not None else None
        if info.name == "registry" or origin is None or not origin.endswith(".py"):
            continue
        if "\n@gate(" in Path(origin).read_text(encoding="utf-8"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    _discovered = True


def gates() -> list[GateSpec]:
    """Every registered gate, in report order."""
    _discover()
    return sorted(_GATES.values(), key=lambda s: (s.order, s.name))


def names() -> tuple[str, ...]:
    return tuple(s.name for s in gates())


def spec(name: str) -> GateSpec:
    """The registered gate `name`; an unknown name is bad input naming the known ones."""
    _discover()
    if name not in _GATES:
        raise BadInputError(f"unknown gate {name!r} (known: {', '.join(names())})")
    return _GATES[name]


def crashed(name: str, exc: BaseException, where: str = "gate crashed") -> GateResult:
    """A crash is INCONCLUSIVE with the error as its reason, never a pass."""
    text = f"{where}: {type(exc).__name__}: {exc}"
    return GateResult(
        name=name,
        status=GateStatus.INCONCLUSIVE,
        summary=text,
        reasons=[text],
        details={"traceback": traceback.format_exc(limit=5)},
    )


def guarded(name: str, fn: Callable[[], Any]) -> GateResult:
    """Run one check; an exception or a non-GateResult answer becomes INCONCLUSIVE."""
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - fail closed on anything
        return crashed(name, exc)
    if not isinstance(result, GateResult):
        return GateResult.inconclusive(name, f"gate returned {type(result).__name__}")
    return result


def run_gate(name: str, inputs: GateInputs, policy: GatePolicy) -> GateResult:
    """One registered gate on the run's inputs: missing inputs -> INCONCLUSIVE naming why,
    a crash -> INCONCLUSIVE, then the sample floors of the windows it reads."""
    s = spec(name)
    why = inputs.missing(s.needs)
    if why is not None:
        result = GateResult.inconclusive(name, why)
    else:
        result = guarded(name, lambda: s.run(inputs, policy))
        if result.name != name:
            result = result.model_copy(update={"name": name})
    return with_floors(result, sample_floors(s.floors, inputs, policy))
