"""Scripted models: real LLM agents whose replies a test writes, for tests without a network.

In the spirit of pydantic-ai's ``TestModel`` and ``FunctionModel``, both are the offline
model (:mod:`miniagents.ext.llm.offline`) with a script, so they are real LLM agents: the
prompt, streaming, the reply's metadata, the tool loop, the stall timeout, errors and logs
all work as with OpenAI or Anthropic. Swap one in wherever your code takes an LLM agent.

- :func:`scripted_agent` replies from a list, one reply per call of the model: a text, a
  tool call (``CallTool``), several calls at once (a list of them), a refusal
  (``Refuse("...")``: an ``LLMRefusalError``, as a real model's refusal), or an error to
  fail with. A turn with tools is several calls: the calls, then the answer once the results
  are in::

      agent = scripted_agent(CallTool("add", {"a": 2, "b": 3}), "2 + 3 = 5.", tools=[add])

- :func:`function_agent` replies with what a function of the call returns (the call holds
  the prompt, the tools, the options)::

      agent = function_agent(lambda call: f"You said: {call.messages[-1].text}")

Both stream their text word by word with no delay (``.fork(token_delay=...)`` gives one,
e.g. on a virtual clock, see :mod:`miniagents.testing.virtual_time`), and take every
argument of the offline agent, typed (``.fork(...)``, ``inquire(..., system=...)``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import ParamSpec, Protocol

from miniagents.ext.llm.errors import LLMConfigurationError
from miniagents.ext.llm.offline import OfflineAgent, offline_agent
from miniagents.ext.llm.offline_script import ScriptedReply, scripted_calls
from miniagents.ext.llm.provider import LLMCall
from miniagents.ext.tools.tool_like import ToolLike

__all__ = [
    "FunctionAgentFactory",
    "ScriptedAgentFactory",
    "function_agent",
    "scripted_agent",
]

P = ParamSpec("P")

SCRIPTED_ALIAS = "SCRIPTED_AGENT"
SCRIPTED_MODEL = "scripted"


class ScriptedAgentFactory(Protocol[P]):
    """The type of :func:`scripted_agent` (``P``: the offline agent's parameters)."""

    def __call__(
        self,
        *replies: ScriptedReply | BaseException,
        tools: Sequence[ToolLike] | None = ...,
        model: str = ...,
        calls: list[LLMCall] | None = ...,
    ) -> OfflineAgent[P]:
        """An LLM agent that replies from ``replies``, one per call of the model."""
        ...


class FunctionAgentFactory(Protocol[P]):
    """The type of :func:`function_agent` (``P``: the offline agent's parameters)."""

    def __call__(
        self,
        reply: Callable[[LLMCall], ScriptedReply],
        /,
        *,
        tools: Sequence[ToolLike] | None = ...,
        model: str = ...,
    ) -> OfflineAgent[P]:
        """An LLM agent that replies with what ``reply`` returns for each call."""
        ...


def _scripted_agent_of(offline: OfflineAgent[P]) -> ScriptedAgentFactory[P]:
    def scripted_agent(
        *replies: ScriptedReply | BaseException,
        tools: Sequence[ToolLike] | None = None,
        model: str = SCRIPTED_MODEL,
        calls: list[LLMCall] | None = None,
    ) -> OfflineAgent[P]:
        """An LLM agent that replies from ``replies``, one per call of the model, in order.

        A reply is a text, a tool call (``CallTool(name, arguments)`` of
        ``miniagents.ext.llm.offline``), a list of calls (made at once), or an exception,
        raised as the model's error (e.g. an ``LLMRateLimitError``). With tools, a turn
        is several calls of the model: its calls, then its answer once the results are
        in. The replies are shared by every interaction of the agent and its forks: a
        call after the last reply is an ``LLMConfigurationError``, and so is a tool call
        for an agent without tools (a model calls only the tools it is given).

        Args:
            *replies: The replies, one per call of the model.
            tools: The tools the model may call (as ``tools=`` of every LLM agent).
            model: The model's name, in the replies' metadata.
            calls: A list to which every call of the model is appended, as the model got
                it (an ``LLMCall``: the prompt, the tools, the options): to check what
                your code sent.

        Returns:
            The agent (the offline agent with this script; alias ``SCRIPTED_AGENT``).

        Example:
            >>> agent = scripted_agent(CallTool("add", {"a": 2, "b": 3}), "5", tools=[add])
            >>> [str(m) for m in await agent.inquire("2 + 3?")]  # doctest: +SKIP
            ['{"a": 2, "b": 3}', '5', '5']
        """
        script = _Replies(replies, calls)
        return offline.fork(
            alias=SCRIPTED_ALIAS, reply=script, tools=tools, model=model, token_delay=0.0
        )

    return scripted_agent


def _function_agent_of(offline: OfflineAgent[P]) -> FunctionAgentFactory[P]:
    def function_agent(
        reply: Callable[[LLMCall], ScriptedReply],
        /,
        *,
        tools: Sequence[ToolLike] | None = None,
        model: str = SCRIPTED_MODEL,
    ) -> OfflineAgent[P]:
        """An LLM agent that replies, at each call of the model, with what ``reply`` returns.

        ``reply`` gets the call (an ``LLMCall``: ``messages``, the prompt, with the tool
        calls and results of the turn so far; ``system``; ``tools``; ``options``) and
        returns a text, a tool call (``CallTool``) or a list of calls; what it raises is
        the model's error.

        Args:
            reply: The function of the call that gives the reply.
            tools: The tools the model may call (as ``tools=`` of every LLM agent).
            model: The model's name, in the replies' metadata.

        Returns:
            The agent (the offline agent with this script; alias ``SCRIPTED_AGENT``).

        Raises:
            LLMConfigurationError: if ``reply`` is not a function, is an async one, or
                cannot be called with the call alone (its signature, where Python can read
                it).

        Example:
            >>> shout = function_agent(lambda call: (call.messages[-1].text or "").upper())
        """
        if not callable(reply):
            raise LLMConfigurationError(
                f"function_agent() takes a function of the call that returns the reply, not "
                f"{reply!r}; for replies written in advance, use scripted_agent(...)."
            )
        call = type(reply).__call__  # (an object's async __call__, too)
        if inspect.iscoroutinefunction(reply) or inspect.iscoroutinefunction(call):
            raise LLMConfigurationError(
                f"function_agent() takes a plain function of the call, but {reply!r:.80} is "
                "async (an async def). Make it a plain def that returns the reply; for an "
                "agent that awaits something, write one with @miniagent."
            )
        _check_takes_the_call(reply)
        return offline.fork(
            alias=SCRIPTED_ALIAS, reply=reply, tools=tools, model=model, token_delay=0.0
        )

    return function_agent


def _check_takes_the_call(reply: Callable[..., object]) -> None:
    """Refuse a reply function that cannot be called with the call alone (one argument).

    A function whose signature cannot be read (some builtins) is let through.

    Raises:
        LLMConfigurationError: naming the function, its signature and what it must take.
    """
    try:
        signature = inspect.signature(reply)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None)
    except TypeError:
        parameters = signature.replace(return_annotation=inspect.Signature.empty)
        raise LLMConfigurationError(
            f"function_agent() calls its function with one argument, the call (an LLMCall: "
            f"the messages, the tools, the options), but {reply!r:.80} takes {parameters}. "
            'Make it take the call, e.g. function_agent(lambda call: "hi") or '
            "def reply(call: LLMCall) -> str."
        ) from None


class _Replies:
    """A scripted agent's replies: the next one at each call, which is recorded."""

    def __init__(
        self, replies: Sequence[ScriptedReply | BaseException], calls: list[LLMCall] | None
    ) -> None:
        self._replies = list(replies)
        for number, reply in enumerate(self._replies, 1):
            _check_reply(number, reply)
        self._next = 0
        self._calls = calls

    def __call__(self, call: LLMCall) -> ScriptedReply:
        if self._calls is not None:
            self._calls.append(call)
        number = self._next + 1
        if self._next >= len(self._replies):
            raise LLMConfigurationError(
                f"The scripted agent was called for the {_ordinal(number)} time, but its script "
                f"has {len(self._replies)} repl{'y' if len(self._replies) == 1 else 'ies'}. "
                "Give scripted_agent(...) one reply per call of the model: with tools, a "
                "turn is its calls, then its answer once the results are in."
            )
        reply = self._replies[self._next]
        self._next = number
        if isinstance(reply, BaseException):
            raise reply
        called = [tool.name for tool in scripted_calls(reply)]
        if called and not call.tools:
            raise LLMConfigurationError(
                f"The {_ordinal(number)} reply of the scripted agent calls "
                f"{', '.join(map(repr, called))}, but the agent has no tools (a model calls "
                "only the tools it is given). Give it the tools: scripted_agent(..., "
                "tools=[...]), or tools= of fork(...) or inquire(...)."
            )
        return reply


def _check_reply(number: int, reply: object) -> None:
    """Refuse ``reply``, the ``number``-th given to ``scripted_agent``, if it is no reply.

    Raises:
        LLMConfigurationError: for one that is neither a text, a refusal, a ``CallTool``, a
            list of them, nor an exception (was: taken, to fail at the call it answers).
    """
    if isinstance(reply, BaseException):
        return
    try:
        scripted_calls(reply)  # type: ignore[arg-type]  # (untyped code may give anything)
    except LLMConfigurationError:
        pass
    else:
        return
    raise LLMConfigurationError(
        f"The {_ordinal(number)} reply given to scripted_agent(...) is {reply!r:.80}, which "
        "is neither a text, a CallTool (of miniagents.ext.llm.offline), a list of CallTool "
        "(calls made at once), a Refuse, nor an exception to raise. Give one of those per "
        "call of the model."
    )


def _ordinal(number: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10 if number % 100 not in (11, 12, 13) else 0)
    return f"{number}{suffix or 'th'}"


scripted_agent = _scripted_agent_of(offline_agent)
"""An LLM agent that replies from a list, one reply per call of the model (see above)."""

function_agent = _function_agent_of(offline_agent)
"""An LLM agent that replies with what a function of each call returns (see above)."""
