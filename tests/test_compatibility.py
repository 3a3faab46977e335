"""The compatibility modules: old import paths that only re-export, listed in one place.

A module moves when its concept finds a better home; its old path stays importable (the
seed drafts import some of them, users import the others) as a module that only
re-exports, says so in its docstring, and is listed here with what it keeps. Nothing else
in the package may be such a shim, and no shim may grow code of its own.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "miniagents"

COMPATIBILITY_MODULES: dict[str, str] = {
    "miniagents.ext.misc_agents": "the seeds' home of the console and file agents",
    "miniagents.ext.llm.llm_common": "the old home of LLMCall, Finish, LLMProvider, prompt_of",
    "miniagents.utils.join_split": "the old home of join_messages and split_messages",
    "miniagents.promising.frozen": "the old home of Frozen (now miniagents.frozen)",
    "miniagents.miniagents.interaction": "the old home of InteractionContext and AgentCall",
    "miniagents.messages.listener": "the old home of message_listener (now beside MessagePromise)",
    "miniagents.chat_history": "the old home of the history protocol (now miniagents.ext.history)",
    "miniagents.ext.chat_history_md": "the seeds' home of ChatHistoryMD",
    "miniagents.ext.history_agents": "the seeds' home of the history agents",
    "miniagents.ext.console_agents": "the old home of the console agents",
    "miniagents.ext.console_user_agent": "the seeds' home of create_console_user_agent",
    "miniagents.ext.chat_cli": "the old home of the miniagents chat command line",
}
"""Each module that only re-exports, with the import path it keeps alive."""


def _path(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def only_reexports(source: str) -> bool:
    """Whether a module's body is a docstring, imports and ``__all__``, nothing else."""
    body = ast.parse(source).body
    for statement in body[1:] if body and isinstance(body[0], ast.Expr) else body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(statement, ast.Assign) and [
            getattr(target, "id", None) for target in statement.targets
        ] == ["__all__"]:
            continue
        return False
    return True


@pytest.mark.parametrize("module", sorted(COMPATIBILITY_MODULES))
def test_a_compatibility_module_only_reexports_and_says_so(module: str) -> None:
    source = _path(module).read_text(encoding="utf-8")
    assert only_reexports(source), f"{module} has code of its own: it is no mere re-export"
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert any(word in docstring.lower() for word in ("compatib", "former home", "old ")), (
        f"{module}'s docstring does not say it is kept for old imports"
    )
    loaded = importlib.import_module(module)
    for name in loaded.__all__:
        assert getattr(loaded, name) is not None, f"{module}.{name}"


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
