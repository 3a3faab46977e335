"""No import cycle between the modules of the package, nor between those of the tests,
counting every import.

An import inside ``if TYPE_CHECKING:`` or inside a function counts too: two modules that
import each other, even for types only, are one idea cut in two (or two ideas tangled), and
a reader has to read both to understand either. A protocol (as ``FlowCore`` in
``miniagents.promising._flow``) or a move breaks such a ring.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "miniagents"
TESTS = PACKAGE.parent / "tests"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Every module under ``root`` (the package, or the tests with their helpers), with the
    modules under it that it imports anywhere."""
    paths = {_module_name(path): path for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name].update(target for target in targets if target in paths)
    for name in graph:  # a package's own __init__ is not a dependency of its modules
        graph[name] = {target for target in graph[name] if not name.startswith(target + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                target = todo.pop()
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, sorted(graph[target])))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_no_module_of_the_package_is_in_an_import_cycle() -> None:
    found = [sorted(cycle) for cycle in cycles(import_graph())]
    assert not found, (
        f"These modules import each other (directly or in a ring): {found}. Break the ring: "
        "move what both need into one of them (or a module of its own), or depend on a "
        "protocol instead of the other module's class."
    )


def test_no_module_of_the_tests_is_in_an_import_cycle() -> None:
    graph = import_graph(TESTS)
    assert "tests.fakes.fixtures" in graph["tests.ext.llm.test_llm_providers"]  # edges are seen
    found = [sorted(cycle) for cycle in cycles(graph)]
    assert not found, (
        f"These test modules import each other (directly or in a ring): {found}. Move what "
        "both need into a helper module that imports neither (as tests/fakes/)."
    )


def test_the_check_finds_a_ring_and_a_type_only_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from x import y\n"
    imports = [
        node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    ]
    assert "x" in imports  # ast.walk reaches the import under TYPE_CHECKING
