"""Imports flow one way: reactive core -> messages -> agents -> ext, facades on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "miniagents"

# Lower numbers may never import higher ones. Facades only re-export.
LAYERS: dict[str, int] = {
    "miniagents.promising": 0,
    "miniagents.messages": 1,
    "miniagents.miniagents": 2,
    "miniagents.utils": 2,
    "miniagents.chat_history": 2,
    "miniagents.ext": 3,
    "miniagents.testing": 3,
    "miniagents.errors": 4,
    "miniagents": 4,
}


def layer_of(module: str) -> int:
    """The layer of a module of the package: its longest listed prefix decides."""
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    assert matches, f"{module} belongs to no layer: add it to LAYERS in {__file__}"
    return LAYERS[max(matches, key=len)]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_imports(path: Path) -> set[str]:
    """Every module of the package that the file imports (at any place in it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            if node.module:
                found.add(node.module)
    return {name for name in found if name == "miniagents" or name.startswith("miniagents.")}


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_a_module_imports_only_its_own_layer_or_lower_ones(path: Path) -> None:
    own = module_name(path)
    upward = [name for name in package_imports(path) if layer_of(name) > layer_of(own)]
    assert not upward, f"{own} (layer {layer_of(own)}) imports higher layers: {upward}"


def test_the_reactive_core_imports_nothing_from_the_rest_of_the_package() -> None:
    for path in (PACKAGE / "promising").rglob("*.py"):
        imported = package_imports(path)
        outside = [name for name in imported if not name.startswith("miniagents.promising")]
        assert not outside, f"{module_name(path)} imports {outside}"


def test_the_layering_check_sees_real_imports() -> None:
    imported = package_imports(PACKAGE / "messages" / "message_promise.py")
    assert "miniagents.promising.streamed_promise" in imported
    assert layer_of("miniagents.messages.sequence") == 1
    assert layer_of("miniagents") > layer_of("miniagents.ext.llm.openai")
