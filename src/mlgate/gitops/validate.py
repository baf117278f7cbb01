"""`mlgate manifests validate`: render every overlay and check it the way a cluster would.

For each kustomization (argocd/, manifests/platform/, manifests/models/*/*):
1. `kubectl kustomize` renders it (a kustomize error is a problem of that overlay);
2. strict schema validation: core kinds with kubernetes-validate (strict: unknown fields are
   errors), custom resources against the upstream CRD schemas in `settings.crd_schema_dir()`
   (vendored in mlgate/gitops/crds with their sources; the `crd_schemas` setting overrides)
   (structural-schema rules: unknown fields are errors unless the schema preserves them), and a
   kind known to neither is an error;
3. the SeldonDeployment rules only the operator's webhook enforces (traffic sums to 100,
   unique predictor names, no weight-0 canary, container name = graph name, ...);
4. mlgate's pod-security rules on every pod template, including the containers inside
   SeldonDeployment componentSpecs, which checkov does not look into;
5. `promtool check rules` on every distinct PrometheusRule's groups;
6. NetworkPolicy reachability (`reachability`): every endpoint a workload names in its env
   and args is admitted by the policies on both sides, and DNS;
7. no template placeholder left (`placeholders`: `.invalid` hosts, the unset digest) unless
   the tree is validated as the template (`template=True`: listed, not failed);
8. optionally checkov (own venv `.venv-tools/checkov`, offline) over the rendered output:
   zero failed checks, suppressions only in the manifests with a written reason.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml as pyyaml
from pydantic import BaseModel, Field

from mlgate.config import REPO_ROOT
from mlgate.errors import BadInputError
from mlgate.gitops.changed import overlay_inputs
from mlgate.gitops.kubectl import kubectl_path, kustomize
from mlgate.gitops.placeholders import Placeholder, find_placeholders
from mlgate.gitops.reachability import check_reachability

KUBERNETES_VERSION = "1.32"
CHECKOV_VERSION = "3.3.30"
PREPACKAGED = {
    "SKLEARN_SERVER",
    "XGBOOST_SERVER",
    "TENSORFLOW_SERVER",
    "MLFLOW_SERVER",
    "TRITON_SERVER",
    "HUGGINGFACE_SERVER",
    "TEMPO_SERVER",
}
_LOADER = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)


class Problem(BaseModel):
    target: str
    resource: str | None = None
    check: str
    message: str


class TargetResult(BaseModel):
    path: str
    resources: int = 0
    problems: list[Problem] = Field(default_factory=list)


class ValidationReport(BaseModel):
    root: str
    targets: list[TargetResult] = Field(default_factory=list)
    promtool: str = "not run"
    checkov: str = "not run"
    template: bool = False
    placeholders: list[Placeholder] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and all(not t.problems for t in self.targets)

    def all_problems(self) -> list[Problem]:
        return [p for t in self.targets for p in t.problems] + self.problems


def find_targets(root: Path) -> list[Path]:
    """Every kustomization mlgate owns under `root`."""
    out = []
    for cand in [root / "argocd", root / "manifests" / "platform"]:
        if (cand / "kustomization.yaml").is_file():
            out.append(cand)
    out += sorted(p.parent for p in (root / "manifests" / "models").glob("*/*/kustomization.yaml"))
    return out


def render(target: Path) -> list[dict[str, Any]]:
    return [d for d in pyyaml.load_all(kustomize(target), Loader=_LOADER) if d]


def _name(doc: dict[str, Any]) -> str:
    md = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{md.get('name')}"


# --- schemas ---------------------------------------------------------------------------------


def _structural(node: Any) -> Any:
    """A CRD openAPIV3Schema as JSON Schema with the API server's structural rules."""
    if isinstance(node, list):
        return [_structural(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


# The kind a CRD file defines, read from its text so that a check which never meets the kind
# (a one-overlay PR has no Argo CD objects) does not parse megabytes of schema for it.
_CRD_KIND = re.compile(r"^  names:\n(?:    .*\n)*?    kind: *['\"]?([A-Za-z0-9]+)", re.MULTILINE)
_CRD_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def _declared_kinds(path: str) -> frozenset[str] | None:
    """The kinds the CRDs of file `path` define, None when the text does not say plainly
    (then the file is always loaded)."""
    text = Path(path).read_text(encoding="utf-8")
    kinds = frozenset(_CRD_KIND.findall(text))
    return kinds or None


@lru_cache(maxsize=64)
def _file_validators(path: str) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> compiled validator for every CRD version in file `path`, parsed
    and compiled once per process."""
    from jsonschema import Draft7Validator

    out: dict[tuple[str, str], Any] = {}
    with Path(path).open("r", encoding="utf-8") as fh:
        for doc in pyyaml.load_all(fh, Loader=_LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for v in spec.get("versions") or []:
                schema = (v.get("schema") or {}).get("openAPIV3Schema")
                if not schema:
                    continue
                schema = _structural(schema)
                props = schema.setdefault("properties", {})
                props["metadata"] = {"type": "object"}  # validated by the API server
                props.setdefault("apiVersion", {"type": "string"})
                props.setdefault("kind", {"type": "string"})
                key = (f"{spec['group']}/{v['name']}", spec["names"]["kind"])
                out[key] = Draft7Validator(schema)
    return out


def crd_validators(crd_dir: str, kinds: frozenset[str] | None = None) -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> jsonschema validator, from the CRD files in `crd_dir` that define
    one of `kinds` (every file when None)."""
    out: dict[tuple[str, str], Any] = {}
    with _CRD_LOCK:  # validation threads share one parse per file
        for path in sorted(Path(crd_dir).glob("*.yaml")):
            declared = _declared_kinds(str(path))
            if kinds is not None and declared is not None and not declared & kinds:
                continue
            out.update(_file_validators(str(path)))
    return out


def check_schema(doc: dict[str, Any], crds: dict[tuple[str, str], Any]) -> list[str]:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key in crds:
        errs = sorted(crds[key].iter_errors(doc), key=lambda e: list(e.absolute_path))
        return [
            f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errs
        ]
    try:
        kubernetes_validate.validate(copy.deepcopy(doc), KUBERNETES_VERSION, strict=True)
    except SchemaNotFoundError:
        return [f"unknown kind {key[1]} ({key[0]}): no Kubernetes schema and no CRD schema"]
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.caught.absolute_path) if hasattr(exc, "caught") else ""
        return [f"{path or '(root)'}: {getattr(exc, 'message', exc)}"]
    return []


# --- Seldon webhook rules --------------------------------------------------------------------


def _graph_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("children") or []:
        out += _graph_nodes(child)
    return out


def check_seldon(doc: dict[str, Any]) -> list[str]:
    """What the Seldon operator's validating webhook would refuse (schemas do not say)."""
    problems: list[str] = []
    preds = (doc.get("spec") or {}).get("predictors") or []
    names = [p.get("name") for p in preds]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"predictor names not unique: {', '.join(map(str, dupes))}")
    main = [p for p in preds if not p.get("shadow")]
    shadows = [p for p in preds if p.get("shadow")]
    if len(shadows) > 1:
        problems.append("more than one shadow predictor")
    if shadows and not main:
        problems.append("a shadow predictor cannot be the only predictor")
    if len(main) > 1:
        total = sum(int(p.get("traffic") or 0) for p in main)
        if total != 100:
            problems.append(f"traffic of the predictors sums to {total}, not 100")
    for p in main:
        if len(main) > 1 and int(p.get("traffic") or 0) == 0:
            problems.append(
                f"predictor {p.get('name')}: traffic 0 (Ambassador reads 0 as unset and sends "
                "50%): remove the predictor instead"
            )
    for p in preds:
        pname = p.get("name")
        if not (p.get("labels") or {}).get("version"):
            problems.append(f"predictor {pname}: labels.version (the model version) is missing")
        nodes = _graph_nodes(p.get("graph") or {})
        graph_names = {n.get("name") for n in nodes}
        for n in nodes:
            if n.get("implementation") in PREPACKAGED and not n.get("modelUri"):
                problems.append(f"predictor {pname}: {n.get('implementation')} needs modelUri")
        containers = [
            c
            for cs in p.get("componentSpecs") or []
            for c in ((cs.get("spec") or {}).get("containers") or [])
        ]
        cnames = {c.get("name") for c in containers}
        for c in containers:
            if c.get("name") not in graph_names:
                problems.append(
                    f"predictor {pname}: container {c.get('name')!r} matches no graph node name"
                )
        for n in nodes:
            if not n.get("implementation") and n.get("name") not in cnames:
                problems.append(f"predictor {pname}: graph node {n.get('name')!r} has no container")
    return problems


# --- pod security ----------------------------------------------------------------------------


def pod_specs(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "SeldonDeployment":
        return [
            (f"predictors[{p.get('name')}].componentSpecs[{i}]", cs.get("spec") or {})
            for p in spec.get("predictors") or []
            for i, cs in enumerate(p.get("componentSpecs") or [])
        ]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return [("template", (spec.get("template") or {}).get("spec") or {})]
    if kind == "CronJob":
        tmpl = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return [("jobTemplate", tmpl.get("spec") or {})]
    if kind == "Pod":
        return [("pod", spec)]
    return []


def check_pod_security(doc: dict[str, Any]) -> list[str]:
    """Restricted pod security, resources, and images pinned by digest."""
    problems = []
    for where, pod in pod_specs(doc):
        psc = pod.get("securityContext") or {}
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            at = f"{where}.containers[{c.get('name')}]"
            sc = c.get("securityContext") or {}
            if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                problems.append(f"{at}: runAsNonRoot is not true")
            if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                problems.append(f"{at}: runs as user 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{at}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{at}: capabilities do not drop ALL")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{at}: seccompProfile is not RuntimeDefault")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        problems.append(f"{at}: resources.{kind}.{r} missing")
            if "@sha256:" not in str(c.get("image", "")):
                problems.append(f"{at}: image {c.get('image')!r} is not pinned by digest")
    return problems


# --- promtool, checkov -----------------------------------------------------------------------


def run_promtool(rule_docs: list[dict[str, Any]]) -> tuple[str, list[str]]:
    if not rule_docs:
        return "no PrometheusRule", []
    promtool = shutil.which("promtool")
    if promtool is None:
        return "skipped: promtool not installed (Debian package `prometheus`)", []
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, groups in enumerate(rule_docs):
            path = Path(tmp) / f"rules-{i}.yaml"
            path.write_text(pyyaml.safe_dump({"groups": groups}), encoding="utf-8")
            proc = subprocess.run(
                [promtool, "check", "rules", str(path)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                problems.append((proc.stdout + proc.stderr).strip())
    return f"checked {len(rule_docs)} distinct rule file(s)", problems


def checkov_bin(create: bool = True) -> Path:
    """checkov in its own venv (its pins clash with the project's): made on first use."""
    venv = REPO_ROOT / ".venv-tools" / "checkov"
    exe = venv / "bin" / "checkov"
    if exe.exists() or not create:
        return exe
    import sys

    py = shutil.which("python3.11") or sys.executable
    subprocess.run([py, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"], check=True
    )
    return exe


def run_checkov(rendered: dict[str, list[dict[str, Any]]]) -> tuple[str, list[str]]:
    exe = checkov_bin()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (target, docs) in enumerate(sorted(rendered.items())):
            slug = target.replace("/", "_").strip("_") or f"t{i}"
            (Path(tmp) / f"{slug}.yaml").write_text(
                pyyaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8"
            )
        proc = subprocess.run(
            [
                str(exe),
                "-d",
                tmp,
                "--framework",
                "kubernetes",
                "--skip-download",
                "-o",
                "json",
                "--quiet",
            ],
            capture_output=True,
            text=True,
        )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return "error", [f"checkov did not report JSON: {proc.stderr.strip()[:500]}"]
    reports = data if isinstance(data, list) else [data]
    failed, passed, skipped = [], 0, 0
    for rep in reports:
        summary = rep.get("summary") or {}
        passed += int(summary.get("passed", 0))
        skipped += int(summary.get("skipped", 0))
        for f in (rep.get("results") or {}).get("failed_checks") or []:
            failed.append(f"{f.get('check_id')} {f.get('check_name')} ({f.get('resource')})")
    return f"passed {passed}, failed {len(failed)}, suppressed {skipped}", failed


# --- the whole tree --------------------------------------------------------------------------


def _inputs(root: Path, targets: list[Path]) -> set[str]:
    """The files the renders of `targets` read (what `--changed-since` selects them by)."""
    memo: dict[str, frozenset[str]] = {}
    return {p for t in targets for p in overlay_inputs(root, t.relative_to(root).as_posix(), memo)}


def validate_tree(
    root: Path,
    crd_dir: Path,
    *,
    checkov: bool = False,
    workers: int = 2,
    targets: list[Path] | None = None,
    template: bool = False,
) -> ValidationReport:
    """Validate `targets` (default: every kustomization `find_targets` finds; an explicit empty
    list, e.g. from `--changed-since` when nothing rendered changed, validates nothing)."""
    t0 = time.perf_counter()
    report = ValidationReport(root=str(root), template=template)
    every = targets is None
    if targets is None:
        targets = find_targets(root)
        if not targets:
            raise BadInputError(f"{root}: no kustomization under argocd/ or manifests/")
    if not crd_dir.is_dir() or not any(crd_dir.glob("*.yaml")):
        raise BadInputError(
            f"CRD schemas not found in {crd_dir}: the `crd_schemas` setting "
            "(MLGATE_CRD_SCHEMAS) names a folder of CRD YAML files; unset it to use the "
            "schemas shipped with mlgate (see docs/gitops.md)"
        )
    kubectl_path()  # a missing kubectl is one clear error, not a kustomize problem per overlay
    memo: dict[str, list[str]] = {}

    def rendered_or_problem(target: Path) -> tuple[TargetResult, list[dict[str, Any]]]:
        rel = str(target.relative_to(root))
        res = TargetResult(path=rel)
        try:
            docs = render(target)
        except BadInputError as exc:
            res.problems.append(Problem(target=rel, check="kustomize", message=exc.message))
            return res, []
        res.resources = len(docs)
        return res, docs

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(rendered_or_problem, targets))
    kinds = frozenset(str(d.get("kind")) for _, docs in results for d in docs)
    crds = crd_validators(str(crd_dir), kinds)

    def schema_problems(doc: dict[str, Any]) -> list[str]:
        # The schema verdict does not depend on the namespace: identical resources of many
        # overlays are validated once (this keeps validate linear and cheap at scale).
        md = {k: v for k, v in (doc.get("metadata") or {}).items() if k != "namespace"}
        key = hashlib.sha256(
            json.dumps({**doc, "metadata": md}, sort_keys=True).encode()
        ).hexdigest()
        if key not in memo:
            memo[key] = check_schema(doc, crds)
        return memo[key]

    rendered: dict[str, list[dict[str, Any]]] = {}
    for res, docs in results:
        for doc in docs:
            name = _name(doc)
            for msg in schema_problems(doc):
                res.problems.append(
                    Problem(target=res.path, resource=name, check="schema", message=msg)
                )
            if doc.get("kind") == "SeldonDeployment":
                for msg in check_seldon(doc):
                    res.problems.append(
                        Problem(target=res.path, resource=name, check="seldon", message=msg)
                    )
            for msg in check_pod_security(doc):
                res.problems.append(
                    Problem(target=res.path, resource=name, check="pod-security", message=msg)
                )
        report.targets.append(res)
        rendered[res.path] = docs
    groups: dict[str, Any] = {}
    for docs in rendered.values():
        for doc in docs:
            if doc.get("kind") == "PrometheusRule":
                g = (doc.get("spec") or {}).get("groups") or []
                groups[hashlib.sha256(json.dumps(g, sort_keys=True).encode()).hexdigest()] = g
    by_path = {t.path: t for t in report.targets}
    for u in check_reachability(rendered):
        by_path[u.target].problems.append(
            Problem(target=u.target, resource=u.workload, check="reachability", message=u.message)
        )
    report.placeholders = find_placeholders(root, None if every else _inputs(root, targets))
    if not template:
        report.problems += [
            Problem(target=p.file, check="placeholder", message=p.message)
            for p in report.placeholders
        ]
    report.promtool, prom_problems = run_promtool(list(groups.values()))
    report.problems += [Problem(target="(all)", check="promtool", message=m) for m in prom_problems]
    if checkov:
        report.checkov, failed = run_checkov(rendered)
        report.problems += [Problem(target="(all)", check="checkov", message=m) for m in failed]
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
