"""Errors of the agents layer; the whole hierarchy is drawn in :mod:`miniagents.errors`."""

from __future__ import annotations

from miniagents.promising.errors import MiniAgentsError
from miniagents.root_error import ArgumentError

__all__ = [
    "AgentArgumentError",
    "AgentDefinitionError",
    "AgentFinishedError",
    "ConcurrencyLimitError",
    "ContextArgumentError",
    "ContextReenteredError",
    "LoopAlreadyRunningError",
    "MissingAgentArgumentError",
    "NoActiveContextError",
    "NotAwaitableError",
]


class NoActiveContextError(MiniAgentsError, RuntimeError):
    """An agent was used outside ``async with MiniAgents():`` (or ``MiniAgents().run(...)``)."""


class AgentDefinitionError(MiniAgentsError, TypeError):
    """``@miniagent`` was put on something that is no agent function (see ``AgentFunction``).

    A plain function annotated ``-> None`` (not ``async def``), or one that does not take the
    interaction context first, is refused at once; any other one that returns no awaitable
    fails its interaction with this error when it is called.
    """


class AgentArgumentError(MiniAgentsError, TypeError):
    """An agent got an argument it does not take, or lacks one it needs."""


class NotAwaitableError(MiniAgentsError, TypeError):
    """What returns nothing to wait for was awaited: ``await ctx.reply(...)`` (``areply`` waits)."""


class AgentFinishedError(MiniAgentsError, RuntimeError):
    """An agent replied (or a caller sent it a message) after its interaction had finished."""


class MissingAgentArgumentError(AgentArgumentError, ValueError):
    """An agent was run without an argument it needs, which it takes as optional (``None``).

    The message says how to give it, e.g. ``file_output_agent.fork(file="answer.md")``.
    """


class ConcurrencyLimitError(ArgumentError):
    """An agent's ``max_concurrency`` is neither a positive int nor ``None``."""


class ContextReenteredError(MiniAgentsError, RuntimeError):
    """A ``MiniAgents`` context was entered while it was active already."""


class ContextArgumentError(ArgumentError, TypeError):
    """``MiniAgents(...)`` or its ``run(...)`` got an argument it cannot use, or a plain ``with``.

    An ``ArgumentError`` (a ``ValueError``) and a ``TypeError`` both: the checks of
    :mod:`miniagents.arguments` raise it for a setting out of range or of the wrong kind
    (``llm_stall_timeout=-1``, ``llm_parse_in_turn="yes"``).

    A handler that is not an async function (``on_persist_message=save`` where ``save`` is
    a plain ``def``), a ``start_everything_asap_by_default`` that is not a ``bool``,
    ``run(main)`` (a function, not the coroutine ``main()``), or a plain ``with
    MiniAgents():`` (it is ``async with``).
    """


class LoopAlreadyRunningError(MiniAgentsError, RuntimeError):
    """An event loop runs already where code would start (or block) one.

    ``MiniAgents().run(...)`` where a loop runs (e.g. in Jupyter), or a plain ``for`` over a
    ``pipeline(...)`` in async code inside an active ``MiniAgents`` context (``async for``).
    """
