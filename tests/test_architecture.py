"""The package's architecture, read from its source with ``ast`` (nothing is imported to check it).

The import graph holds every ``import`` and ``from ... import`` of ``fornet_cli``: at module level, inside
functions and under ``if TYPE_CHECKING:`` alike. Relative imports are resolved; ``from . import x`` where
``x`` is a submodule counts as importing that submodule, otherwise as importing the package itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = "fornet_cli"
SOURCE = Path(__file__).resolve().parents[1] / PACKAGE

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
CLI = f"{PACKAGE}.cli"
MAIN = f"{PACKAGE}.__main__"
CLI_ONLY_LIBRARIES = ("typer", "rich", "click")
MODEL = f"{PACKAGE}.model"
# What the model package must not depend on: it is the bottom layer every capability builds on.
ABOVE_THE_MODEL = ("hub", "data", "weights", "inference", "evaluation", "training", "export", "benchmark",
                   "hardness", "demo")


# ------------------------------------------------------------------------------------------------ the graph


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    source: str
    internal: dict[str, int] = field(default_factory=dict)  # imported fornet_cli module -> first line
    external: dict[str, int] = field(default_factory=dict)  # imported top-level library -> first line

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.source, str(self.path))


def module_name(path: Path, root: Path, package: str) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name ``from {'.' * level}{module} import ...`` refers to, written in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]  # a package's ``.`` is the package itself
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def known_prefix(name: str, known: Iterable[str]) -> str | None:
    """``name`` or its longest prefix that is a module of the package (``a.b.attr`` -> ``a.b``)."""
    known = set(known)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def imported_names(importer: str, is_package: bool, tree: ast.AST, known: set[str]) -> list[tuple[str, int]]:
    """Every module ``importer`` imports, anywhere in its source, as (absolute name, line)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(importer, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return found


def build_graph(root: Path = SOURCE, package: str = PACKAGE) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root, package)
        modules[name] = Module(name, path, path.name == "__init__.py", path.read_text(encoding="utf-8"))
    known = set(modules)
    for module in modules.values():
        for name, line in imported_names(module.name, module.is_package, module.tree, known):
            if name.split(".")[0] != package:
                module.external.setdefault(name.split(".")[0], line)
                continue
            target = known_prefix(name, known) or name
            if target != module.name:
                module.internal.setdefault(target, line)
    return modules


def tangles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with a cycle (sorted members), sorted; Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per tangle: the shortest from its first member back to it."""
    return [_cycle_through(component, graph) for component in tangles(graph)]


def _describe(graph: Mapping[str, Iterable[str]]) -> str:
    parts = []
    for component in tangles(graph):
        cycle = " -> ".join(_cycle_through(component, graph))
        parts.append(cycle if len(component) <= 2 else f"{cycle} (one cycle of {len(component)} tangled: "
                     f"{', '.join(component)})")
    return "; ".join(parts)


def _cycle_through(component: list[str], graph: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest cycle from the component's first member back to it, staying inside the component."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{component} is not a cycle")  # unreachable for a strongly connected component


def unit(module: str) -> str:
    """The top-level subpackage or module of ``fornet_cli`` a module belongs to (the root ``__init__`` is its own)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else f"{PACKAGE}/__init__"


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def function_lengths(tree: ast.AST) -> Iterable[tuple[str, int]]:
    """(qualified name, lines) of every function and method, nested ones included."""

    def walk(node: ast.AST, prefix: str) -> Iterable[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}{child.name}", child.end_lineno - child.lineno + 1  # type: ignore[operator]
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    return walk(tree, "")


@pytest.fixture(scope="module")
def graph() -> dict[str, Module]:
    """The package's modules and their imports (read-only: every test only looks)."""
    return build_graph()


def _importers(graph: dict[str, Module], predicate) -> list[str]:
    return sorted(f"{m.name} imports {target} (line {line})"
                  for m in graph.values() for target, line in m.internal.items() if predicate(m.name, target))


# ------------------------------------------------------------------------------------------------ the checker itself


def test_cycle_finder_on_a_synthetic_graph() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"a", "g"}, "g": {"f"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"], ["f", "g", "f"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) == []


def test_cycle_finder_reports_a_shortest_cycle_of_a_larger_component() -> None:
    graph = {"a": {"b", "d"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}  # one component, two cycles through a
    assert tangles(graph) == [["a", "b", "c", "d"]]
    assert find_cycles(graph) == [["a", "d", "a"]]
    assert _describe(graph) == "a -> d -> a (one cycle of 4 tangled: a, b, c, d)"


def test_import_extraction_on_a_synthetic_module() -> None:
    source = (
        "from __future__ import annotations\n"
        "import os, fornet_cli.errors\n"
        "from typing import TYPE_CHECKING\n"
        "from . import sibling, CONSTANT\n"
        "from .. import hub\n"
        "from ..model.fornet import FornetModel\n"
        "if TYPE_CHECKING:\n"
        "    from ..weights.format import ModelMeta\n"
        "def late():\n"
        "    import typer\n"
        "    from ...outside import thing\n"
    )
    known = {"fornet_cli", "fornet_cli.errors", "fornet_cli.hub", "fornet_cli.model", "fornet_cli.model.fornet",
             "fornet_cli.pkg", "fornet_cli.pkg.sibling", "fornet_cli.pkg.mod", "fornet_cli.weights.format"}
    found = imported_names("fornet_cli.pkg.mod", False, ast.parse(source), known)
    assert sorted(name for name, _ in found) == sorted([
        "__future__", "os", "fornet_cli.errors", "typing", "fornet_cli.pkg.sibling", "fornet_cli.pkg",
        "fornet_cli.hub", "fornet_cli.model.fornet", "fornet_cli.weights.format", "typer", "outside",
    ])
    assert resolve_relative("fornet_cli.pkg", True, 1, "mod") == "fornet_cli.pkg.mod"  # in a package's __init__
    assert resolve_relative("fornet_cli.pkg.mod", False, 2, None) == "fornet_cli"


def test_function_lengths_include_methods_and_nested_functions() -> None:
    source = "class A:\n    def m(self):\n        def inner():\n            pass\n        return 1\n\nasync def f():\n    pass\n"
    assert sorted(function_lengths(ast.parse(source))) == [("A.m", 4), ("A.m.inner", 2), ("f", 2)]


def test_the_graph_sees_the_whole_package(graph: dict[str, Module]) -> None:
    assert {PACKAGE, MAIN, MODEL, f"{MODEL}.fornet", CLI} <= set(graph)
    assert f"{PACKAGE}.weights.resolve" in graph[PACKAGE].internal, "the import inside load_weights() counts"
    assert f"{MODEL}.variants" in graph[MODEL].internal, "from . import variants is the submodule"
    assert "torch" in graph[f"{MODEL}.fornet"].external


# ------------------------------------------------------------------------------------------------ the rules


def test_no_import_cycle_between_modules(graph: dict[str, Module]) -> None:
    modules = {m.name: set(m.internal) for m in graph.values()}
    assert find_cycles(modules) == [], "import cycles: " + _describe(modules)


def test_no_import_cycle_between_top_level_packages(graph: dict[str, Module]) -> None:
    units: dict[str, set[str]] = {}
    for m in graph.values():
        units.setdefault(unit(m.name), set()).update(unit(t) for t in m.internal if unit(t) != unit(m.name))
    cycles = find_cycles(units)
    details = [
        " -> ".join(c) + " (" + ", ".join(_importers(graph, lambda a, b, c=c: any(
            unit(a) == x and unit(b) == y for x, y in zip(c, c[1:])))) + ")"
        for c in cycles
    ]
    assert cycles == [], "cycles between the top-level packages: " + "; ".join(details)


def test_only_the_cli_imports_typer_or_rich(graph: dict[str, Module]) -> None:
    offenders = sorted(f"{m.name} imports {lib} (line {line})" for m in graph.values() if not in_package(m.name, CLI)
                       for lib, line in m.external.items() if lib in CLI_ONLY_LIBRARIES)
    assert offenders == [], f"only {CLI} may import {', '.join(CLI_ONLY_LIBRARIES)}: {'; '.join(offenders)}"


def test_the_model_package_imports_nothing_above_it(graph: dict[str, Module]) -> None:
    forbidden = tuple(f"{PACKAGE}.{name}" for name in ABOVE_THE_MODEL)
    offenders = _importers(graph, lambda a, b: in_package(a, MODEL) and any(in_package(b, f) for f in forbidden))
    assert offenders == [], f"{MODEL} must not import {', '.join(forbidden)}: {'; '.join(offenders)}"


def test_only_main_imports_the_cli(graph: dict[str, Module]) -> None:
    offenders = _importers(graph, lambda a, b: in_package(b, CLI) and not in_package(a, CLI) and a != MAIN)
    assert offenders == [], f"only {MAIN} may import {CLI}: {'; '.join(offenders)}"
    assert CLI in graph[MAIN].internal


def test_no_module_is_longer_than_the_limit(graph: dict[str, Module]) -> None:
    long = sorted(f"{m.name} ({n} lines)" for m in graph.values() if (n := len(m.source.splitlines())) > MAX_MODULE_LINES)
    assert long == [], f"modules over {MAX_MODULE_LINES} lines: {', '.join(long)}"


def test_no_function_is_longer_than_the_limit(graph: dict[str, Module]) -> None:
    long = sorted(f"{m.name}.{name} ({n} lines)" for m in graph.values() for name, n in function_lengths(m.tree)
                  if n > MAX_FUNCTION_LINES)
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
