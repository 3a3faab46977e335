"""The layout: ``tests/`` mirrors the package, and the product's parts stay a readable size.

A folder of tests names the package it tests; the top of ``tests/`` keeps only the tests of
the whole library (the README, the seeds, the errors, the layers, the names, the install),
``tests/typing`` the type checks, ``tests/benchmarks`` the benchmarks and ``tests/fakes`` the
shared fixtures.

No class of the product is longer than :data:`MAX_CLASS_LINES` and no function (or method)
than :data:`MAX_FUNCTION_LINES` (its docstring aside: documentation does not make code hard
to read), but in the places listed in :data:`STILL_BEING_CUT`. A part past its limit is cut
by concept, not by line count: never a class across files, each module one concept a
reader can name, no import cycle (see CONTRIBUTING.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "miniagents"

OUTSIDE_THE_MIRROR = {"typing", "benchmarks", "fakes"}
"""Folders of ``tests/`` that are not a package's tests."""

WHOLE_LIBRARY_TESTS = {
    "test_arguments.py",
    "test_compatibility.py",
    "test_docs.py",
    "test_errors.py",
    "test_facades.py",
    "test_import_cycles.py",
    "test_install.py",
    "test_layering.py",
    "test_layout.py",
    "test_naming.py",
    "test_newcomer_traps.py",
    "test_newcomer_traps_more.py",
    "test_seeds.py",
}
"""The tests at the top of ``tests/``: each one checks the library as a whole."""


def _test_folders() -> list[Path]:
    return sorted(
        {path.parent for path in TESTS.rglob("test_*.py")}
        - {TESTS}
        - {folder for name in OUTSIDE_THE_MIRROR for folder in (TESTS / name).rglob("*")}
        - {TESTS / name for name in OUTSIDE_THE_MIRROR}
    )


def test_every_folder_of_tests_names_a_package() -> None:
    strays = [
        str(folder.relative_to(ROOT))
        for folder in _test_folders()
        if not (PACKAGE / folder.relative_to(TESTS) / "__init__.py").is_file()
    ]
    assert not strays, (
        "These test folders do not mirror a package of miniagents/: move their tests to the "
        f"folder of the package they test: {strays}"
    )


def test_the_top_of_tests_holds_only_the_whole_librarys_tests() -> None:
    top = {path.name for path in TESTS.glob("test_*.py")}
    assert top <= WHOLE_LIBRARY_TESTS, (
        "These tests sit at the top of tests/ but test one package: move them to the folder "
        f"that mirrors it (tests/<package>/): {sorted(top - WHOLE_LIBRARY_TESTS)}"
    )


def test_every_folder_of_tests_is_a_package() -> None:
    folders = {
        ancestor
        for folder in _test_folders()
        for ancestor in [folder, *folder.parents]
        if ancestor.is_relative_to(TESTS)
    }
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, (
        f"Give these test folders an __init__.py (pytest imports by package): {missing}"
    )


def test_what_must_share_a_process_is_scheduled_in_one_group() -> None:
    from tests.fakes.scheduling import group_of

    def group(path: Path) -> str:
        return group_of(f"{path.relative_to(ROOT).as_posix()}::test_x")

    typed = [*(TESTS / "typing").glob("test_*.py"), TESTS / "ext/tools/test_tool_loop_types.py"]
    assert all(path.exists() for path in typed)
    assert {group(path) for path in typed} == {"mypy"}
    assert {group(path) for path in (TESTS / "ext/ray").glob("test_*.py")} == {"ray"}
    assert group(TESTS / "test_docs.py") == "docs"
    assert group_of("tests/test_layout.py::test_x[1]") == "tests/test_layout.py::test_x[1]"


MAX_CLASS_LINES = 700
"""The most lines of a class, from its ``class`` line to its last (httpx's ``AsyncClient``: 713)."""

MAX_FUNCTION_LINES = 80
"""The most lines of a function or method, from its ``def`` line to its last, less its docstring."""

STILL_BEING_CUT: dict[str, str] = {}
"""The places whose parts may still pass the limits, while they are cut: place, and why."""


def part_sizes(source: str) -> list[tuple[str, int, int, int]]:
    """Each class and function of ``source``: its qualified name, its line, its size, its limit.

    A class's size is its lines; a function's, its lines less its docstring's.
    """
    sizes: list[tuple[str, int, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                size = child.end_lineno - child.lineno + 1
                body = child.body
                first = body[0] if body else None
                if (
                    not isinstance(child, ast.ClassDef)
                    and isinstance(first, ast.Expr)
                    and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                ):
                    assert first.end_lineno is not None
                    size -= first.end_lineno - first.lineno + 1
                limit = MAX_CLASS_LINES if isinstance(child, ast.ClassDef) else MAX_FUNCTION_LINES
                sizes.append((name, child.lineno, size, limit))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return sizes


def too_long(source: str) -> list[tuple[str, int, int]]:
    """The classes and functions of ``source`` past their limit."""
    return [(name, line, size) for name, line, size, limit in part_sizes(source) if size > limit]


def test_no_class_and_no_function_of_the_product_is_too_long() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        place = path.relative_to(ROOT).as_posix()
        if any(place.startswith(allowed) for allowed in STILL_BEING_CUT):
            continue
        found += [
            f"{place}:{line} {name} ({size} lines)"
            for name, line, size in too_long(path.read_text(encoding="utf-8"))
        ]
    assert not found, (
        f"These parts are longer than {MAX_CLASS_LINES} lines (a class) or "
        f"{MAX_FUNCTION_LINES} (a function, its docstring aside): {found}. Cut them by "
        "concept (a helper that does one named thing, a class of its own), as CONTRIBUTING.md "
        "says."
    )


def test_the_size_check_sees_long_parts() -> None:
    body = "\n".join(f"    x{index} = {index}" for index in range(79))
    source = f'def short():\n    """Its docstring.\n\n    Long.\n    """\n{body}\n'
    assert too_long(source) == []  # its def and 79 lines of code: the limit
    assert too_long(source + "    return x0\n") == [("short", 1, 81)]
    fields = "\n".join(f"    x{index} = {index}" for index in range(MAX_CLASS_LINES - 1))
    assert too_long(f"class C:\n{fields}\n") == []  # its class line and 699: the limit
    assert too_long(f"class C:\n{fields}\n    y = 0\n") == [("C", 1, 701)]
    nested = (
        f"class C:\n    class D:\n        def f(self):\n{body.replace('    ', '            ')}\n"
    )
    assert too_long(nested + "            return x0\n") == [("C.D.f", 3, 81)]
