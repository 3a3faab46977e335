"""``FunctionTool``: a plain typed function (sync, async, or an async generator) as a tool."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import cast

from miniagents.ext.tools._arguments import ArgumentModel, partial_keywords
from miniagents.ext.tools._docstrings import parse_docstring
from miniagents.ext.tools._output import as_text
from miniagents.ext.tools.cancellation import _CURRENT, ToolCancellation
from miniagents.ext.tools.errors import ToolDefinitionError
from miniagents.ext.tools.tool import DEFAULT_MAX_ARGUMENT_CHARS, ApprovalRule, Tool
from miniagents.miniagents.lowlevel import called_function, docstring_of

__all__ = ["FunctionTool"]


class FunctionTool(Tool):
    """A typed function as a tool: its name, docstring and parameters describe it.

    - **Name**: the function's ``__name__`` (or ``name=``), made valid for the providers.
    - **Description**: the docstring without its ``Args:`` section (or ``description=``);
      a callable object's is its ``__call__``'s, else its class's.
    - **Schema**: every parameter, from its annotation and default (pydantic), with the
      description from the ``Args:`` section (an ``Annotated[..., Field(description=...)]``
      wins); ``**kwargs`` is left out, and so are the keyword arguments a
      ``functools.partial`` binds (fixed at the call, as ``fork``/``bind`` fix an agent's);
      arguments the schema does not name are refused.
    - **Running**: the arguments are validated with pydantic first. An ``async def``
      function is awaited; an async generator function's yields stream as they come; a
      plain (sync) function runs in a worker thread (``asyncio.to_thread``), off the event
      loop. **Cancelling such a call stops waiting for it, but the thread runs the
      function to its end** (Python cannot stop a thread): a function that takes long
      reads its call's flag, ``tool_cancellation().cancelled`` (set at the cancellation;
      ``tool_cancellation().wait(seconds)`` sleeps until it), and returns early (see
      :mod:`miniagents.ext.tools.cancellation`).
      The reply is a returned ``str`` as it is, any other value as JSON.
    - **Approval**: ``requires_approval=True`` (or a predicate on the arguments) makes a
      call wait for a person's decision first (see ``Tool`` and ``ToolApprovalRequest``).
    - **Timeout**: ``timeout=`` seconds (``None``, the default: no limit) bounds a call's
      run: past it, the run is cancelled (a sync function's thread goes on, its
      cancellation flag set) and the model gets an error result saying it timed out.
    - **Arguments' size**: ``max_argument_chars=`` (default a million) bounds the JSON
      text of one call's arguments: a longer call does not run, and the model gets an
      error result that says so.

    Raises:
        ToolDefinitionError: for a parameter without an annotation or of a type with no
            JSON schema, for ``*args``, for a (sync) generator function, or for something
            that is not a function.
        ArgumentError: for a ``timeout`` that is not a positive, finite number.
    """

    __slots__ = ("_arguments", "func")

    def __init__(
        self,
        func: Callable[..., object],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_approval: ApprovalRule = False,
        timeout: float | None = None,
        max_argument_chars: int = DEFAULT_MAX_ARGUMENT_CHARS,
    ) -> None:
        """Describe ``func`` as a tool (see the class docstring)."""
        if not callable(func) or isinstance(func, type):
            raise ToolDefinitionError(
                f"{func!r} cannot be a tool: a tool is a function, a MiniAgent or a "
                f"Tool.{_not_a_tool_hint(func)}"
            )
        if inspect.isgeneratorfunction(_code_of(func)):
            raise ToolDefinitionError(
                f"The tool function {_name_of(func)} is a (sync) generator, which would "
                "block the event loop. Make it an async generator (`async def` with "
                "`yield`), or return a list."
            )
        docs = parse_docstring(docstring_of(func))
        super().__init__(
            name=name if name is not None else _name_of(func),
            description=description if description is not None else docs.description,
            requires_approval=requires_approval,
            timeout=timeout,
            max_argument_chars=max_argument_chars,
        )
        bound = partial_keywords(func)  # a partial's: fixed at the call, not the model's
        parameters = [
            parameter
            for parameter in inspect.signature(func).parameters.values()
            if parameter.name not in bound
        ]
        self._arguments = ArgumentModel.of(func, parameters, docs.arguments, self.name)
        self._parameters = self._arguments.schema
        self.func = func

    def validate(self, arguments: Mapping[str, object]) -> Mapping[str, object]:
        """Validate the model's arguments with pydantic (see ``Tool.validate``)."""
        args, kwargs = self._arguments.validate(arguments)
        return _Validated(args, kwargs)

    async def run(self, arguments: Mapping[str, object]) -> AsyncIterator[str]:
        """Call the function; yield its reply (see the class docstring)."""
        args, kwargs = _split(arguments)
        func = self.func
        code = _code_of(func)
        if inspect.isasyncgenfunction(code):
            items = cast(AsyncGenerator[object, None], func(*args, **kwargs))
            async with contextlib.aclosing(items):  # (closed here when the run stops early)
                async for item in items:
                    yield as_text(item)
            return
        if inspect.iscoroutinefunction(code):
            result = await cast(Awaitable[object], func(*args, **kwargs))
        else:
            cancellation = ToolCancellation()
            reset = _CURRENT.set(cancellation)  # the thread runs in a copy of this context
            try:
                result = await asyncio.to_thread(functools.partial(func, *args, **kwargs))
            except asyncio.CancelledError:
                cancellation.cancel()  # the thread goes on: it may read the flag and stop
                raise
            finally:
                _CURRENT.reset(reset)
            if inspect.isawaitable(result):  # e.g. a lambda returning a coroutine
                result = await result
        yield as_text(result)


class _Validated(dict[str, object]):
    """Validated keyword arguments that also carry the positional-only ones."""

    __slots__ = ("args",)

    def __init__(self, args: list[object], kwargs: dict[str, object]) -> None:
        super().__init__(kwargs)
        self.args = args


def _split(arguments: Mapping[str, object]) -> tuple[list[object], Mapping[str, object]]:
    if isinstance(arguments, _Validated):
        return arguments.args, arguments
    return [], arguments


def _code_of(func: Callable[..., object]) -> Callable[..., object]:
    """What a call of ``func`` runs: a callable object's ``__call__``, else ``func`` itself.

    So an object whose class defines ``async def __call__`` (with or without ``yield``), or
    a generator ``__call__``, is told apart as such a function is.
    """
    called = called_function(func)
    if inspect.isroutine(called):
        return func  # (inspect tells a partial of a function apart by that function)
    call = type(called).__call__
    return call if inspect.isfunction(call) else func


def _name_of(func: Callable[..., object]) -> str:
    called = called_function(func)
    return str(getattr(called, "__name__", type(called).__name__))


def _not_a_tool_hint(given: object) -> str:
    """What to give instead of ``given``, a value that is no tool (a name, a call's result)."""
    if isinstance(given, str):
        return f" Give the function itself, not its name: tools=[{given}]."
    if inspect.iscoroutine(given):
        given.close()  # never to run, nor to warn
        return " Give the function itself, not a call of it: without the parentheses."
    if isinstance(given, type):
        return " Give a function, or the method of an instance, not a class."
    return ""
