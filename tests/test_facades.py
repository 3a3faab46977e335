"""The facades list each name once, in a table; type checkers read a stub made of it.

``miniagents``, ``miniagents.errors``, ``miniagents.ext.history`` and ``miniagents.ext.dbos``
re-export names from the modules that define them through a :class:`Reexports` table (the
runtime imports a name's home at its first use, or with the facade where it says so). Type
checkers read the stub beside each (``errors.pyi``, ``__init__.pyi``): a static import of
each name, with its exact type. Each stub must be what its table makes; after a change of
a table, write them again with ``python -m tests.test_facades``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FunctionType, ModuleType

import pytest

import miniagents
from miniagents.reexports import Reexports

PACKAGE = Path(__file__).resolve().parent.parent / "miniagents"

FACADES: dict[str, str] = {
    "miniagents": "__version__: str",
    "miniagents.errors": "",
    "miniagents.ext.a2a": "",
    "miniagents.ext.dbos": "",
    "miniagents.ext.history": "",
}
"""Each facade with a table, with the stub's lines for what it defines itself."""


def stub_path(facade: str) -> Path:
    path = PACKAGE.parent.joinpath(*facade.split("."))
    return path / "__init__.pyi" if path.is_dir() else path.with_suffix(".pyi")


def table_of(facade: str) -> Reexports:
    table = vars(importlib.import_module(facade))["_REEXPORTS"]
    assert isinstance(table, Reexports), facade
    return table


@pytest.mark.parametrize("facade", sorted(FACADES))
def test_a_facades_stub_is_made_of_its_table(facade: str) -> None:
    written = stub_path(facade).read_text(encoding="utf-8")
    assert written == table_of(facade).stub(FACADES[facade]), (
        f"{stub_path(facade)} is not what the table of {facade} makes: write it again "
        "with `python -m tests.test_facades`."
    )


@pytest.mark.parametrize("facade", sorted(FACADES))
def test_a_facade_gives_each_name_of_its_table_from_its_home(facade: str) -> None:
    module = importlib.import_module(facade)
    assert module.__all__ == table_of(facade).names
    stub = ast.parse(stub_path(facade).read_text(encoding="utf-8"))
    imports = [node for node in stub.body if isinstance(node, ast.ImportFrom)]
    assert len(imports) == len(module.__all__)
    for node in imports:
        assert node.module is not None
        name = node.names[0].name
        assert getattr(module, name) is getattr(importlib.import_module(node.module), name)
        assert name in dir(module)
    with pytest.raises(AttributeError, match=f"module '{facade}' has no attribute 'Nothing'"):
        module.Nothing  # noqa: B018


@pytest.mark.parametrize("facade", sorted(FACADES))
def test_no_name_a_facade_gives_at_its_first_use_is_a_submodules_name(facade: str) -> None:
    """Importing a submodule sets the package's attribute of its name: it would hide the name
    of the table (``miniagents.pipeline``, the function) unless the facade binds it at once."""
    module = importlib.import_module(facade)
    folder = Path(module.__file__ or "").parent
    if Path(module.__file__ or "").name != "__init__.py":
        return
    submodules = {path.stem for path in folder.glob("*.py")} | {
        path.parent.name for path in folder.glob("*/__init__.py")
    }
    served_later = set(table_of(facade).names) - set(vars(module))
    assert not served_later & submodules


def _has_module_getattr(path: Path) -> bool:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        inner = node.body + node.orelse if isinstance(node, ast.If) else [node]
        if any(_defines_getattr(statement) for statement in inner):
            return True  # (inside an `if`: as `if not TYPE_CHECKING: def __getattr__...`)
    return False


def _defines_getattr(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef):
        return node.name == "__getattr__"
    return isinstance(node, ast.Assign) and any(
        getattr(target, "id", None) == "__getattr__" for target in node.targets
    )


def test_every_module_with_a_module_getattr_is_a_facade_with_a_table() -> None:
    found = sorted(
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in PACKAGE.rglob("*.py")
        if _has_module_getattr(path)
    )
    assert found == sorted(FACADES)


def test_an_extensions_names_are_imported_at_their_first_use() -> None:
    loaded = "print(' '.join(sorted(name for name in sys.modules if 'miniagents.ext.' in name)))"
    code = (
        "import sys, miniagents.errors as errors, miniagents.ext.history as history\n"
        f"{loaded}\nerrors.LLMError, history.ChatHistory\n{loaded}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = (line.split() for line in result.stdout.splitlines())
    assert before == ["miniagents.ext.history"]
    assert {"miniagents.ext.llm.errors", "miniagents.ext.history.base"} <= set(after)
    assert "miniagents.ext.history.markdown" not in after  # (ChatHistoryMD: not used)


HINTS_NAME_AN_OPTIONAL_SDK = {
    "miniagents.ext.llm._openai_options.OpenAIOptions",
    "miniagents.ext.llm.anthropic.AnthropicOptions",
    "miniagents.ext.llm.bedrock.BedrockOptions",
    "miniagents.ext.llm.gemini.GeminiOptions",
    "miniagents.ext.realtime.gemini.GeminiLiveOptions",
    "miniagents.ext.realtime.openai.OpenAIRealtimeOptions",
}
"""Options whose annotations name an optional SDK's client types, imported only for type
checkers (the extras import their SDKs at first use): ``get_type_hints`` cannot see them."""


def _public_modules() -> Iterator[ModuleType]:
    for info in pkgutil.walk_packages(miniagents.__path__, "miniagents."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        with warnings.catch_warnings():  # (the deprecated former homes warn)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield importlib.import_module(info.name)


def _public_classes() -> Iterator[type]:
    seen: set[type] = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and value not in seen:
                seen.add(value)
                yield value


def _public_functions() -> Iterator[FunctionType]:
    """Each function of a public module's ``__all__``, then each public method (``__init__``
    too) that the package defines for a public class, its bases' included."""
    seen: set[object] = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.isfunction(value) and value not in seen:
                seen.add(value)
                yield value
    for klass in _public_classes():
        for base in klass.__mro__:
            for name, member in vars(base).items():
                if name.startswith("_") and name != "__init__":
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if (
                    inspect.isfunction(member)
                    and member.__module__.startswith("miniagents.")
                    and member not in seen
                ):
                    seen.add(member)
                    yield member


def test_the_annotations_of_every_public_class_resolve_at_run_time() -> None:
    """``typing.get_type_hints`` (pydantic, FastAPI, cattrs... call it) reads each class.

    A class shown under another module (the errors under ``miniagents.errors``, ``Frozen``
    under its former home) or an alias written as a string used to make it fail with a
    ``NameError`` (every message class did).
    """
    failed = {}
    for klass in _public_classes():
        qualified = f"{klass.__module__}.{klass.__qualname__}"
        try:
            typing.get_type_hints(klass)
        except (NameError, TypeError) as error:
            if qualified not in HINTS_NAME_AN_OPTIONAL_SDK:
                failed[qualified] = repr(error)
    assert not failed, failed


_OTEL = "opentelemetry's TracerProvider (the otel extra, imported at first use)"
_WEB = (
    "the web extra's WebSettings (importing miniagents.ext.web needs sse-starlette and "
    "ag-ui-protocol, which the mcp extra does not bring)"
)

CALLABLES_WITH_HINTS_OF_AN_OPTIONAL_SDK: dict[str, str] = {
    **{
        f"{options}.__init__": "its fields name the SDK's client types: HINTS_NAME_AN_OPTIONAL_SDK"
        for options in HINTS_NAME_AN_OPTIONAL_SDK
    },
    "miniagents.evals.run.aevaluate": _OTEL,
    "miniagents.evals.run.evaluate": _OTEL,
    "miniagents.ext.otel.instrumentation.instrument": _OTEL,
    "miniagents.ext.a2a.client.a2a_agent": (
        "mypy_extensions' DefaultNamedArg: a name for type checkers, not a dependency"
    ),
    "miniagents.ext.dbos.llm_records.SQLJournalHold.__init__": (
        "sqlalchemy's Connection (imported at first use, with the database)"
    ),
    "miniagents.ext.mcp.serving.mcp_http_app": f"{_WEB}, and its Authentication",
    "miniagents.ext.mcp.serving.mcp_server": _WEB,
    "miniagents.ext.mcp.serving.serve_stdio": _WEB,
    "miniagents.ext.mcp.session.MCPSession.__init__": (
        "the mcp SDK's StdioServerParameters and transports (imported at first use)"
    ),
    "miniagents.ext.mcp.tool.MCPTool.__init__": (
        "the mcp SDK's CallToolResult, in CallTool (imported at first use)"
    ),
    "miniagents.ext.ray.pipeline.ray_pipeline": "ray's Dataset (imported at first use)",
    "miniagents.ext.realtime.web.voice_server": "uvicorn's Server (imported at first use)",
    "miniagents.ext.web.serving.server_config": "uvicorn's Config (imported at first use)",
}
"""Public functions and methods whose annotations name an optional SDK's types (or another
extra's), imported only for type checkers: ``get_type_hints`` cannot see them."""


def test_the_annotations_of_every_public_function_and_method_resolve_at_run_time() -> None:
    """``typing.get_type_hints`` (FastAPI, ``validate_call``, typer... call it) reads each.

    A name imported only for type checkers that the package has at run time anyway
    (``AudioTokens`` in ``CallCharge.finish``), or the fields of a provider's options read
    in its subclass's module (``SDKOptions.__init__``: ``Literal``, ``Budget``...) used to
    make it fail with a ``NameError``.
    """
    failed, excused = {}, set()
    for function in _public_functions():
        qualified = f"{function.__module__}.{function.__qualname__}"
        try:
            typing.get_type_hints(function)
        except (NameError, TypeError) as error:
            if qualified in CALLABLES_WITH_HINTS_OF_AN_OPTIONAL_SDK:
                excused.add(qualified)
            else:
                failed[qualified] = repr(error)
    assert not failed, failed
    stale = set(CALLABLES_WITH_HINTS_OF_AN_OPTIONAL_SDK) - excused
    assert not stale, f"these resolve now: take them off the list: {sorted(stale)}"


def write_stubs() -> None:
    """Write each facade's stub from its table."""
    for facade, declared in FACADES.items():
        stub_path(facade).write_text(table_of(facade).stub(declared), encoding="utf-8")


if __name__ == "__main__":
    write_stubs()
