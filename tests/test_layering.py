"""The architecture, enforced: layers, private modules and attributes, ``__all__``, light imports.

Imports flow one way::

    root_error / arguments / reexports -> promising / frozen -> messages -> miniagents
        -> utils / chat_history / operators / pipeline -> ext / testing -> evals

(the ``miniagents`` package and its ``errors`` facade re-export from all of them;
``root_error`` holds ``MiniAgentsError`` and ``ArgumentError``, below every layer, with the
argument checks (``arguments``) and how facades re-export (``reexports``); ``frozen``
imports nothing of ``promising``, which re-exports ``Frozen``). A private module (``_name``)
or name is used only by the modules of the package that holds it (its subpackages are other
packages); a private attribute (``obj._name``) is touched only by the package that defines it
(``self`` and ``cls`` aside).
The layers above the streams use their documented low levels instead:
:mod:`miniagents.promising.lowlevel` and :mod:`miniagents.miniagents.lowlevel`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "miniagents"

# Lower numbers may never import higher ones. Facades only re-export.
LAYERS: dict[str, int] = {
    "miniagents.root_error": -1,  # MiniAgentsError: the root every layer's errors derive from
    "miniagents.reexports": -1,  # how facades and former homes re-export (imports nothing)
    "miniagents.arguments": -1,  # the argument checks every layer shares (and ArgumentError)
    "miniagents.promising": 0,
    "miniagents.frozen": 0,
    "miniagents.messages": 1,
    "miniagents.miniagents": 2,
    "miniagents.utils": 3,
    "miniagents.chat_history": 4,  # a compatibility module: re-exports miniagents.ext.history
    "miniagents.operators": 3,
    "miniagents.pipeline": 3,
    "miniagents.ext": 4,
    "miniagents.testing": 4,
    "miniagents.evals": 5,  # runs agents as pipelines, its judge is an LLM agent of ext.llm
    "miniagents.errors": 6,
    "miniagents": 6,  # and miniagents.cli, the command that gives ext.console evals' command
}

FORBIDDEN: dict[str, str] = {
    "miniagents.frozen": "miniagents.promising",  # promising re-exports Frozen: not both ways
    "miniagents.ext": "miniagents.testing",  # the library never depends on its testing kit
    "miniagents.evals": "miniagents.testing",  # nor do the evals (tests use the kit with them)
}
"""Packages of one layer that may not import another of the same layer."""

PRIVATE_ATTRIBUTES_ALLOWED: dict[tuple[str, str], str] = {}
"""``(module, attribute)`` uses of another package's private attribute, with the reason (none:
the low-level modules meet every such need)."""


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


def package_of(path: Path) -> str:
    """The package a file belongs to: itself for an ``__init__.py``, else its folder's."""
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@cache
def tree_of(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def package_imports(path: Path) -> set[str]:
    """Every module of the package that the file imports (at any place in it), or that a
    facade re-exports from (as the stub beside it says: ``miniagents.reexports``)."""
    found: set[str] = set()
    stub = path.with_suffix(".pyi")
    trees = [tree_of(path), *([tree_of(stub)] if stub.exists() else [])]
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            if node.module:
                found.add(node.module)
    return {name for name in found if name == "miniagents" or name.startswith("miniagents.")}


def home_of(path: Path, own: str) -> str:
    """The package whose modules ``own`` (the module of ``path``) counts among: itself for
    an ``__init__.py``, else its folder's. Its subpackages are other packages."""
    return own if path.name == "__init__.py" else own.rpartition(".")[0]


def _private_module_outside(parts: list[str], home: str) -> bool:
    """Whether module ``parts`` goes through a private module (or package) from ``home``
    that neither holds it nor is inside it."""
    for index, part in enumerate(parts):
        if is_private(part):
            holder = ".".join(parts[:index])  # the package holding the private module
            return home != holder and not inside(home, ".".join(parts[: index + 1]))
    return False


def private_imports(path: Path, own: str | None = None) -> list[str]:
    """The private modules and names of other packages that the file (module ``own``) imports.

    A private module or name is its package's: a subpackage (``ext.llm.batch`` under
    ``ext.llm``) is another package, and uses a public name instead.
    """
    own = own or module_name(path)
    home = home_of(path, own)
    found: list[str] = []
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("miniagents"):
            assert node.module is not None
            parts = node.module.split(".")
            if any(is_private(part) for part in parts):
                if _private_module_outside(parts, home):
                    found.append(node.module)
                continue
            # a public module: its private names are its package's
            is_package = (PACKAGE.parent / Path(*parts) / "__init__.py").exists()
            holder = node.module if is_package else node.module.rpartition(".")[0]
            found += [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if is_private(alias.name) and home != holder
            ]
        elif isinstance(node, ast.Import):
            found += [
                alias.name
                for alias in node.names
                if alias.name.startswith("miniagents.")
                and _private_module_outside(alias.name.split("."), home)
            ]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def _defined_private_names(path: Path) -> set[str]:
    """The private attribute names a file defines: slots, class and module names, and
    the attributes its ``__init__`` methods set on ``self``."""
    names: set[str] = set()
    tree = tree_of(path)
    bodies: list[list[ast.stmt]] = [tree.body]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bodies.append(node.body)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "__init__":
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Attribute)
                    and isinstance(inner.ctx, ast.Store)
                    and isinstance(inner.value, ast.Name)
                    and inner.value.id == "self"
                ):
                    names.add(inner.attr)
    for body in bodies:
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(statement.name)
            if not isinstance(statement, (ast.Assign, ast.AnnAssign)):
                continue
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                names.add(target.id)
                if target.id == "__slots__" and statement.value is not None:
                    names.update(
                        constant.value
                        for constant in ast.walk(statement.value)
                        if isinstance(constant, ast.Constant) and isinstance(constant.value, str)
                    )
    return {name for name in names if is_private(name)}


@cache
def private_definitions() -> dict[str, set[str]]:
    """Each private attribute name defined in the package, with the packages defining it."""
    owners: dict[str, set[str]] = defaultdict(set)
    for path in SOURCES:
        for name in _defined_private_names(path):
            owners[name].add(package_of(path))
    return owners


_ATTRIBUTE_FUNCTIONS = ("getattr", "setattr", "hasattr", "delattr")


def private_attribute_uses(path: Path, by_name: bool = False) -> list[tuple[int, str]]:
    """Each ``obj._name`` of a file but on ``self``, ``cls`` or ``super()``: the line and the
    name; ``by_name``, ``getattr(obj, "_name")`` (``setattr``, ...) too (a check by name
    alone: the package-wide checks leave it out, where other libraries' names collide)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree_of(path)):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "super":
                continue
            found.append((node.lineno, node.attr))
        elif (
            by_name
            and isinstance(node, ast.Call)
            and getattr(node.func, "id", None) in _ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls"))
        ):
            found.append((node.lineno, node.args[1].value))
    return found


def foreign_private_attributes(path: Path, own: str | None = None) -> list[str]:
    """``obj._name`` accesses to a private attribute that another package defines (a
    subpackage, or the package above, is another)."""
    own = own or module_name(path)
    home = home_of(path, own)
    found: list[str] = []
    for line, name in private_attribute_uses(path):
        owners = private_definitions().get(name)
        if not owners or home in owners:
            continue  # not ours (another library's), or this package's own
        if (own, name) not in PRIVATE_ATTRIBUTES_ALLOWED:
            found.append(f"line {line}: .{name} (defined in {sorted(owners)})")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_a_module_imports_only_its_own_layer_or_lower_ones(path: Path) -> None:
    own = module_name(path)
    imported = package_imports(path)
    upward = [name for name in imported if layer_of(name) > layer_of(own)]
    assert not upward, f"{own} (layer {layer_of(own)}) imports higher layers: {upward}"
    for package, forbidden in FORBIDDEN.items():
        if inside(own, package):
            wrong = [name for name in imported if inside(name, forbidden)]
            assert not wrong, f"{own} imports {wrong}: {package} may not import {forbidden}"


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_no_module_imports_a_private_module_or_name_of_another_package(path: Path) -> None:
    assert not private_imports(path), (
        f"{module_name(path)} imports private modules or names of other packages: "
        f"{private_imports(path)}. Use the public ones (e.g. miniagents.promising.lowlevel)."
    )


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_no_module_touches_a_private_attribute_of_another_package(path: Path) -> None:
    found = foreign_private_attributes(path)
    assert not found, (
        f"{module_name(path)} touches private attributes that other packages define: {found}. "
        "Use a public (or low-level) API instead."
    )


TESTS = PACKAGE.parent / "tests"

TESTS_PRIVATE_ALLOWED: dict[tuple[str, str], str] = {
    ("tests/benchmarks/a2a_framing.py", "miniagents.ext.a2a._rpc"): (
        "times the JSON-RPC framer alone, below the app that uses it"
    ),
    ("tests/benchmarks/llm_stream.py", "miniagents.testing._eventstream"): (
        "frames Bedrock's event stream as the fake server does, to time the decoding alone"
    ),
    ("tests/benchmarks/llm_timeline.py", "miniagents.promising._waiting"): (
        "counts the record's wakes: the timeline's subject is the stream core's inside"
    ),
    ("tests/benchmarks/otel_off.py", "miniagents.miniagents._observing"): (
        "counts the calls of the hook the agent layer calls, to show tracing off costs none"
    ),
    ("tests/ext/llm/batch/test_gemini_batches.py", "miniagents.testing._gemini_wire"): (
        "the fake server's thought signature, which the batch's replies must carry back"
    ),
    ("tests/ext/llm/test_first_token.py", "miniagents.ext.dbos._recording"): (
        "the durable recorder is a second recorder of LLM calls that must decline timings"
    ),
    ("tests/ext/realtime/test_operations.py", "miniagents.testing._gemini_live_wire"): (
        "drives the fake Gemini Live wire directly, one operation at a time"
    ),
    ("tests/ext/realtime/test_operations.py", "miniagents.testing._live"): (
        "the fake live servers' records, read to check each operation's frames"
    ),
    ("tests/ext/realtime/test_operations.py", "miniagents.testing._openai_realtime_wire"): (
        "drives the fake OpenAI Realtime wire directly, one operation at a time"
    ),
    ("tests/ext/web/test_durable.py", "miniagents.ext.dbos._approvals"): (
        "reads the approvals' workflows from DBOS's own tables after a restart"
    ),
    ("tests/ext/web/test_durable.py", "miniagents.ext.dbos._sqlite"): (
        "opens DBOS's client on the app's database, as a second process would"
    ),
    ("tests/ext/web/test_durable_jobs.py", "miniagents.ext.dbos._approvals"): (
        "finds an approval's workflow by its id, to kill the app at that point"
    ),
}
"""``(test file, private module)``: where a test uses a private module of a package other than
the one it tests (its folder's mirror: ``tests/ext/llm/`` tests ``miniagents.ext.llm``), with
the reason."""


def mirrored_module(path: Path) -> str:
    """The module of the package a file of the tests stands for: ``tests/x/y/test_z.py`` is
    ``miniagents.x.y.test_z``, so that its package is ``miniagents.x.y``, the one it tests."""
    parts = list(path.relative_to(TESTS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["miniagents", *parts])


def private_uses_of_the_tests() -> dict[tuple[str, str], None]:
    """Each ``(test file, private module or name)`` of another package than the file's."""
    return {
        (path.relative_to(TESTS.parent).as_posix(), name): None
        for path in sorted(TESTS.rglob("*.py"))
        for name in private_imports(path, mirrored_module(path))
    }


def test_a_test_uses_private_modules_of_another_package_only_as_listed_with_a_reason() -> None:
    assert mirrored_module(TESTS / "ext" / "llm" / "test_x.py") == "miniagents.ext.llm.test_x"
    assert mirrored_module(TESTS / "ext" / "__init__.py") == "miniagents.ext"
    found = private_uses_of_the_tests()
    unlisted = [key for key in found if key not in TESTS_PRIVATE_ALLOWED]
    assert not unlisted, (
        f"These tests use private modules or names of a package other than the one they test: "
        f"{unlisted}. Use the public API, move the test beside the package it tests, or add "
        f"the use to TESTS_PRIVATE_ALLOWED in {__file__} with the reason."
    )
    stale = [key for key in TESTS_PRIVATE_ALLOWED if key not in found]
    assert not stale, (
        f"Remove these from TESTS_PRIVATE_ALLOWED: the tests no longer use them: {stale}"
    )


def global_statements(path: Path) -> list[str]:
    """Where a function of a file rebinds module state: ``global`` statements, and uses of
    ``globals()`` in a function (a write through it rebinds a name as ``global`` does; at
    the module's top, where a facade binds the names it imports, it is an import's work)."""
    functions = (
        node
        for node in ast.walk(tree_of(path))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    )
    inside = {inner for function in functions for inner in ast.walk(function)}
    found: list[str] = []
    for node in sorted(inside, key=lambda node: getattr(node, "lineno", 0)):
        if isinstance(node, ast.Global):
            found.append(f"line {node.lineno}: global {', '.join(node.names)}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "globals":
            found.append(f"line {node.lineno}: globals()")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[module_name(p) for p in SOURCES])
def test_no_module_rebinds_a_global(path: Path) -> None:
    """Layers meet through declared hooks (a ``Hook``, set through its module's function)."""
    assert not global_statements(path), (
        f"{module_name(path)} rebinds module globals: {global_statements(path)}. Hold "
        "process-wide state in an object (a miniagents.miniagents.lowlevel.Hook for what "
        "another layer plugs in, a small state holder for a module's own; functools.cache "
        "for what is made once)."
    )


def test_the_global_check_sees_a_global_statement(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "_x = None\ndef f():\n    global _x\n    _x = 1\n    globals()['_y'] = 2\n"
        "globals().update(z=3)\n",
        encoding="utf-8",
    )
    assert global_statements(probe) == ["line 3: global _x", "line 5: globals()"]


PUBLIC_MODULES = [
    path
    for path in SOURCES
    if path.stem != "__main__"
    and not any(is_private(part) for part in path.relative_to(PACKAGE).with_suffix("").parts)
]


AGENTS_LAYER = sorted((PACKAGE / "miniagents").glob("*.py"))


@cache
def _private_definitions_by_module() -> dict[str, set[str]]:
    owners: dict[str, set[str]] = defaultdict(set)
    for path in SOURCES:
        for name in _defined_private_names(path):
            owners[name].add(module_name(path))
    return owners


def private_attributes_of_other_modules(
    path: Path, package: str, own: str | None = None
) -> list[str]:
    """``obj._name`` accesses to a private attribute that another module of ``package``
    defines (and ``path``'s own module does not)."""
    own = own or module_name(path)
    found: list[str] = []
    for line, name in private_attribute_uses(path):
        owners = _private_definitions_by_module().get(name, set())
        inside_package = {owner for owner in owners if inside(owner, package)}
        if inside_package and own not in owners:
            found.append(f"line {line}: .{name} (defined in {sorted(inside_package)})")
    return found


@pytest.mark.parametrize("path", AGENTS_LAYER, ids=[module_name(p) for p in AGENTS_LAYER])
def test_no_module_of_the_agents_layer_touches_a_private_attribute_of_another(
    path: Path,
) -> None:
    found = private_attributes_of_other_modules(path, "miniagents.miniagents")
    assert not found, (
        f"{module_name(path)} reaches into private attributes of other modules of the agents "
        f"layer: {found}. Give the internal API a name (as the functions at the end of "
        "miniagents/miniagents/context.py do) and call that instead."
    )


def test_the_agents_layer_check_sees_a_real_violation(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f(context):\n    return context._streams\n", encoding="utf-8")
    own = "miniagents.miniagents.probe"
    found = private_attributes_of_other_modules(probe, "miniagents.miniagents", own)
    assert [entry.split(" (")[0] for entry in found] == ["line 2: ._streams"]


@pytest.mark.parametrize("path", PUBLIC_MODULES, ids=[module_name(p) for p in PUBLIC_MODULES])
def test_every_public_module_declares_its_names_in_all(path: Path) -> None:
    declared = [
        node
        for node in tree_of(path).body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(target, ast.Name) and target.id == "__all__"
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert declared, f"{module_name(path)} is public and has no __all__"


COMPATIBILITY_IMPORTS: dict[str, str] = {
    "miniagents.promising": "re-exports Frozen and FrozenDict, which moved to miniagents.frozen",
    "miniagents.promising.frozen": "the old home of Frozen: re-exports miniagents.frozen",
    "miniagents.promising.errors": "the old home of frozen's errors: re-exports them",
}
"""Modules of the reactive core that import from outside it (but the root error, below every
layer), to keep an old import path."""


def test_the_reactive_core_imports_nothing_from_the_rest_of_the_package() -> None:
    for path in (PACKAGE / "promising").rglob("*.py"):
        imported = package_imports(path)
        allowed: tuple[str, ...] = (
            "miniagents.promising",
            "miniagents.root_error",
            "miniagents.arguments",
        )
        if module_name(path) in COMPATIBILITY_IMPORTS:
            allowed += ("miniagents.frozen",)
        outside = [name for name in imported if not name.startswith(allowed)]
        assert not outside, f"{module_name(path)} imports {outside}"


@pytest.mark.parametrize("statement", ["import miniagents", "import miniagents.errors"])
def test_importing_miniagents_loads_no_extension_no_testing_kit_and_no_evals(
    statement: str,
) -> None:
    code = (
        f"{statement}\n"
        "import sys\n"
        "print(sorted(name for name in sys.modules\n"
        "             if name.startswith(('miniagents.ext', 'miniagents.testing',\n"
        "                                 'miniagents.evals'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", f"{statement} loads {result.stdout.strip()}"


def test_the_layering_check_sees_real_imports() -> None:
    imported = package_imports(PACKAGE / "messages" / "message_promise.py")
    assert "miniagents.promising.streamed_promise" in imported
    assert layer_of("miniagents.messages.sequence") == 1
    assert layer_of("miniagents") > layer_of("miniagents.ext.llm.openai")
    assert layer_of("miniagents.operators") > layer_of("miniagents.miniagents.agent")
    assert layer_of("miniagents.evals.run") > layer_of("miniagents.ext.llm.structured")
    assert layer_of("miniagents.evals.run") > layer_of("miniagents.pipeline.local")
    assert layer_of("miniagents.cli") > layer_of("miniagents.evals.cli")
    assert layer_of("miniagents.root_error") < layer_of("miniagents.frozen.errors")
    assert layer_of("miniagents.root_error") < layer_of("miniagents.promising.errors")


def test_frozen_and_promising_do_not_tie_each_other() -> None:
    """``promising`` re-exports ``Frozen``; ``frozen`` (its errors too) imports nothing of it."""
    frozen = sorted((PACKAGE / "frozen").rglob("*.py"))
    assert len(frozen) >= 4
    found = {
        module_name(path): sorted(
            name for name in package_imports(path) if inside(name, "miniagents.promising")
        )
        for path in frozen
    }
    assert all(not names for names in found.values()), found
    assert "miniagents.frozen.model" in package_imports(PACKAGE / "promising" / "__init__.py")


def test_the_private_checks_see_real_violations(tmp_path: Path) -> None:
    assert "_core" in private_definitions()  # StreamedPromise._core, in miniagents.promising
    assert private_definitions()["_core"] == {"miniagents.promising"}
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from miniagents.promising._replay import ReplayCore\n"
        "from miniagents.promising.streamed_promise import _private\n"
        "from miniagents.messages._collect import collect\n"
        "def f(stream):\n"
        "    return stream._core, self_like._resolver, self._core\n",
        encoding="utf-8",
    )
    own = "miniagents.messages.probe"
    assert private_imports(probe, own) == [
        "miniagents.promising._replay",
        "miniagents.promising.streamed_promise._private",
    ]
    found = foreign_private_attributes(probe, own)
    assert [entry.split(" (")[0] for entry in found] == ["line 5: ._core", "line 5: ._resolver"]
    assert foreign_private_attributes(probe, "miniagents.promising.probe") == []


def test_the_private_checks_see_a_subpackage_use_its_parent_s_private_names(
    tmp_path: Path,
) -> None:
    """``ext.llm.batch`` is not ``ext.llm``: it may not use ``ext.llm``'s private names."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from miniagents.ext.llm.openai import _client\n"
        "from miniagents.ext.llm._openai_chat import chat_reply\n"
        "import miniagents.ext.llm._stall\n"
        "from miniagents.ext.llm.batch._run import BatchRun\n"
        "from miniagents.ext.llm.batch.api import _APIS\n",
        encoding="utf-8",
    )
    assert private_imports(probe, "miniagents.ext.llm.batch.probe") == [
        "miniagents.ext.llm.openai._client",
        "miniagents.ext.llm._openai_chat",
        "miniagents.ext.llm._stall",
    ]
    assert private_imports(probe, "miniagents.ext.llm.probe") == [
        "miniagents.ext.llm.batch._run",
        "miniagents.ext.llm.batch.api._APIS",
    ]


# -- the replayable stream: parts that own their state ------------------------------------

STREAMS_LAYER = sorted((PACKAGE / "promising").rglob("*.py"))


def _is_protocol(node: ast.ClassDef) -> bool:
    """Whether ``node`` declares a ``typing.Protocol`` (what it lists is another's, not its own)."""
    return any(
        (isinstance(base, ast.Name) and base.id == "Protocol")
        or (isinstance(base, ast.Subscript) and getattr(base.value, "id", None) == "Protocol")
        for base in node.bases
    )


def _runtime_class(module: object, node: ast.ClassDef) -> type | None:
    """The class that ``node`` defines at the top of ``module``, if it is one."""
    found = getattr(module, node.name, None)
    return found if isinstance(found, type) else None


@cache
def class_private_attributes(path: Path) -> set[str]:
    """The private attributes the (non-protocol) classes of a file define: their slots,
    class attributes and methods, and what their methods set on ``self`` (unless a base
    class of another module defines it: a subclass setting its base's slot uses it)."""
    if not any(isinstance(node, ast.ClassDef) for node in ast.walk(tree_of(path))):
        return set()  # (not imported: a former home, which warns as it is, has no class)
    module = importlib.import_module(module_name(path))
    names: set[str] = set()
    for node in ast.walk(tree_of(path)):
        if not isinstance(node, ast.ClassDef) or _is_protocol(node):
            continue
        own: set[str] = set()
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(statement.name)
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                for target in targets:
                    own.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
                    if getattr(target, "id", None) == "__slots__" and statement.value is not None:
                        own.update(
                            constant.value
                            for constant in ast.walk(statement.value)
                            if isinstance(constant, ast.Constant)
                            and isinstance(constant.value, str)
                        )
        stored = {
            inner.attr
            for inner in ast.walk(node)
            if isinstance(inner, ast.Attribute)
            and isinstance(inner.ctx, ast.Store)
            and isinstance(inner.value, ast.Name)
            and inner.value.id == "self"
        }
        runtime = _runtime_class(module, node)
        for name in stored - own:
            holder = (
                None
                if runtime is None
                else next((cls for cls in runtime.__mro__ if name in vars(cls)), None)
            )
            if holder is None or holder.__module__ == module.__name__:
                own.add(name)
        names |= own
    return {name for name in names if is_private(name)}


def attributes_of_other_modules_classes(
    path: Path, package: str, own: str | None = None
) -> list[str]:
    """The private attributes ``path`` (module ``own``) reads or writes that a class of
    another module of ``package`` defines (whether or not a class of its own defines one of
    that name too: a name shared so would hide whose state is touched)."""
    own = own or module_name(path)
    owners: dict[str, set[str]] = defaultdict(set)
    for other in sorted((PACKAGE.parent / package.replace(".", "/")).rglob("*.py")):
        if module_name(other) != own:
            for name in class_private_attributes(other):
                owners[name].add(module_name(other))
    return [
        f"line {line}: ._{name[1:]} (defined by a class of {', '.join(sorted(owners[name]))})"
        for line, name in private_attribute_uses(path, by_name=True)
        if owners.get(name)
    ]


def test_no_module_of_the_streams_touches_the_private_state_of_another_module_s_class() -> None:
    """Each part of the replayable stream owns its state: the others call its methods."""
    found = {
        module_name(path): uses
        for path in STREAMS_LAYER
        if (uses := attributes_of_other_modules_classes(path, "miniagents.promising"))
    }
    assert not found, (
        f"Modules of the streams reach into the private state of other modules' classes: "
        f"{found}. Each part of the stream owns its state: give the part a method (public to "
        "the package) that does what is needed, and call it."
    )


_REGISTRY_CALLS = {"dict", "set", "list", "defaultdict", "WeakKeyDictionary", "WeakValueDictionary"}

STREAMS_REGISTRIES_ALLOWED: dict[tuple[str, str], str] = {
    ("miniagents.promising._tasks", "_tasks"): (
        "the process's running tasks of the library, by asyncio task (running_tasks() reads "
        "them): a task of asyncio's is no part of a stream"
    ),
    ("miniagents.promising._tasks", "_cancel_messages"): (
        "the message of each task's cancel, weakly by asyncio task (cancel_task keeps it, the "
        "task's source reads it): asyncio keeps it only in a private attribute, and a task "
        "takes no attribute of ours"
    ),
    ("miniagents.promising._run_first", "leaders"): (
        "the RunFirst each asyncio task leads now, by task (the waits' wake-up reads it)"
    ),
    ("miniagents.promising._deadlock", "_watches"): (
        "the deadlock watch of each event loop, weakly by the loop: a loop (asyncio's, "
        "uvloop's) takes no attribute of ours"
    ),
}
"""Module-level mutable state of the streams layer keyed by what no part owns, with the reason."""


def module_registries(path: Path) -> list[str]:
    """The names ``path`` binds at its top level to a mutable collection (a dict, a set, a
    list, a weak dictionary): state kept for objects by the module rather than by them."""
    found: list[str] = []
    for node in tree_of(path).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        called = value.func if isinstance(value, ast.Call) else None
        name = getattr(called, "attr", None) or getattr(called, "id", None)
        if isinstance(value, (ast.Dict, ast.Set, ast.List)) or name in _REGISTRY_CALLS:
            found += [t.id for t in targets if isinstance(t, ast.Name) and t.id != "__all__"]
    return found


def test_no_module_of_the_streams_keeps_the_state_of_a_part_in_a_registry_of_its_own() -> None:
    """A reader's, a core's or an audience's state is theirs: no module keeps it for them."""
    found = {
        module_name(path): names
        for path in STREAMS_LAYER
        if (
            names := [
                name
                for name in module_registries(path)
                if (module_name(path), name) not in STREAMS_REGISTRIES_ALLOWED
            ]
        )
    }
    assert not found, (
        f"Modules of the streams keep state in module-level collections: {found}. Each part of "
        "the stream owns its state: keep it in a slot of the part it belongs to (the reader, "
        "the core's audience, ...), which goes with it."
    )


def test_the_registry_check_sees_a_module_level_collection(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import weakref\n"
        "__all__ = ['f']\n"
        "_by_reader: dict[int, int] = {}\n"
        "_at_end = weakref.WeakKeyDictionary()\n"
        "_seen = set()\n"
        "_LIMIT = 64\n",
        encoding="utf-8",
    )
    assert module_registries(probe) == ["_by_reader", "_at_end", "_seen"]


LLM_EXTENSION = sorted((PACKAGE / "ext" / "llm").rglob("*.py"))

LLM_PRIVATE_STATE_ALLOWED: dict[tuple[str, str], str] = {
    ("miniagents.ext.llm.sdk_calls", "_client"): (
        "the SDK client's HTTP client (the SDK's attribute, read by name: not the method of "
        "compatible.py's class)"
    ),
    ("miniagents.ext.llm.batch._run", "_client"): "the SDK client's HTTP client (as above)",
}
"""``(module, attribute)`` uses of the private state of another module's class within
``miniagents.ext.llm``, with the reason."""


def test_no_module_of_the_llm_extension_touches_the_private_state_of_another_module_s_class() -> (
    None
):
    """A budget's counts are its module's (``usage.py``): a call's charge calls its functions."""
    found = {
        own: uses
        for path in LLM_EXTENSION
        if (
            uses := [
                use
                for use in attributes_of_other_modules_classes(path, "miniagents.ext.llm")
                if (own := module_name(path), use.split(": .")[1].split(" ")[0])
                not in LLM_PRIVATE_STATE_ALLOWED
            ]
        )
    }
    assert not found, (
        f"Modules of miniagents.ext.llm reach into the private state of other modules' "
        f"classes: {found}. Let the module that defines the class do it (a function or a "
        "method of its own, as usage.py's books of a call's charge), and call that."
    )


def test_the_llm_extension_check_sees_a_budget_s_counts_written_from_elsewhere(
    tmp_path: Path,
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def charge(budget, stream):\n"
        "    budget._budget_requests += 1\n"
        "    return budget.usage, stream._task\n",
        encoding="utf-8",
    )
    found = attributes_of_other_modules_classes(probe, "miniagents.ext.llm", "miniagents.ext.llm.p")
    assert [entry.split(" (")[0] for entry in found] == [
        "line 2: ._budget_requests",
        "line 3: ._task",
    ]


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """The names a file binds by importing from the package, each with what it names."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("miniagents"):
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("miniagents"):
                    names[alias.asname or alias.name.partition(".")[0]] = alias.name
    return names


def _resolve(dotted: str) -> object:
    """The object a dotted name of the package names (``None`` if it cannot be found)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            found = inspect.getattr_static(found, part, None)
            if found is None:
                return None
        return found
    return None


def _dotted(node: ast.expr, imported: dict[str, str]) -> str | None:
    """``node`` (a name, an attribute chain, or one wrapped in ``staticmethod(...)`` and the
    like) as a dotted name of the package, if it starts with an imported name."""
    while isinstance(node, ast.Call) and len(node.args) == 1:
        node = node.args[0]
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in imported:
        return ".".join([imported[node.id], *chain])
    return None


def borrowed_methods(path: Path) -> list[str]:
    """Class attributes of a file that are functions of another module: a class taking
    another module's functions as its methods."""
    tree = tree_of(path)
    imported = _imported_names(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None:
                continue
            dotted = _dotted(statement.value, imported)
            if dotted is None:
                continue
            value = _resolve(dotted)
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if inspect.isfunction(value) or inspect.isbuiltin(value):
                found.append(f"line {statement.lineno}: {node.name} takes {dotted}")
    return found


def test_no_class_takes_another_module_s_functions_as_its_methods() -> None:
    """A class's behaviour is written in it: a function of another module bound as a method
    (``await_change = _waiting.await_change``) splits one object's code, and its state, across
    modules."""
    found = {module_name(path): taken for path in SOURCES if (taken := borrowed_methods(path))}
    assert not found, (
        f"Classes take other modules' functions as their methods: {found}. Write the method "
        "in the class (calling the other part's API), or let the other module own the state "
        "it works on."
    )


def test_the_streams_checks_see_real_violations(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from miniagents.promising import _tasks\n"
        "from miniagents.promising._tasks import spawn\n"
        "class Borrower:\n"
        "    spawn = spawn\n"
        "    also = staticmethod(_tasks.forget_task)\n"
        "    fine = 3\n"
        "    _state = None\n"
        "def f(stream, core, piece):\n"
        "    core._own_state = stream._core\n"
        "    return getattr(piece, '_core', None), self._core, core._state, core._unknown\n",
        encoding="utf-8",
    )
    own = "miniagents.promising.probe"
    found = attributes_of_other_modules_classes(probe, "miniagents.promising", own)
    assert [entry.split(" (")[0] for entry in found] == ["line 9: ._core", "line 10: ._core"]
    assert [entry.split(" takes")[0] for entry in borrowed_methods(probe)] == [
        "line 4: Borrower",
        "line 5: Borrower",
    ]


def imported_test_modules(path: Path) -> set[str]:
    """The test modules (``tests....test_*``) that a file of the tests imports, or names in it."""
    package = list(path.relative_to(TESTS.parent).with_suffix("").parts[:-1])
    return named_test_modules(path.read_text(encoding="utf-8"), package)


def named_test_modules(source: str, package: list[str]) -> set[str]:
    """The test modules that ``source``, a module of ``package`` (``["tests", "ext"]``),
    imports or names in its imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests" and any(
                part.startswith("test_")
                and TESTS.joinpath(*parts[1 : index + 1]).with_suffix(".py").is_file()
                for index, part in enumerate(parts)
                if index
            ):
                found.add(
                    next(
                        ".".join(parts[: index + 1])
                        for index, part in enumerate(parts)
                        if index and part.startswith("test_")
                    )
                )
    return found


def test_no_file_of_the_tests_imports_a_test_module() -> None:
    # A test module imported by another runs its module-level code, and pytest's collection
    # twice over; what tests share lives in helper modules (conftest.py, fakes, not test_*).
    found = sorted(
        (path.relative_to(TESTS.parent).as_posix(), module)
        for path in sorted(TESTS.rglob("*.py"))
        for module in imported_test_modules(path)
        if module != ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
    )
    assert not found, (
        f"These files of the tests import a test module: {found}. Move what they share "
        "into a helper module (one not named test_*) and import it from there."
    )


def test_the_test_module_check_sees_a_real_import() -> None:
    assert imported_test_modules(TESTS / "ext" / "llm" / "conftest.py") == set()
    source = (
        "from tests.miniagents import test_abandon\n"
        "from ..operators import test_operators as operators\n"
        "import tests.promising.test_backpressure\n"
        "from tests.fakes.eager_tasks import eager_tasks\n"
    )
    assert named_test_modules(source, ["tests", "miniagents"]) == {
        "tests.miniagents.test_abandon",
        "tests.operators.test_operators",
        "tests.promising.test_backpressure",
    }
