"""The import rules of docs/architecture.md, checked against the code.

The rules are not repeated here: the test reads the page's two tables (`layer | modules | may
import | never imports` and `importer | imports | ...`) and checks every module under
`src/mlgate` (the KFP definitions in `mlgate.kubeflow` included) and `feature_repo/` against them with `ast`. So the
page cannot drift from the code: a new import that crosses a layer the wrong way fails, a module
that belongs to no layer fails, and so does a known exception the code no longer needs (remove
its row). Imports are counted wherever they are (module top, inside a function, under
TYPE_CHECKING), `importlib.import_module("literal...")` counts as an import, and an edit of
`sys.path` counts as an import of `sys.path`, which no layer may do.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
# (folder, the folder its module names are relative to)
SOURCES = (
    (REPO / "src" / "mlgate", REPO / "src"),
    (REPO / "feature_repo", REPO),
)
PROJECT_ROOTS = {"mlgate", "feature_repo"}
SYS_PATH = "sys.path"
_PATH_EDITS = {"insert", "append", "extend", "remove", "pop", "clear"}


# --- the page's tables ---------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def read_table(text: str, first_columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The markdown table whose header starts with `first_columns`, as dicts by header."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        header = [h.lower() for h in _cells(line)]
        if tuple(header[: len(first_columns)]) != first_columns:
            continue
        rows = []
        for row in lines[i + 2 :]:
            if not row.lstrip().startswith("|"):
                break
            cells = _cells(row)
            rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True)))
        return rows
    raise AssertionError(f"{DOC}: no table whose header starts with {' | '.join(first_columns)}")


def _items(cell: str) -> list[str]:
    """`a`, `b.*`, plain-name -> ['a', 'b.*', 'plain-name']; '—' or '' -> []."""
    out = []
    for part in cell.split(","):
        part = part.strip().strip("`").strip()
        if part and part not in {"—", "-", "nothing"}:
            out.append(part)
    return out


def matches(pattern: str, name: str) -> bool:
    """`pkg.*` is the package and everything under it; anything else is one exact name."""
    if pattern.endswith(".*"):
        base = pattern[:-2]
        return name == base or name.startswith(base + ".")
    return name == pattern


def _specificity(pattern: str) -> tuple[int, int]:
    return (0, len(pattern)) if pattern.endswith(".*") else (1, len(pattern))


@dataclass
class Layer:
    name: str
    patterns: list[str]
    may_layers: set[str] = field(default_factory=set)
    may_patterns: list[str] = field(default_factory=list)
    never: list[str] = field(default_factory=list)


@dataclass
class KnownException:
    importers: list[str]
    imports: list[str]
    removed_by: str


@dataclass
class Rules:
    layers: dict[str, Layer]
    exceptions: list[KnownException]

    def layer_of(self, module: str) -> Layer | None:
        """The layer of the most specific pattern that matches (exact beats `.*`)."""
        best: tuple[tuple[int, int], Layer] | None = None
        for layer in self.layers.values():
            for pattern in layer.patterns:
                if matches(pattern, module):
                    key = _specificity(pattern)
                    if best is None or key > best[0]:
                        best = (key, layer)
        return best[1] if best else None


def parse_rules(text: str) -> Rules:
    layers: dict[str, Layer] = {}
    for row in read_table(text, ("layer", "modules", "may import")):
        name = row["layer"].strip("`* ")
        layer = Layer(name=name, patterns=_items(row["modules"]))
        for item in _items(row["may import"]):
            if "." in item or item in PROJECT_ROOTS:
                layer.may_patterns.append(item)
            else:
                layer.may_layers.add(item)
        layer.never = _items(row.get("never imports", ""))
        layers[name] = layer
    exceptions = [
        KnownException(_items(row["importer"]), _items(row["imports"]), row.get("removed by", ""))
        for row in read_table(text, ("importer", "imports"))
    ]
    return Rules(layers, exceptions)


# --- the code's imports --------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports (a module, a third-party name, or "sys.path")
    path: Path
    line: int


def project_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, base in SOURCES:
        for p in sorted(folder.rglob("*.py")):
            if "__pycache__" in p.parts:
                continue
            parts = list(p.with_suffix("").relative_to(base).parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = p
    return found


def _literal_prefix(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.rstrip(".") or None
    return None


def _is_sys_path(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def scan(
    source: str, module: str, is_package: bool, known: set[str], path: Path = Path("<memory>")
) -> Iterator[Import]:
    """Every import of one module's source, resolved to module names where they are modules."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, path, line)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield Import(module, sub if sub in known else base, path, line)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "import_module" and node.args:
                prefix = _literal_prefix(node.args[0])
                if prefix:
                    yield Import(module, prefix, path, line)
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in _PATH_EDITS
                and _is_sys_path(func.value)
            ):
                yield Import(module, SYS_PATH, path, line)
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                inner = t.value if isinstance(t, ast.Subscript) else t
                if _is_sys_path(inner):
                    yield Import(module, SYS_PATH, path, line)


def all_imports() -> list[Import]:
    modules = project_modules()
    known = set(modules)
    out: list[Import] = []
    for name, path in modules.items():
        out += scan(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known, path)
    return out


def violation(rules: Rules, imp: Import) -> str | None:
    """Why `imp` breaks the rules (None when it does not)."""
    layer = rules.layer_of(imp.module)
    if layer is None:
        return f"{imp.module} belongs to no layer"
    if imp.target == SYS_PATH:
        return f"{layer.name} edits sys.path"
    root = imp.target.split(".")[0]
    if root in PROJECT_ROOTS:
        target = rules.layer_of(imp.target)
        if target is None or target.name == layer.name or target.name in layer.may_layers:
            return None
        if any(matches(p, imp.target) for p in layer.may_patterns):
            return None
        return f"{layer.name} may not import {target.name} ({imp.target})"
    if any(matches(p, imp.target) or matches(p + ".*", imp.target) for p in layer.never):
        return f"{layer.name} never imports {imp.target}"
    return None


def excused(rules: Rules, imp: Import) -> KnownException | None:
    for exc in rules.exceptions:
        if any(matches(p, imp.module) for p in exc.importers) and any(
            matches(p, imp.target) or matches(p + ".*", imp.target) for p in exc.imports
        ):
            return exc
    return None


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rules() -> Rules:
    return parse_rules(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_the_layer_table_is_a_layering(rules: Rules) -> None:
    """Every `may import` names a layer of the table, and no two layers may import each other
    (directly or round a cycle): the table is an order, bottom to top."""
    assert len(rules.layers) >= 10, "the layer table was not found or lost rows"
    for layer in rules.layers.values():
        assert layer.patterns, f"layer {layer.name}: no modules"
        unknown = layer.may_layers - set(rules.layers)
        assert not unknown, f"layer {layer.name} may import unknown layers {sorted(unknown)}"

    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        assert state.get(name) != 1, f"layers form a cycle: {' -> '.join([*trail, name])}"
        state[name] = 1
        for nxt in sorted(rules.layers[name].may_layers):
            visit(nxt, [*trail, name])
        state[name] = 2

    for name in rules.layers:
        visit(name, [])


def test_every_module_belongs_to_a_layer(rules: Rules) -> None:
    homeless = [m for m in project_modules() if rules.layer_of(m) is None]
    assert not homeless, (
        f"modules in no layer of {DOC.name} (add them to a layer's `modules`): {homeless}"
    )


def test_imports_follow_the_layer_table(rules: Rules, imports: list[Import]) -> None:
    problems = []
    for imp in imports:
        why = violation(rules, imp)
        if why and not excused(rules, imp):
            where = imp.path.relative_to(REPO) if imp.path.is_absolute() else imp.path
            problems.append(f"{where}:{imp.line}: {why}")
    assert not problems, (
        f"imports that break the layer table of {DOC.name} (move the code to the layer that "
        "owns it; a deliberate exception goes in the known-exceptions table with the issue "
        "that removes it):\n  " + "\n  ".join(sorted(set(problems)))
    )


def test_every_known_exception_is_still_needed(rules: Rules, imports: list[Import]) -> None:
    assert rules.exceptions, "the known-exceptions table was not found"
    used = {id(e) for imp in imports if violation(rules, imp) for e in [excused(rules, imp)] if e}
    stale = [
        f"{', '.join(e.importers)} -> {', '.join(e.imports)}"
        for e in rules.exceptions
        if id(e) not in used
    ]
    assert not stale, f"known exceptions the code no longer needs (remove the rows): {stale}"
    for e in rules.exceptions:
        assert e.removed_by, f"exception {e.importers} -> {e.imports}: say what removes it"


def test_the_scanner_sees_every_kind_of_import() -> None:
    """The checker is only as good as its scanner: each form of import is found and resolved."""
    known = {"mlgate.gates", "mlgate.gates.drift", "mlgate.gitops.status", "mlgate.pkg.sibling"}
    src = (
        "import os\n"
        "from mlgate.gates import drift\n"  # a module imported by name from its package
        "from mlgate.gates import GateStatus\n"  # a name: the package itself
        "from . import sibling\n"  # relative
        "def f(name):\n"
        "    import importlib, sys\n"
        "    from mlgate.gitops.status import stable_version\n"  # nested
        "    sys.path.insert(0, '/x')\n"
        "    sys.path[:0] = ['/y']\n"
        "    return importlib.import_module(f'pipelines.{name}')\n"
    )
    found = {(i.target, i.line) for i in scan(src, "mlgate.pkg.mod", False, known)}
    assert found == {
        ("os", 1),
        ("mlgate.gates.drift", 2),
        ("mlgate.gates", 3),
        ("mlgate.pkg.sibling", 4),
        ("importlib", 6),
        ("sys", 6),
        ("mlgate.gitops.status", 7),
        (SYS_PATH, 8),
        (SYS_PATH, 9),
        ("pipelines", 10),
    }


@pytest.mark.parametrize(
    ("module", "added", "expected"),
    [
        # a pure gate reaching into git state
        ("mlgate.gates.performance", "from mlgate.gitops import status", "may not import gitops"),
        # the functional core importing a shell
        ("mlgate.training.train", "from mlgate.commands import train", "may not import commands"),
        # a pure gate doing I/O
        ("mlgate.gates.drift", "import mlflow", "never imports mlflow"),
        # a component calling the library around the step functions
        (
            "mlgate.kubeflow.components.gates",
            "from mlgate.gates import run",
            "may not import gate-runs",
        ),
        # the library editing sys.path
        ("mlgate.gitops.overlay", "import sys\nsys.path.append('x')", "edits sys.path"),
    ],
)
def test_a_forbidden_import_is_caught(rules: Rules, module: str, added: str, expected: str) -> None:
    """Mutation check on the real tree: add one forbidden import to a real module's source and
    the rules (as read from the page) report it, and no known exception excuses it."""
    modules = project_modules()
    path = modules[module]
    original = path.read_text(encoding="utf-8")
    source = original + "\n" + added + "\n"
    old_lines = len(original.splitlines())
    new = [
        i
        for i in scan(source, module, path.name == "__init__.py", set(modules), path)
        if i.line > old_lines
    ]
    reasons = [r for i in new if (r := violation(rules, i)) and not excused(rules, i)]
    assert any(expected in r for r in reasons), (module, added, reasons)
