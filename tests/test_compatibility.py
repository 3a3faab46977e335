"""The compatibility modules: old import paths that only re-export, listed in one place.

A module moves when its concept finds a better home; its old path stays importable as a
module that only re-exports, says so in its docstring, and is listed here with what it
keeps. Nothing else in the package may be such a shim, and no shim may grow code of its
own. A former home is either supported (the seeds' import paths, which must work as written,
without a warning: the seeds' snippets run with warnings as errors) or deprecated: importing
it warns (``DeprecationWarning``, naming the new home), it goes in the first release after
``FORMER_HOMES_GO_AFTER``, and nothing in this repository imports it.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from miniagents.reexports import FORMER_HOMES_GO_AFTER

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "miniagents"

SUPPORTED: dict[str, str] = {
    "miniagents.ext.misc_agents": "the seeds' home of the console and file agents",
    "miniagents.ext.chat_history_md": "the seeds' home of ChatHistoryMD",
    "miniagents.ext.history_agents": "the seeds' home of the history agents",
    "miniagents.ext.console_user_agent": "the seeds' home of create_console_user_agent",
    "miniagents.promising.frozen": "the old home of Frozen, and still its __module__: a bare "
    "Frozen's hash keys and pickles name it",
}
"""Former homes that stay, undeprecated, with the reason."""

DEPRECATED: dict[str, str] = {
    "miniagents.ext.llm.llm_common": "miniagents.ext.llm",
    "miniagents.utils.join_split": "miniagents.operators",
    "miniagents.miniagents.interaction": "miniagents.miniagents",
    "miniagents.messages.listener": "miniagents.messages.message_promise",
    "miniagents.chat_history": "miniagents.ext.history",
    "miniagents.ext.console_agents": "miniagents.ext.console",
    "miniagents.ext.chat_cli": "miniagents.ext.console.chat_cli",
}
"""Former homes that warn when imported, each with its new home (which the warning names)."""

COMPATIBILITY_MODULES = {**SUPPORTED, **DEPRECATED}
"""Each module that only re-exports."""


def _path(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def only_reexports(source: str) -> bool:
    """Whether a module's body is a docstring, imports and ``__all__``, nothing else (but
    the warning of a deprecated former home)."""
    body = ast.parse(source).body
    for statement in body[1:] if body and isinstance(body[0], ast.Expr) else body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        if (
            isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Call)
            and getattr(statement.value.func, "id", None) == "warn_former_home"
        ):
            continue
        if isinstance(statement, ast.Assign) and [
            getattr(target, "id", None) for target in statement.targets
        ] == ["__all__"]:
            continue
        return False
    return True


@pytest.mark.parametrize("module", sorted(COMPATIBILITY_MODULES))
def test_a_compatibility_module_only_reexports_and_says_so(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _path(module).read_text(encoding="utf-8")
    assert only_reexports(source), f"{module} has code of its own: it is no mere re-export"
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert any(word in docstring.lower() for word in ("compatib", "former home", "old ")), (
        f"{module}'s docstring does not say it is kept for old imports"
    )
    assert ("deprecated" in docstring) == (module in DEPRECATED), module
    monkeypatch.delitem(sys.modules, module, raising=False)  # (imported again: it warns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = importlib.import_module(module)
    deprecations = [str(w.message) for w in caught if w.category is DeprecationWarning]
    if module in DEPRECATED:
        assert len(deprecations) == 1, deprecations
        assert f"import from {DEPRECATED[module]}" in deprecations[0]
    else:
        assert not deprecations, f"{module} is a supported path: it may not warn"
    for name in loaded.__all__:
        assert getattr(loaded, name) is not None, f"{module}.{name}"


@pytest.mark.parametrize("module", sorted(DEPRECATED))
def test_importing_a_deprecated_former_home_warns_with_its_new_home_and_its_date(
    module: str,
) -> None:
    code = f"import {module}"
    result = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    warning = result.stderr.strip().splitlines()
    assert warning[0] == (
        f"<string>:1: DeprecationWarning: {module} is deprecated: import from "
        f"{DEPRECATED[module]}"
        + (" (and prompt_of from miniagents.ext.llm.prompt)" if "llm_common" in module else "")
        + f" instead ({module} goes in the first release after {FORMER_HOMES_GO_AFTER})."
    ), "the warning points at the import, and names the new home and the date"
    assert FORMER_HOMES_GO_AFTER in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert module in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_the_supported_former_homes_import_without_a_warning() -> None:
    code = "; ".join(f"import {module}" for module in sorted(SUPPORTED))
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)


def _imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _sources() -> dict[str, str]:
    """Every Python file and every Python block of the documentation in the repository."""
    files = [
        path
        for folder in ("miniagents", "tests", "examples")
        for path in (ROOT / folder).rglob("*.py")
    ]
    found = {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in files}
    for page in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        for index, block in enumerate(blocks):
            found[f"{page.relative_to(ROOT)}, block {index + 1}"] = block
    return found


def test_nothing_in_the_repository_imports_a_deprecated_former_home() -> None:
    found = {
        where: sorted(_imported_modules(source) & DEPRECATED.keys())
        for where, source in _sources().items()
        if where != "tests/test_compatibility.py"
    }
    assert not {where: modules for where, modules in found.items() if modules}
    assert "miniagents.ext.misc_agents" in _imported_modules(_sources()["examples/demo.py"])


def test_every_module_that_only_reexports_is_listed() -> None:
    """A new shim joins the list (so the old paths are known in one place)."""
    unlisted = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            continue  # a package's __init__ re-exports its modules by design
        module = ".".join(parts)
        if module not in COMPATIBILITY_MODULES and only_reexports(path.read_text("utf-8")):
            unlisted.append(module)
    assert not unlisted, (
        f"These modules only re-export: {unlisted}. List each in COMPATIBILITY_MODULES "
        "with the old import path it keeps, or give it its own code."
    )


def test_the_check_tells_a_shim_from_a_module_with_code() -> None:
    assert only_reexports('"""Old home."""\nfrom x import y as y\n__all__ = ["y"]\n')
    assert not only_reexports('"""Old home."""\nfrom x import y\nz = y.bind\n')
