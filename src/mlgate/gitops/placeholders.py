"""The template's placeholders: the one definition of what `mlgate init` must replace and
`mlgate manifests validate` refuses.

The manifests and Argo CD objects this project ships are a template: the Git repository Argo
CD syncs from, the registry the cluster pulls from and the platform image's digest differ per
bank. A placeholder that looks real (a plausible host, a digest of random hex) is found by a
user only when a sync or a pull fails, so the template marks them unmistakably:

- hosts under `.invalid` (RFC 2606/6761: reserved, never resolves): repository URLs, registry
  hosts, the worked examples' images;
- the unset digest `sha256:000...0` (no image has it). In the embedded default (a loopback
  registry, where nothing pulls) it stands for "platform image not built in this workspace".

`find_placeholders` reads the YAML values (never comments) of a tree's `argocd/` and
`manifests/` and names file, field path and value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml as pyyaml
from pydantic import BaseModel

PLACEHOLDER_TLD = "invalid"
UNSET_DIGEST = "sha256:" + "0" * 64
TEMPLATE_REPO_URL = "https://git.example.invalid/your-org/mlgate.git"
TEMPLATE_REGISTRY = "registry.example.invalid"
SCANNED = ("argocd", "manifests")
_HOST = re.compile(
    r"(?<![A-Za-z0-9-])((?:[A-Za-z0-9-]+\.)+" + PLACEHOLDER_TLD + r")(?![A-Za-z0-9-])"
)
_LOADER = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


class Placeholder(BaseModel):
    file: str
    field: str
    value: str
    why: str

    @property
    def message(self) -> str:
        fix = (
            "a worked example: promote a real version or delete the overlay"
            if self.file.startswith("manifests/models/")
            else "`mlgate init --repo URL --registry HOST` writes the real value"
        )
        return f"{self.field}: placeholder {self.value!r} ({self.why}); {fix}"


def loopback_host(host: str) -> bool:
    h = host.split("/", 1)[0].rsplit(":", 1)[0].strip("[]").lower()
    return h in ("localhost", "::1") or h.startswith("127.")


def placeholder_reason(value: str, registry: str | None = None) -> str | None:
    """Why `value` is a placeholder, None when it is not. `registry`: the host an unset digest
    belongs to when it stands in a field of its own (a kustomize `images:` entry)."""
    m = _HOST.search(value)
    if m:
        return f"host {m.group(1)} is under .{PLACEHOLDER_TLD}, reserved for placeholders"
    if UNSET_DIGEST in value:
        host = registry if registry is not None else value.split("@", 1)[0]
        if not loopback_host(host):
            return "the unset digest: no image has it"
    return None


def _walk(
    node: Any, path: str, out: list[tuple[str, str, str | None]], registry: str | None
) -> None:
    if isinstance(node, dict):
        reg = str(node["newName"]) if "newName" in node and "digest" in node else registry
        for k, v in node.items():
            _walk(v, f"{path}.{k}" if path else str(k), out, reg)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, f"{path}[{i}]", out, registry)
    elif isinstance(node, str):
        out.append((path, node, registry))


def scan_text(text: str, file: str) -> list[Placeholder]:
    found: list[Placeholder] = []
    try:
        docs = list(pyyaml.load_all(text, Loader=_LOADER))
    except pyyaml.YAMLError:
        return found  # not ours to judge: kustomize reports a broken file
    for i, doc in enumerate(docs):
        values: list[tuple[str, str, str | None]] = []
        _walk(doc, "", values, None)
        for path, value, registry in values:
            why = placeholder_reason(value, registry)
            if why:
                field = f"[{i}].{path}" if len(docs) > 1 else path
                found.append(Placeholder(file=file, field=field, value=value, why=why))
    return found


def scanned(rel: str) -> bool:
    """A root-relative POSIX path the scan reads: a YAML file under argocd/ or manifests/."""
    return rel.split("/", 1)[0] in SCANNED and rel.endswith((".yaml", ".yml"))


def find_placeholders(root: Path, paths: Iterable[str] | None = None) -> list[Placeholder]:
    """Every placeholder value in the YAML files of `root`'s argocd/ and manifests/; with
    `paths` (root-relative, e.g. the inputs of the overlays a pull request changes) only in
    those of them that exist: a one-overlay check must not read the whole tree."""
    if paths is None:
        files = [
            p.relative_to(root).as_posix()
            for top in SCANNED
            if (root / top).is_dir()
            for p in (root / top).rglob("*.y*ml")
        ]
    else:
        files = [p for p in set(paths) if (root / p).is_file()]
    found: list[Placeholder] = []
    for rel in sorted(f for f in files if scanned(f)):
        found += scan_text((root / rel).read_text(encoding="utf-8"), rel)
    return found
