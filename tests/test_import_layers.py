"""The package layers import one way only, and no two modules import each other in a cycle.

Every ``import`` under ``src/fusionrec`` counts, including those inside functions: a
function-level import still couples the layers, it only hides the cycle until run time.
Imports under ``if TYPE_CHECKING:`` are exempt because they never execute; they must
still point downward, so they are checked for direction but left out of the cycle graph.
Names loaded with ``importlib.import_module(string)`` (the CLI's command table, the model
registry) are lookups by name, not import statements, and are not seen here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "fusionrec"

# Lowest first. A module may import its own layer or any lower one, never a higher one.
# The order (ARCHITECTURE.md), with the root modules placed: devices, errors, extras,
# locks, the precision names and the metrics (pure numpy; the cross-encoder validates with AUC)
# import no layer, so they sit at the bottom; trainer_config.py holds the section models are
# built with, so it sits just below models; config.py (the run config) checks model names and
# params against the registry, so it sits just above them; explain/ reads models and is read
# by serving; privacy (forgetting, DP) is used by serving.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fusionrec", "fusionrec.devices", "fusionrec.errors", "fusionrec.extras", "fusionrec.locks",
     "fusionrec.metrics", "fusionrec.precision"),
    ("fusionrec.data",),
    ("fusionrec.text",),
    ("fusionrec.encoders",),
    ("fusionrec.graph",),
    ("fusionrec.trainer_config",),
    ("fusionrec.models",),
    ("fusionrec.config",),
    ("fusionrec.explain",),
    ("fusionrec.training",),
    ("fusionrec.continual",),
    ("fusionrec.evaluation",),
    ("fusionrec.experiments",),
    ("fusionrec.privacy",),
    ("fusionrec.serving",),
    # the CLI, the configuration-reference generator (it reads every model's params) and the
    # library's front door (it hands torch models the Trainer and evaluate)
    ("fusionrec.cli", "fusionrec.config_reference", "fusionrec.api"),
)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    file: str
    line: int
    type_checking: bool

    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.source} -> {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int:
    """Index of the most specific layer prefix that ``module`` falls under (-1: none). The
    bare package name covers only ``fusionrec/__init__.py``, so a new root module must be
    placed in ``LAYERS`` on purpose."""
    best, best_len = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "fusionrec" and module.startswith(prefix + "."))
            if inside and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """Internal modules one import statement loads (``from pkg import sub`` names ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        base = _resolve(module, is_package, node)
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        # ``import fusionrec.a.b`` with no module of that exact name: walk up to one that exists.
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("fusionrec") and name not in out:
            out.append(name)
    return out


def import_edges() -> list[Edge]:
    known = all_modules()
    edges: list[Edge] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                guarded.update(id(child) for stmt in node.body for child in ast.walk(stmt))
        rel = str(path.relative_to(ROOT.parents[1]))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, module, path.name == "__init__.py", known):
                if target != module:
                    edges.append(Edge(module, target, rel, node.lineno, id(node) in guarded))
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so deep graphs do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def module_cycles(edges: list[Edge]) -> list[list[str]]:
    graph: dict[str, set[str]] = {m: set() for m in all_modules()}
    for edge in edges:
        if not edge.type_checking:
            graph[edge.source].add(edge.target)
    return [c for c in strongly_connected(graph) if len(c) > 1]


def test_every_module_has_a_layer():
    unplaced = [m for m in all_modules() if layer_of(m) < 0]
    assert not unplaced, f"modules with no layer in LAYERS: {unplaced}"


def test_no_module_imports_a_higher_layer():
    upward = [e for e in import_edges() if layer_of(e.target) > layer_of(e.source)]
    if upward:
        pytest.fail(f"{len(upward)} upward imports (lower layer -> higher layer):\n"
                    + "\n".join(e.where() for e in upward), pytrace=False)


def test_no_import_cycles_between_modules():
    edges = import_edges()
    cycles = module_cycles(edges)
    lines = []
    for component in cycles:
        members = set(component)
        lines.append("cycle: " + " <-> ".join(component))
        lines += [
            "  " + e.where()
            for e in edges
            if e.source in members and e.target in members and not e.type_checking
        ]
    if cycles:
        pytest.fail(f"{len(cycles)} import cycles:\n" + "\n".join(lines), pytrace=False)


def test_checker_sees_function_level_and_relative_imports(tmp_path):
    # The checker itself must find an import hidden in a function; a tiny graph with a
    # known answer guards the cycle finder.
    source = "def f():\n    from fusionrec.cli import main\n"
    node = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)][0]
    known = {"fusionrec.cli": Path("x"), "fusionrec.cli.main": Path("y")}
    assert _targets(node, "fusionrec.data.load", False, known) == ["fusionrec.cli.main"]
    rel = ast.parse("from ..schema import Dataset").body[0]
    assert _resolve("fusionrec.data.protocols.ctr", False, rel) == "fusionrec.data.schema"
    assert layer_of("fusionrec.made_up_root_module") == -1  # root modules are placed by hand
    assert layer_of("fusionrec.models.common.sampling") < layer_of("fusionrec.training.trainer")
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert [c for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
