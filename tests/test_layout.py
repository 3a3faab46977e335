"""``tests/`` mirrors the package: the tests of ``miniagents/x/y`` live in ``tests/x/y``.

A folder of tests names the package it tests; the top of ``tests/`` keeps only the tests of
the whole library (the README, the seeds, the errors, the layers, the names, the install),
``tests/typing`` the type checks, ``tests/benchmarks`` the benchmarks and ``tests/fakes`` the
shared fixtures.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PACKAGE = ROOT / "miniagents"

OUTSIDE_THE_MIRROR = {"typing", "benchmarks", "fakes"}
"""Folders of ``tests/`` that are not a package's tests."""

WHOLE_LIBRARY_TESTS = {
    "test_compatibility.py",
    "test_docs.py",
    "test_errors.py",
    "test_import_cycles.py",
    "test_install.py",
    "test_layering.py",
    "test_layout.py",
    "test_naming.py",
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
