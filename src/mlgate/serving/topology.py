"""What an environment's overlay declares to serve: its predictors, as the cluster would run them.

`mlgate serve --model M --env ENV` runs what the RENDERED overlay says (the SeldonDeployment
kustomize produces from the base bundle, its components and release.yaml), not what release.yaml
alone says: a component that adds a predictor (canary, shadow) or a replacement that fails to
copy a value shows up here exactly as it would reach Seldon. release.yaml is read beside it and
cross-checked, so a rendered SeldonDeployment that disagrees with the file the tools edit is bad
input, never served.

Pure: rendered documents and release.yaml's text in, a `Topology` out; errors name the file and
the field. The webhook-like rules (unique names, one shadow at most, traffic sums to 100, no
traffic 0) are `gitops.validate.check_seldon`'s, the same ones `manifests validate` applies.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from mlgate.errors import BadInputError
from mlgate.gitops.overlay import Release
from mlgate.gitops.validate import check_seldon
from mlgate.serving.logsink import dns_label
from mlgate.serving.runtime import CUTOFF_ENV

SDEP_KIND = "SeldonDeployment"
MODEL_CONTAINER = "model"  # the custom container's name equals graph.name (Seldon's webhook)
Role = Literal["stable", "canary", "shadow"]


class Predictor(BaseModel):
    """One predictor of the SeldonDeployment: which version runs from which image, at what
    share of the traffic (0 for a shadow: it gets a mirrored copy of every request)."""

    name: str  # the predictor's name: ce-endpoint of its logged events
    role: Role
    version: str
    image: str
    weight: int
    shadow: bool
    cutoff: float
    env: dict[str, str]  # the model container's plain env values (valueFrom left out)


class Topology(BaseModel):
    model: str  # the V2 model name (MLSERVER_MODEL_NAME): /v2/models/<model>/infer
    env: str
    namespace: str  # ce-namespace of the logged events
    deployment: str  # the SeldonDeployment's name: ce-inferenceservicename
    cutoff: float
    predictors: list[Predictor]

    @property
    def routed(self) -> list[Predictor]:
        """The predictors that answer callers, by weight."""
        return [p for p in self.predictors if not p.shadow]

    @property
    def shadow(self) -> Predictor | None:
        return next((p for p in self.predictors if p.shadow), None)

    def predictor(self, role: Role) -> Predictor | None:
        return next((p for p in self.predictors if p.role == role), None)


def _container(pred: dict[str, Any], where: str) -> dict[str, Any]:
    for i, cs in enumerate(pred.get("componentSpecs") or []):
        for c in (cs.get("spec") or {}).get("containers") or []:
            if c.get("name") == MODEL_CONTAINER:
                return dict(c)
        if i == 0:
            break
    raise BadInputError(
        f"{where}.componentSpecs[0].spec.containers: no container named {MODEL_CONTAINER!r}"
    )


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {
        str(e["name"]): str(e["value"])
        for e in container.get("env") or []
        if isinstance(e, dict) and "name" in e and "value" in e
    }


def _role(pred: dict[str, Any], where: str) -> Role:
    if pred.get("shadow"):
        return "shadow"
    name = pred.get("name")
    if name == "stable" or name == "canary":
        return name
    raise BadInputError(
        f"{where}.name {name!r}: a routed predictor is `stable` or `canary` "
        "(any other must be `shadow: true`)"
    )


def _float(value: str, where: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise BadInputError(f"{where} {value[:40]!r}: not a number") from None
    if not 0.0 < out < 1.0:
        raise BadInputError(f"{where} {value[:40]!r}: a cut-off on PD lies between 0 and 1")
    return out


def topology(docs: list[dict[str, Any]], release: Release, source: str) -> Topology:
    """The rendered overlay `source` (its documents) and its release.yaml -> Topology."""
    sdeps = [d for d in docs if d.get("kind") == SDEP_KIND]
    if len(sdeps) != 1:
        raise BadInputError(f"{source}: renders {len(sdeps)} SeldonDeployments, expected one")
    sdep = sdeps[0]
    meta = sdep.get("metadata") or {}
    name = str(meta.get("name") or "")
    base = f"{source}: SeldonDeployment {name or '?'}"
    problems = check_seldon(sdep)
    if problems:
        raise BadInputError(f"{base}: {'; '.join(problems)}")
    namespace = dns_label(str(meta.get("namespace") or ""), f"{base} metadata.namespace")
    deployment = dns_label(name, f"{source}: SeldonDeployment metadata.name")
    preds = (sdep.get("spec") or {}).get("predictors") or []
    if not preds:
        raise BadInputError(f"{base}: spec.predictors is empty")
    out: list[Predictor] = []
    models: set[str] = set()
    for i, p in enumerate(preds):
        where = f"{base} spec.predictors[{i}]"
        role = _role(p, where)
        dns_label(str(p.get("name")), f"{where}.name")
        container = _container(p, where)
        env = _env(container)
        image = str(container.get("image") or "")
        if not image:
            raise BadInputError(f"{where}: the model container has no image")
        version = str((p.get("labels") or {}).get("version") or "")
        if env.get("MLSERVER_MODEL_VERSION", version) != version:
            raise BadInputError(
                f"{where}: labels.version {version!r} but MLSERVER_MODEL_VERSION "
                f"{env['MLSERVER_MODEL_VERSION']!r}"
            )
        if CUTOFF_ENV not in env:
            raise BadInputError(f"{where}: the model container has no {CUTOFF_ENV}")
        models.add(env.get("MLSERVER_MODEL_NAME") or release.model)
        raw_weight = p.get("traffic")
        try:
            weight = 0 if role == "shadow" else int(raw_weight or 0)
        except (TypeError, ValueError):
            raise BadInputError(f"{where}.traffic {raw_weight!r}: not a whole number") from None
        if role != "shadow" and not raw_weight and sum(not q.get("shadow") for q in preds) == 1:
            weight = 100  # one routed predictor gets everything (Seldon's default)
        if not 0 <= weight <= 100:
            raise BadInputError(f"{where}.traffic {weight}: not between 0 and 100")
        out.append(
            Predictor(
                name=str(p["name"]),
                role=role,
                version=version,
                image=image,
                weight=weight,
                shadow=role == "shadow",
                cutoff=_float(env[CUTOFF_ENV], f"{where} env {CUTOFF_ENV}"),
                env=env,
            )
        )
    _cross_check(out, release, base, source)  # first: it says which file to fix
    total = sum(p.weight for p in out if not p.shadow)
    if total != 100:
        raise BadInputError(f"{base}: the routed predictors' traffic sums to {total}, not 100")
    if len(models) != 1:
        raise BadInputError(f"{base}: predictors serve different models {sorted(models)}")
    model = models.pop()
    return Topology(
        model=model,
        env=release.env,
        namespace=namespace,
        deployment=deployment,
        cutoff=_float(release.cutoff, f"{source}: release.yaml data.cutoff"),
        predictors=out,
    )


def _cross_check(preds: list[Predictor], release: Release, base: str, source: str) -> None:
    """The rendered predictors must be what release.yaml says (the file the tools edit)."""
    rel = f"{source}: release.yaml"
    by_role = {p.role: p for p in preds}
    stable = by_role.get("stable")
    if stable is None:
        raise BadInputError(f"{base}: no predictor `stable`")
    facts: list[tuple[str, str, str]] = [
        ("stable_version", release.stable_version, stable.version),
        ("stable_image", release.stable_image, stable.image),
        ("stable_traffic", str(release.stable_traffic), str(stable.weight)),
    ]
    canary = by_role.get("canary")
    if release.has_canary != (canary is not None):
        raise BadInputError(
            f"{rel} data.canary_version {'is set' if release.has_canary else 'is unset'} but "
            f"the rendered SeldonDeployment {'lacks' if canary is None else 'has'} predictor "
            "`canary` (is the canary component in the kustomization's components?)"
        )
    if canary is not None:
        facts += [
            ("canary_version", str(release.canary_version), canary.version),
            ("canary_image", str(release.canary_image), canary.image),
            ("canary_traffic", str(release.canary_weight), str(canary.weight)),
        ]
    shadow = by_role.get("shadow")
    has_shadow = release.has_shadow
    if has_shadow != (shadow is not None):
        raise BadInputError(
            f"{rel} data.shadow_version {'is set' if has_shadow else 'is unset'} but the "
            f"rendered SeldonDeployment {'lacks' if shadow is None else 'has'} a shadow "
            "predictor (is the shadow component in the kustomization's components?)"
        )
    if shadow is not None:
        facts += [
            ("shadow_version", str(release.shadow_version), shadow.version),
            ("shadow_image", str(release.shadow_image), shadow.image),
        ]
    for field, declared, rendered in facts:
        if declared != rendered:
            raise BadInputError(
                f"{rel} data.{field} is {declared!r} but the rendered SeldonDeployment has "
                f"{rendered!r}"
            )
    cutoff = _float(release.cutoff, f"{rel} data.cutoff")
    for p in preds:
        if abs(p.cutoff - cutoff) > 1e-12:
            raise BadInputError(
                f"{rel} data.cutoff is {release.cutoff!r} but predictor {p.name} has "
                f"{CUTOFF_ENV}={p.cutoff}"
            )
