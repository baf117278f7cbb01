"""One model in one environment: the overlay directory and its small `release.yaml`.

`manifests/models/<model>/<env>/` holds a kustomization (base bundle + components) and
`release.yaml`, a local-config ConfigMap saying what runs there: stable version + image digest,
an optional canary version + image + weight, an optional shadow version + image (mirrored
every request, answering nobody), and the decision cut-off. Kustomize replacements
copy those values into the SeldonDeployment, so every promotion is a few-line diff of this file
(plus one line in `components` when a canary starts or ends). Edits are ruamel.yaml round-trips:
comments and order survive.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import yaml as pyyaml
from pydantic import BaseModel, ValidationInfo, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from mlgate.errors import BadInputError
from mlgate.records.builds import check_image as check_image
from mlgate.records.values import canonical_version

_LOADER = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)

ENVS: tuple[str, ...] = ("dev", "stage", "prod")
RELEASE_FILE = "release.yaml"
KUSTOMIZATION_FILE = "kustomization.yaml"
CANARY_COMPONENT = "../../../components/canary"
SHADOW_COMPONENT = "../../../components/shadow"
RELEASE_COMPONENT = "../../../components/release"
DEFAULT_CUTOFF = "0.15"  # the gate policy's default cut-off (config/policies)
MODEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


def model_dir(model: str) -> str:
    """Repository-relative folder of a model's overlays."""
    return f"manifests/models/{model}"


def overlay_dir(model: str, env: str) -> str:
    return f"{model_dir(model)}/{env}"


def namespace(model: str, env: str) -> str:
    """One namespace per model x environment (DNS-1123: underscores become dashes)."""
    return f"{model.replace('_', '-')}-{env}"


def check_model(model: str) -> str:
    if not MODEL_RE.match(model):
        raise BadInputError(f"--model {model!r}: use lower-case letters, digits and underscores")
    return model


def check_env(env: str) -> str:
    if env not in ENVS:
        raise BadInputError(f"environment {env!r}: must be one of {', '.join(ENVS)}")
    return env


class Release(BaseModel):
    """What runs for one model in one environment (the content of release.yaml)."""

    model: str
    env: str
    stable_version: str
    stable_image: str
    cutoff: str = DEFAULT_CUTOFF
    canary_version: str | None = None
    canary_image: str | None = None
    canary_weight: int | None = None
    # The shadow (`mlgate shadow start`): mirrored every request, its answers reach nobody.
    shadow_version: str | None = None
    shadow_image: str | None = None

    @field_validator("stable_version", "canary_version", "shadow_version")
    @classmethod
    def _version(cls, v: str | None, info: ValidationInfo) -> str | None:
        """One spelling per version (`002` is 2), so every comparison sees the same number."""
        try:
            return None if v is None else canonical_version(v, info.field_name or "version")
        except BadInputError as exc:
            raise ValueError(exc.message) from None

    @field_validator("canary_weight")
    @classmethod
    def _weight(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= 99:
            raise ValueError("canary weight must be 1..99 (remove the canary instead of 0)")
        return v

    @model_validator(mode="after")
    def _one_role(self) -> Release:
        """A version runs in one role: a shadow of the canary (or of stable) would compare it
        with itself. `canary start` of the shadow's version replaces the shadow."""
        if self.shadow_version is not None and self.shadow_version in (
            self.stable_version,
            self.canary_version,
        ):
            raise ValueError(
                f"version {self.shadow_version} cannot run as shadow and as stable or canary"
            )
        return self

    @property
    def has_canary(self) -> bool:
        return self.canary_version is not None

    @property
    def has_shadow(self) -> bool:
        return self.shadow_version is not None

    @property
    def stable_traffic(self) -> int:
        return 100 - (self.canary_weight or 0) if self.has_canary else 100

    def data(self) -> dict[str, str]:
        """release.yaml's `data:` (ConfigMap values are strings)."""
        out = {
            "model": self.model,
            "env": self.env,
            "stable_version": self.stable_version,
            "stable_image": self.stable_image,
            "stable_traffic": str(self.stable_traffic),
        }
        if self.has_canary:
            assert self.canary_image is not None and self.canary_weight is not None
            out["canary_version"] = self.canary_version or ""
            out["canary_image"] = self.canary_image
            out["canary_traffic"] = str(self.canary_weight)
        if self.has_shadow:
            assert self.shadow_image is not None
            out["shadow_version"] = self.shadow_version or ""
            out["shadow_image"] = self.shadow_image
        out["cutoff"] = self.cutoff
        return out


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096  # never fold a long image reference onto a second line
    return y


_DATA_LINE = re.compile(
    r"""^  ([A-Za-z_][A-Za-z0-9_]*): (?:"([^"\\]*)"|'([^']*)'|([^\s"'#{}\[\]&*!|>%@`][^#]*?))"""
    r"""\s*(?:#.*)?$"""
)


def _fast_data(text: str) -> dict[str, str] | None:
    """The `data:` block of a release.yaml in the flat form the tools write, else None.

    Status reads thousands of these; a YAML parser costs ~1.5 ms each, this ~0.05 ms. Anything
    outside the flat `  key: scalar` form (flow style, block scalars, anchors, escapes) returns
    None and the caller parses with PyYAML instead.
    """
    out: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        if not inside:
            if line.rstrip() == "data:":
                inside = True
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith("  "):
            break
        m = _DATA_LINE.match(line)
        if m is None:
            return None
        value = next(g for g in m.groups()[1:] if g is not None)
        out[m.group(1)] = value
    return out if inside else None


def parse_release(text: str, source: str) -> Release:
    """release.yaml text -> Release; errors name the file and the field."""
    data: object = _fast_data(text)
    if data is None:
        try:
            doc = pyyaml.load(text, Loader=_LOADER) or {}
        except pyyaml.YAMLError as exc:
            raise BadInputError(f"{source}: not valid YAML: {exc}") from exc
        data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: missing `data:` mapping")
    missing = [k for k in ("model", "env", "stable_version", "stable_image") if not data.get(k)]
    if missing:
        raise BadInputError(f"{source}: data.{missing[0]} is missing")
    weight = data.get("canary_traffic")
    try:
        return Release(
            model=str(data["model"]),
            env=str(data["env"]),
            stable_version=str(data["stable_version"]),
            stable_image=str(data["stable_image"]),
            cutoff=str(data.get("cutoff", DEFAULT_CUTOFF)),
            canary_version=str(data["canary_version"]) if data.get("canary_version") else None,
            canary_image=str(data["canary_image"]) if data.get("canary_image") else None,
            canary_weight=int(weight) if weight not in (None, "") else None,
            shadow_version=str(data["shadow_version"]) if data.get("shadow_version") else None,
            shadow_image=str(data["shadow_image"]) if data.get("shadow_image") else None,
        )
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"{source}: {exc}") from exc


def read_release(root: Path, model: str, env: str) -> Release | None:
    """The release in a checkout at `root`, or None when the env has no overlay yet."""
    path = root / overlay_dir(model, env) / RELEASE_FILE
    if not path.is_file():
        return None
    return parse_release(path.read_text(encoding="utf-8"), str(path))


_RELEASE_TEMPLATE = """\
# What runs for {model} in {env}. Change it only through git (`mlgate promote`, `mlgate
# canary`, `mlgate rollback` open a PR that edits these lines); Argo CD syncs the merge.
apiVersion: v1
kind: ConfigMap
metadata:
  name: release
  annotations:
    config.kubernetes.io/local-config: "true"
data:
  model: {model}
  env: {env}
  stable_version: ""
  stable_image: ""
  stable_traffic: "100"
  cutoff: "{cutoff}"  # decision cut-off on PD: credit policy, not part of the image
"""

_KUSTOMIZATION_TEMPLATE = """\
# {model} in {env}. What runs here is release.yaml; the tools edit only that file and the
# `components` list (canary on/off).
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
resources:
  - ../../../base
  - release.yaml
components:
  - {release_component}
"""


def write_release(root: Path, release: Release) -> list[Path]:
    """Write `release` into the checkout at `root` (creating the overlay on first use).

    Round-trip edit: comments stay, keys keep their order, only changed values move. The
    kustomization's `components` gains or loses the canary component to match.
    """
    d = root / overlay_dir(release.model, release.env)
    d.mkdir(parents=True, exist_ok=True)
    rel_path, kus_path = d / RELEASE_FILE, d / KUSTOMIZATION_FILE
    if not rel_path.exists():
        rel_path.write_text(
            _RELEASE_TEMPLATE.format(model=release.model, env=release.env, cutoff=release.cutoff),
            encoding="utf-8",
        )
    if not kus_path.exists():
        kus_path.write_text(
            _KUSTOMIZATION_TEMPLATE.format(
                model=release.model,
                env=release.env,
                namespace=namespace(release.model, release.env),
                release_component=RELEASE_COMPONENT,
            ),
            encoding="utf-8",
        )
    y = _yaml()
    doc: Any = y.load(rel_path.read_text(encoding="utf-8"))
    data = doc["data"]
    wanted = release.data()
    for key in [k for k in list(data.keys()) if k not in wanted]:
        del data[key]
    order = list(wanted.keys())
    for i, (key, value) in enumerate(wanted.items()):
        scalar = DoubleQuotedScalarString(value) if _quote(key) else value
        if key in data:
            if str(data[key]) != value:
                data[key] = scalar
            continue
        # a new key (a canary starting) goes right after the previous key in canonical order
        before = [k for k in order[:i] if k in data]
        pos = list(data.keys()).index(before[-1]) + 1 if before else 0
        data.insert(pos, key, scalar)
    buf = io.StringIO()
    y.dump(doc, buf)
    rel_path.write_text(buf.getvalue(), encoding="utf-8")

    kus: Any = y.load(kus_path.read_text(encoding="utf-8"))
    comps = kus.get("components")
    if comps is None:
        from ruamel.yaml.comments import CommentedSeq

        comps = CommentedSeq([RELEASE_COMPONENT])
        kus["components"] = comps
    if release.has_canary and CANARY_COMPONENT not in comps:
        comps.append(CANARY_COMPONENT)
    if not release.has_canary and CANARY_COMPONENT in comps:
        comps.remove(CANARY_COMPONENT)
    if release.has_shadow and SHADOW_COMPONENT not in comps:
        comps.append(SHADOW_COMPONENT)
    if not release.has_shadow and SHADOW_COMPONENT in comps:
        comps.remove(SHADOW_COMPONENT)
    buf = io.StringIO()
    y.dump(kus, buf)
    kus_path.write_text(buf.getvalue(), encoding="utf-8")
    return [rel_path, kus_path]


def _quote(key: str) -> bool:
    return key in {
        "stable_version",
        "canary_version",
        "shadow_version",
        "stable_traffic",
        "canary_traffic",
        "cutoff",
    }
