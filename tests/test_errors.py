"""Every error MiniAgents raises is a ``MiniAgentsError``, exported and drawn in one tree.

``miniagents.errors`` exports every error class of the package and draws their hierarchy in
its docstring, exactly (each class under its parent, with the builtins it also derives from).
Every ``raise`` in the package's source raises a ``MiniAgentsError`` subclass: a class of
ours, or what a function of ours returns (by its annotation), or an error caught in an
``except`` clause around it, re-raised; the few other raises are listed below, each with
the reason it may stay.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import importlib
import pickle
import pkgutil
import re
import subprocess
import sys
import traceback
import warnings
from collections import defaultdict
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import pytest

import miniagents
import miniagents.errors
import miniagents.testing
import miniagents.testing.errors
from miniagents.errors import MiniAgentsError
from miniagents.testing.errors import TestingKitError

PACKAGE = Path(miniagents.__file__).resolve().parent

ALLOWED_CLASSES: dict[str, str] = {
    "NotImplementedError": "the abstract method of DirectSource (each subclass implements it)",
    "StopAsyncIteration": "the end of an async iterator (the iteration protocol itself)",
    "_Unencodable": "private to the hash-key encoder, caught there and turned into HashKeyError",
    "_WorkerDied": "private to ray_agent: caught by its retry loop, which raises "
    "RayWorkerDiedError",
    "_CannotStart": "private to the chat command line: caught in main(), which prints it",
    "_LineTooLong": "private to the console's line reader: caught by read_user_text and "
    "ask_approval, which print it on stderr and read on",
    "AuthenticationError": "Starlette's: a backend of the web apps refuses credentials with it, "
    "as Starlette's AuthenticationMiddleware expects (the apps answer it with a 401)",
    "HTTPException": "Starlette's: the web apps' 408 of a request body not all sent within "
    "body_seconds, which Starlette answers with its message (the JSON apps, A2A and the studio "
    "catch it and answer their own JSON 408)",
    "_AppStopped": "private to the web apps of durable agents: ends their recovery context "
    "(cancelling what it runs) and is caught right around it",
    "ClientGone": "the fake LLM server's handler threads: caught by the server, never a user's",
    "Stopping": "the fake LLM server's handler threads: caught by the server, never a user's",
    "Unanswered": "the fake LLM server's handler threads: caught by a batch API's wire "
    "format, which then waits for the client to go, never a user's",
}
"""Classes that may be raised although they are not ``MiniAgentsError`` s, with the reason."""

ALLOWED_RAISES: dict[tuple[str, str], str] = {
    (
        "miniagents.reexports",
        "AttributeError(f'module {self.facade!r} has no attribute {name!r}')",
    ): ("a facade's __getattr__ must raise AttributeError for a name it does not have"),
    (
        "miniagents.messages.message_promise",
        "AttributeError(f'{type(obj).__name__!r} object has no attribute {name!r}')",
    ): (
        "the __getattr__ of a MessagePromise, a MessageSequencePromise and a MessageTuple, "
        "for a private or special name it lacks: the plain AttributeError Python raises "
        "without the method (copy, pickle and hasattr probe them)"
    ),
    ("miniagents.messages.message_promise", "error(sentence, name=name, obj=obj)"): (
        "the same __getattr__ for a public name: an UnresolvedMessageError, or the "
        "MessageTupleFieldError a MessageTuple passes (both MiniAgentsErrors)"
    ),
    ("miniagents.promising._replay", "error.with_traceback(self._traceback)"): (
        "re-raises the error that ended a stream (its producer's, of any type) for a consumer"
    ),
    (
        "miniagents.ext.web._http",
        "ValueError(f'{name} is not a JSON number (send a finite number, or null)')",
    ): (
        "a json.loads hook (parse_constant): json.loads lets its ValueError out, and read_json "
        "catches it right around the call as the body's 400"
    ),
    (
        "miniagents.ext.web._http",
        "ValueError(f'the number {text[:40]} is too large (send a finite number, or null)')",
    ): (
        "a json.loads hook (parse_float): json.loads lets its ValueError out, and read_json "
        "catches it right around the call as the body's 400"
    ),
    (
        "miniagents.ext.web._http",
        "ValueError(f'the number {text[:40]}... has {digits} digits, more than the {limit} a "
        "number may have (send a shorter number, or write it as a string)')",
    ): (
        "a json.loads hook (parse_int): json.loads lets its ValueError out, and read_json "
        "catches it right around the call as the body's 400"
    ),
    ("miniagents.utils.blocks", "self._block_refused()"): (
        "a refused `with` or `async with` block: the error class its owner gave (the LLM "
        "cache's LLMConfigurationError, the testing kit's VirtualTimeError, FakeLLMServerError)"
    ),
    ("miniagents.ext.history._file", "OSError(errno.EIO, 'the write made no progress')"): (
        "caught by the except OSError right around it and turned into a ChatHistoryError"
    ),
    ("miniagents.ext.llm._stall", "error"): (
        "the stall's own error, which end() gives for the watch's cancellation: made by the "
        "watch's error factory, typed Callable[[], MiniAgentsError]"
    ),
    ("miniagents.ext.llm._turn", "translated"): (
        "a provider's error, or the provider's translation of it into an LLMError, re-raised"
    ),
    ("miniagents.ext.ray._worker", "failure"): (
        "an agent's error, re-raised after the replies; a live link end's own error (its "
        "close or settling), re-raised once every end is closed and settled"
    ),
    ("miniagents.ext.ray._budgets", "self._link.halt.with_traceback(None)"): (
        "why the link of a call still running closed: an LLMError, or the error its transport "
        "broke with (e.g. a RayWorkerDiedError)"
    ),
    ("miniagents.ext.mcp.serving", "MCPError(_TOO_MANY_CALLS, refusal)"): (
        "the MCP SDK's: a request handler raises it for the server to answer the request with "
        "that JSON-RPC error (a tool call past the calls its caller may have under way)"
    ),
    ("miniagents.ext.realtime._session", "self._failure"): (
        "what ended a realtime session in another of its tasks (its input's own error, of "
        "any type, an LLMError of the API or a budget), raised where the session ends, after "
        "its pieces"
    ),
    ("miniagents.ext.realtime._session", "closing"): (
        "what a realtime link's own close (or its events generator's) raised, of any type, "
        "raised where the session ends when the session itself ended well"
    ),
    ("miniagents.ext.realtime._session", "late"): (
        "what a task of a realtime session failed with as the session ended (not an "
        "Exception: a framework's refusal to go on, as DBOS's), raised on after its end"
    ),
    ("miniagents.ext.realtime.web", "WebSocketDisconnect(self._closed_with)"): (
        "Starlette's own: a send to a page the app closed itself (a message it refused) "
        "ends the session as the page's leaving does, the app's close code its code"
    ),
    ("miniagents.ext.realtime.web", "failed.exceptions[0]"): (
        "the first error of the voice page's sends (the reply's, or a transcript's in a task "
        "of its own), of any type, taken out of their task group's ExceptionGroup so that "
        "the session tells it as it tells each"
    ),
    ("miniagents.ext.llm.batch._run", "error"): (
        "the SDK's error of a batch's creation, raised as the call's by the capturing "
        "transport (the call's provider translates it)"
    ),
    ("miniagents.ext.llm.batch._run", "translated"): (
        "what a batched call's transport raised: a MiniAgentsError itself, or the SDK's error "
        "translated by the call's provider"
    ),
    ("miniagents.promising._sources", "cancelled_error(task)"): (
        "a stopped source's task whose source finished its read (or ended) despite the "
        "cancellation: it ends cancelled as it was asked to, with the cancel's message, "
        "pushing nothing more"
    ),
    ("miniagents.ext.dbos._engine", "asyncio.CancelledError(str(error))"): (
        "a durable run whose reader gave up: DBOS leaves a cancelled workflow unrecorded, to "
        "run again when asked again (a StreamCancelledError would be recorded as its end)"
    ),
    ("miniagents.ext.dbos._engine", "asyncio.CancelledError(CancelReason(str(cancelled)))"): (
        "a step of a durable run that DBOS cancelled: its agent is cancelled (not failed, which "
        "its code could catch), the streams it fed ending with the DurableRunCancelledError's "
        "sentence, chained to it"
    ),
    ("miniagents.ext.dbos._engine", "cancel"): (
        "DBOS's own stop of a cancelled durable run (a BaseException), raised on by the run's "
        "body so that DBOS ends the workflow cancelled; its readers got a "
        "DurableRunCancelledError"
    ),
    ("miniagents.ext.dbos._engine", "failure"): (
        "the one-line DurableDatabaseError that database_failure made of a failure of the "
        "database of runs (typed DurableDatabaseError | None: raised when it is one)"
    ),
    ("miniagents.ext.dbos.approvals", "failure"): (
        "the one-line DurableDatabaseError that database_failure made of a failure of the "
        "database of runs (typed DurableDatabaseError | None: raised when it is one)"
    ),
    ("miniagents.ext.dbos._recording", "recorded.error"): (
        "a tool's or a model call's own error, recorded in a durable run and raised again "
        "where it was"
    ),
    ("miniagents.ext.dbos._recording", "failed"): (
        "a tool's or a model call's own error, passed from the step that records it to the call"
    ),
    ("miniagents.ext.dbos.runs", "error"): (
        "the error a durable run failed with, recorded, raised again where its replay stops"
    ),
    ("miniagents.ext.ray.agent", "failure"): "the remote agent's own error, with its own type",
    ("miniagents.ext.ray.agent", "self._failure(error)"): (
        "the error that ended the replies: the input's (re-raised), RayWorkerDiedError or "
        "_WorkerDied, or a RayAgentError"
    ),
    ("miniagents.ext.ray.agent", "self.input_error"): (
        "an input's error (of any type) that stopped the worker, re-raised to the reply's consumer"
    ),
    ("miniagents.testing.scripted_model", "reply"): (
        "an error the test scripted for this call, raised as the model's failure with its own type"
    ),
    ("miniagents.pipeline.item_result", "error.with_traceback(traceback)"): (
        "an item's error, re-raised to the pipeline's consumer with its own type (and the "
        "traceback it had when the result was made)"
    ),
    ("miniagents.pipeline.local", "read_error"): (
        "the items iterable's own error, or the MessageTypeError of an item that cannot be an "
        "agent's input, raised to the consumer after the results before it"
    ),
    ("miniagents.ext.ray._pipeline_run", "self.read_error"): (
        "the items iterable's own error, or the MessageTypeError of an item that cannot be an "
        "agent's input (item_input_error's), raised to the consumer after the results before it"
    ),
    ("miniagents.ext.ray._pipeline_run", "failure"): (
        "the items' own clean-up error (closing their iterator), raised with its own type "
        "once Ray's cancel of the batches still running was waited for"
    ),
    ("miniagents.pipeline.local", "error"): (
        "fail_fast: the first failed item's error, raised to the consumer with its own type"
    ),
    ("miniagents.ext.sqlite_files", "raised"): (
        "SQLiteFile: the error its store gives for what SQLite or the file system said (each "
        "store's own, from its errors module), or that error itself to let it through"
    ),
    ("miniagents.pipeline.local", "got"): (
        "plain for: the error of the run on its thread, raised to the consumer with its own type"
    ),
}
"""``(module, raised expression)`` pairs that raise something else, with the reason."""


def all_subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for subclass in cls.__subclasses__():
        found |= {subclass, *all_subclasses(subclass)}
    return found


@cache
def modules() -> dict[str, ModuleType]:
    loaded = {"miniagents": miniagents}
    with warnings.catch_warnings():  # (the deprecated former homes warn)
        warnings.simplefilter("ignore", DeprecationWarning)
        for module in pkgutil.walk_packages(miniagents.__path__, "miniagents."):
            loaded[module.name] = importlib.import_module(module.name)
    return loaded


def our_errors() -> set[type[BaseException]]:
    modules()
    return {
        error
        for error in all_subclasses(MiniAgentsError)
        if error.__module__.startswith("miniagents.") and not error.__name__.startswith("_")
    }


def test_every_error_of_the_package_is_exported_and_drawn_in_the_hierarchy() -> None:
    errors = our_errors()
    assert len(errors) >= 40
    hierarchy = miniagents.errors.__doc__ or ""
    for error in errors:
        assert getattr(miniagents.errors, error.__name__, None) is error, error
        assert error.__name__ in vars(miniagents.errors)["__all__"], error
        assert f"── {error.__name__}" in hierarchy, error


def drawn_tree() -> dict[str, tuple[str, set[str]]]:
    """Each class drawn in ``miniagents.errors``: its drawn parent and its "also" builtins."""
    drawn: dict[str, tuple[str, set[str]]] = {}
    parents = ["MiniAgentsError"]
    line_pattern = re.compile(
        r"^(?P<indent>[ │]*)[├└]── (?P<name>\w+)(?: \(also (?P<also>[^)]+)\))?"
    )
    for line in (miniagents.errors.__doc__ or "").splitlines():
        match = line_pattern.match(line.strip("\n")[4:])  # the block is indented by 4
        if match is None:
            continue
        depth = len(match["indent"]) // 4
        del parents[depth + 1 :]
        also = {name.strip() for name in (match["also"] or "").split(",") if name.strip()}
        drawn[match["name"]] = (parents[depth], also)
        parents.append(match["name"])
    return drawn


def test_the_drawn_hierarchy_is_the_real_one() -> None:
    drawn = drawn_tree()
    errors = {error.__name__: error for error in our_errors()}
    assert set(drawn) == set(errors), "drawn but not defined, or defined but not drawn"
    for name, (parent, also) in drawn.items():
        error = errors[name]
        ours = [base for base in error.__bases__ if issubclass(base, MiniAgentsError)]
        others = {base.__name__ for base in error.__bases__ if base is not ours[0]}
        assert ours[0].__name__ == parent, f"{name} is drawn under {parent}"
        assert others == also, f"{name} also derives from {others}, drawn: {also}"


def public_errors() -> set[type[BaseException]]:
    """Every public error class: the product's and the testing kit's."""
    kit = {
        error
        for error in all_subclasses(TestingKitError)
        if error.__module__.startswith("miniagents.") and not error.__name__.startswith("_")
    }
    return {MiniAgentsError, TestingKitError, *our_errors(), *kit}


def test_every_public_error_shows_the_path_users_import_it_from() -> None:
    # issue 58, item 7: tracebacks named miniagents.miniagents.errors.AgentArgumentError
    errors = public_errors()
    assert len(errors) >= 80
    for error in errors:
        public = error.__module__
        assert not any(part.startswith("_") for part in public.split(".")), error
        assert getattr(importlib.import_module(public), error.__qualname__) is error, error
        if issubclass(error, MiniAgentsError):  # each is imported from miniagents.errors
            assert public == "miniagents.errors", error
        shown = error.__new__(error)
        shown.args = ("what went wrong",)
        line = traceback.format_exception_only(shown)[-1]  # (some show fields of their own)
        assert line.startswith(f"{public}.{error.__qualname__}: "), line
        assert type(pickle.loads(pickle.dumps(shown))) is error  # (found there by pickle too)


def test_a_users_own_error_keeps_its_own_module() -> None:
    class AppError(MiniAgentsError):
        pass

    assert AppError.__module__ == __name__


def test_the_testing_kits_errors_have_their_own_root_outside_the_products_tree() -> None:
    kit = {
        error
        for error in all_subclasses(TestingKitError)
        if error.__module__.startswith("miniagents.testing")
    }
    assert {error.__name__ for error in kit} == {
        "ContractViolationError",
        "FakeLLMServerError",
        "FakeLLMServerTimeout",
        "VirtualTimeError",
    }
    drawn = miniagents.testing.errors.__doc__ or ""
    for error in kit:
        assert not issubclass(error, MiniAgentsError), error
        assert error.__name__ not in vars(miniagents.errors)["__all__"], error
        assert getattr(miniagents.testing, error.__name__) is error, error
        assert f"── {error.__name__}" in drawn, error
    assert not issubclass(TestingKitError, MiniAgentsError)
    assert miniagents.testing.TestingKitError is TestingKitError


def test_the_errors_facade_imports_an_extensions_error_when_it_is_first_used() -> None:
    code = (
        "import sys, miniagents.errors as errors\n"
        "from miniagents.ext.llm.errors import LLMError\n"
        "assert errors.LLMError is LLMError\n"
        "assert 'LLMError' in dir(errors)\n"
        "try:\n"
        "    errors.NoSuchError\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "module 'miniagents.errors' has no attribute 'NoSuchError'"


# -- every raise -----------------------------------------------------------------------------


def source_files() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


@cache
def return_annotations() -> dict[str, list[tuple[str, str]]]:
    """Every function and method of the package by name: (its module, its return annotation)."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                returns = ast.unparse(node.returns) if node.returns else "None"
                found[node.name].append((name, returns))
    return found


def resolve(module: ModuleType, expression: ast.expr) -> object:
    """What a name or a dotted name means in ``module``, or None."""
    if isinstance(expression, ast.Name):
        return vars(module).get(expression.id, getattr(builtins, expression.id, None))
    if isinstance(expression, ast.Attribute):
        owner = resolve(module, expression.value)
        return None if owner is None else getattr(owner, expression.attr, None)
    return None


def allowed_class(value: object, module: str = "") -> bool:
    """Whether raising ``value`` is fine: our errors (the testing kit's own, in the kit)."""
    roots: tuple[type[BaseException], ...] = (MiniAgentsError,)
    if module.startswith("miniagents.testing"):
        roots = (MiniAgentsError, TestingKitError)
    return isinstance(value, type) and (
        issubclass(value, roots) or value.__name__ in ALLOWED_CLASSES
    )


def returns_our_errors(function: str) -> bool:
    """Whether every function or method of that name is annotated to return our errors."""
    definitions = return_annotations().get(function, [])
    for module_name, annotation in definitions:
        module = modules()[module_name]
        try:
            returned = eval(annotation, vars(module))
        except NameError:
            return False
        if isinstance(returned, TypeVar):  # (generic in the error: what it is bound to)
            returned = returned.__bound__
        if not allowed_class(returned):
            return False
    return bool(definitions)


def problems_in(name: str, path: Path) -> Iterator[str]:
    module = modules()[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    caught: dict[ast.Raise, set[str]] = {}
    for handler in ast.walk(tree):
        if isinstance(handler, ast.ExceptHandler) and handler.name:
            for node in ast.walk(handler):
                if isinstance(node, ast.Raise):
                    caught.setdefault(node, set()).add(handler.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue  # a bare `raise` re-raises what is being handled
        exc = node.exc
        target = exc.func if isinstance(exc, ast.Call) else exc
        if (name, ast.unparse(exc)) in ALLOWED_RAISES:
            continue
        if isinstance(target, ast.Name) and target.id in caught.get(node, set()):
            continue  # an error caught around it, re-raised
        if allowed_class(resolve(module, target), name):
            continue
        if isinstance(exc, ast.Call) and isinstance(target, (ast.Name, ast.Attribute)):
            function = target.id if isinstance(target, ast.Name) else target.attr
            if returns_our_errors(function):
                continue
        yield f"{name}, line {node.lineno}: raise {ast.unparse(exc)}"


def test_every_raise_in_the_package_raises_a_miniagents_error() -> None:
    problems = [problem for name, path in source_files() for problem in problems_in(name, path)]
    assert not problems, (
        "These raise something that is not a MiniAgentsError: derive a class of the layer's "
        "errors module from MiniAgentsError (and the builtin it stands for), or list the raise "
        "with its reason in tests/test_errors.py:\n" + "\n".join(problems)
    )


def test_the_raise_check_sees_a_builtin_error(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from miniagents.promising.errors import HashKeyError\n"
        "def ok():\n    raise HashKeyError('fine')\n"
        "def wrong():\n    raise ValueError('not ours')\n"
        "def rethrow():\n    try:\n        ok()\n    except Exception as error:\n"
        "        raise error\n",
        encoding="utf-8",
    )
    modules()["probe"] = module = ModuleType("probe")
    exec(compile(probe.read_text(encoding="utf-8"), str(probe), "exec"), vars(module))
    try:
        assert list(problems_in("probe", probe)) == ["probe, line 5: raise ValueError('not ours')"]
    finally:
        del modules()["probe"]


@pytest.mark.parametrize(("module", "expression"), sorted(ALLOWED_RAISES))
def test_every_allowed_raise_is_still_in_the_source(module: str, expression: str) -> None:
    path = PACKAGE.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    raised = {
        ast.unparse(node.exc)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Raise) and node.exc is not None
    }
    assert expression in raised, f"the allowance for {expression!r} in {module} is stale"


# -- the layers' errors, where they are raised -----------------------------------------------


async def _misuse(case: str) -> None:
    from miniagents import MiniAgent, MiniAgents, Promise
    from miniagents.ext.file_agents import file_output_agent
    from miniagents.ext.history.markdown import ChatHistoryMD
    from miniagents.messages import MessageTokenAppender
    from miniagents.promising import Frozen
    from miniagents.utils import achain_loop

    async def agent_function(ctx: object) -> None:
        return None

    if case == "limits":
        MiniAgents(replay_window=0)
    elif case == "concurrency":
        MiniAgent(agent_function, max_concurrency=0)
    elif case == "promise":
        Promise()  # type: ignore[call-overload]
    elif case == "frozen":
        type("Bad", (Frozen,), {"__annotations__": {"items": list[int]}})
    elif case == "chain":
        await achain_loop([])
    elif case == "reentered":
        context = MiniAgents()
        async with context, context:
            pass
    elif case == "loop-running":
        MiniAgents().run(asyncio.sleep(0))
    elif case == "context-argument":
        MiniAgents(start_everything_asap_by_default="no")  # type: ignore[arg-type]
    elif case == "missing-argument":
        async with MiniAgents():
            await file_output_agent.inquire("hi")
    elif case == "history-option":
        ChatHistoryMD("chat.md", on_torn_section="ignore")  # type: ignore[arg-type]
    elif case == "appender-closed":
        appender = MessageTokenAppender()
        appender.complete()
        appender.append("late")


MISUSES = {
    "limits": ("StreamLimitError", ValueError),
    "concurrency": ("ConcurrencyLimitError", ValueError),
    "promise": ("StreamArgumentError", TypeError),
    "frozen": ("FrozenFieldError", TypeError),
    "chain": ("ChainDefinitionError", ValueError),
    "reentered": ("ContextReenteredError", RuntimeError),
    "loop-running": ("LoopAlreadyRunningError", RuntimeError),
    "context-argument": ("ContextArgumentError", TypeError),
    "missing-argument": ("MissingAgentArgumentError", ValueError),
    "history-option": ("ChatHistoryOptionError", ValueError),
    "appender-closed": ("AppenderClosedError", RuntimeError),
}


@pytest.mark.parametrize("case", sorted(MISUSES))
async def test_a_misuse_raises_its_layers_error_which_is_also_the_builtin(case: str) -> None:
    name, builtin = MISUSES[case]
    error_class = getattr(miniagents.errors, name)
    with pytest.raises(error_class) as raised:
        await _misuse(case)
    assert isinstance(raised.value, builtin)
    assert str(raised.value)[-1] in ".)'", "a full sentence"
