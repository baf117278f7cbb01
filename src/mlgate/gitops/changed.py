"""Which overlays a change can affect: `mlgate manifests validate --changed-since BASE`.

Rendering costs ~0.1 s per overlay, so a repository of 1,000 models x 3 environments takes
minutes to validate in full, on every pull request, for a change that is usually one
`release.yaml`. An overlay's render reads only the files its kustomization names (resources,
components, patches, generators ...), followed recursively into the directories it names, so a
change touches an overlay exactly when a changed path is one of those inputs. The inputs are
read from the kustomization files themselves, never from directory names: a shared base or
component changing selects every overlay that uses it, and nothing else.

`select` is the pure decision (changed paths + input sets -> overlays); `overlay_inputs` reads
the kustomization files; `changed_paths` asks git. Paths are POSIX, relative to the root.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml as pyyaml
from pydantic import BaseModel

from mlgate.errors import BadInputError
from mlgate.gitops.repo import GitError, run_git

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Fields whose entries are files or directories (kustomizations) the render reads.
_PATH_LISTS = (
    "resources",
    "bases",
    "components",
    "crds",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "patchesStrategicMerge",
)
_LOADER = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)
# What validation itself runs (mlgate's checks, the vendored CRD schemas under it): when a
# change touches it inside the checkout being validated, every overlay is validated again.
VALIDATOR_SOURCE = Path(__file__).parent


class ChangedTargets(BaseModel):
    """What `--changed-since` decided: the base commit, the changed paths and the overlays
    (root-relative) that read any of them, out of how many."""

    base: str
    commit: str
    changed: list[str]
    targets: list[str]
    of: int


def touches(changed: str, dep: str) -> bool:
    """A changed path is an input when it is the file, or lies under the directory, named."""
    return changed == dep or changed.startswith(dep.rstrip("/") + "/")


def select(
    changed: Iterable[str], inputs: Mapping[str, Iterable[str]], always: Iterable[str] = ()
) -> list[str]:
    """The overlays (keys of `inputs`) one of whose inputs changed; every overlay when a path
    under `always` changed (what validation itself reads: the CRD schemas, the checks)."""
    paths = sorted(set(changed))
    if any(touches(c, a) for c in paths for a in always):
        return sorted(inputs)
    return sorted(
        target for target, deps in inputs.items() if any(touches(c, d) for c in paths for d in deps)
    )


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("git@", "github.com/", "gitlab.com/"))


def _refs(doc: dict[str, Any]) -> list[str]:
    """Every local path a kustomization names (inline patches and remote bases are not files)."""
    out: list[str] = []
    for field in _PATH_LISTS:
        for entry in doc.get(field) or []:
            if isinstance(entry, str) and "\n" not in entry:
                out.append(entry)
    for field in ("patches", "patchesJson6902", "replacements"):
        for entry in doc.get(field) or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                out.append(entry["path"])
    for field in ("configMapGenerator", "secretGenerator"):
        for gen in doc.get(field) or []:
            if not isinstance(gen, dict):
                continue
            for f in gen.get("files") or []:
                out.append(str(f).split("=", 1)[-1])
            out += [str(e) for e in gen.get("envs") or []]
            if isinstance(gen.get("env"), str):
                out.append(gen["env"])
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        out.append(openapi["path"])
    return [r for r in out if r and not _is_remote(r)]


def overlay_inputs(
    root: Path, target: str, memo: dict[str, frozenset[str]] | None = None
) -> frozenset[str]:
    """Every root-relative path the render of kustomization directory `target` reads: its
    kustomization file (any of the names kustomize accepts, so adding one counts) and what it
    names, directories followed recursively. A named path that does not exist stays an input
    (as a file or a directory): deleting it is a change the overlay must be rendered against."""
    memo = {} if memo is None else memo
    stack: list[str] = []

    def visit(directory: str) -> frozenset[str]:
        if directory in memo:
            return memo[directory]
        if directory in stack:  # a cycle is kustomize's error to report, not an input loop
            return frozenset()
        stack.append(directory)
        deps = {posixpath.join(directory, name) for name in KUSTOMIZATION_FILES}
        doc: Any = None
        for name in KUSTOMIZATION_FILES:
            path = root / directory / name
            if path.is_file():
                try:
                    doc = pyyaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
                except pyyaml.YAMLError:
                    doc = None  # the render reports it; the file itself is the input
                break
        for ref in _refs(doc) if isinstance(doc, dict) else []:
            rel = posixpath.normpath(posixpath.join(directory, ref))
            if (root / rel).is_dir():
                deps |= visit(rel)
            else:
                deps.add(rel)
        stack.pop()
        memo[directory] = frozenset(deps)
        return memo[directory]

    return visit(posixpath.normpath(target))


def resolve_base(root: Path, base: str) -> str:
    """The commit `base` names in the checkout at `root`, or exit 2 naming it."""
    where = f"--changed-since {base!r}"
    if not base.strip() or base.startswith("-"):  # never an option to git
        raise BadInputError(f"{where}: want a git revision (a commit, branch or tag)")
    try:
        return run_git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}"], root
        ).strip()
    except GitError:
        raise BadInputError(
            f"{where}: not a commit of the git checkout {root} (in CI, fetch the base: "
            "actions/checkout with fetch-depth: 0)"
        ) from None


def changed_paths(root: Path, commit: str) -> list[str]:
    """Paths (relative to `root`) that differ between `commit` and the files on disk: changed,
    added, deleted, both sides of a rename, and files git does not track yet."""
    diff = run_git(["diff", "--name-only", "--no-renames", "-z", "--relative", commit, "--"], root)
    new = run_git(["ls-files", "--others", "--exclude-standard", "-z"], root)
    return sorted({p for p in (diff + new).split("\0") if p})


def changed_targets(
    root: Path, base: str, targets: list[Path], always: Iterable[Path] = ()
) -> ChangedTargets:
    """The `targets` (kustomization directories under `root`) whose inputs changed since git
    revision `base`; a change under an `always` path (inside root) selects them all."""
    commit = resolve_base(root, base)
    changed = changed_paths(root, commit)
    rels = {t.relative_to(root).as_posix(): t for t in targets}
    memo: dict[str, frozenset[str]] = {}
    inputs = {rel: overlay_inputs(root, rel, memo) for rel in rels}
    inside = [p.resolve() for p in always if p.resolve().is_relative_to(root.resolve())]
    everything = [p.relative_to(root.resolve()).as_posix() for p in inside]
    chosen = select(changed, inputs, everything)
    return ChangedTargets(
        base=base, commit=commit, changed=changed, targets=chosen, of=len(targets)
    )
